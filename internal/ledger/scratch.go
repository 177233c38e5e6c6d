package ledger

import (
	"io"
	"os"
	"slices"
)

// sealScratch is the memory the sealer keeps from one seal to the next:
// the log's bytes, its decoded Accesses and their arena. A busy gateway
// seals a part every few seconds, and these, taken fresh for each (about
// 50 MB for a part of 150,000 Accesses), came from the system as new
// pages. Kept, they stay mapped. What it keeps is bounded by a part: a
// larger log (an hour sealed whole by an earlier warden; an hour's last
// part past 3,600) is sealed with memory of its own, dropped after.
type sealScratch struct {
	log     []byte
	entries []entry
	arena   entryArena
}

// logBytesKept bounds the log buffer kept, per Access kept: a log is
// about 110 bytes an Access (with its dictionary's frames).
const logBytesKept = 512

// read reads the file at path into the scratch's log buffer.
func (s *sealScratch) read(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	b := slices.Grow(s.log[:0], int(fi.Size())+1)
	for {
		if len(b) == cap(b) {
			b = slices.Grow(b, 64<<10)
		}
		n, err := f.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			s.log = b
			return b, nil
		}
		if err != nil {
			return nil, err
		}
	}
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
	if cap(s.log) > keep*logBytesKept {
		s.log = nil
	}
	s.arena.reset()
}
