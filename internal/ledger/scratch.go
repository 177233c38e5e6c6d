package ledger

import (
	"time"
	"unsafe"
)

// sealScratch is the memory the sealer keeps from one seal to the next
// while seals follow each other: a log's decoded Accesses and their
// arena. A busy gateway seals a part every few seconds, and these, taken
// fresh for each (about 40 MB for a part of 150,000 Accesses), came from
// the system as new pages. Kept, they stay mapped. What it keeps is
// bounded by a part: a larger log (an hour sealed whole by an earlier
// warden; an hour's last part past 3,600) is sealed with memory of its
// own, dropped after. The sealer drops the scratch when no seal came for
// scratchIdle (a gateway sealing an hour at a time keeps nothing between
// seals). The log's bytes are read fresh for each seal: kept, they
// would be live all through the seal's indexing, where the garbage
// collector can take them back as soon as they are decoded.
type sealScratch struct {
	entries []entry
	arena   entryArena
}

// scratchIdle is how long the sealer keeps its scratch without a seal.
const scratchIdle = 30 * time.Second

// held says whether s holds memory.
func (s *sealScratch) held() bool { return s.entries != nil }

// bytes is the memory s holds.
func (s *sealScratch) bytes() int {
	return cap(s.entries)*int(unsafe.Sizeof(entry{})) +
		len(s.arena.u32.spare)*arenaChunk*4 +
		len(s.arena.recs.spare)*arenaChunk*int(unsafe.Sizeof(rec{})) +
		len(s.arena.str.spare)*arenaChunk
}

// release takes back the memory of p, whose seal is over, when p's
// Accesses are at most keep; else it drops all of it. p must not be used
// after.
func (s *sealScratch) release(p *partition, keep int) {
	if p == nil || cap(p.entries) > keep {
		*s = sealScratch{}
		return
	}
	clear(p.entries) // their links, allocated each
	s.entries = p.entries[:0]
	p.entries = nil
	s.arena.reset()
}
