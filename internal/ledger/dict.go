package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/maphash"
	"math/bits"
	"os"
	"path/filepath"
	"sync"
	"unsafe"

	"github.com/warden-gw/warden/internal/cacheline"
)

// idsFile is the dictionary shared by every sealed partition: platform
// ids, facet values and names to dense integers, for the whole ledger, so
// that postings of different hours combine without going through strings.
// It is append-only, framed like a log (kindDict frames), written by the
// sealer alone and synced before a partition that uses it is renamed into
// place; a torn tail therefore holds only integers nothing refers to.
const idsFile = "ids"

// dictionary is the shared dictionary: a strtab per namespace.
type dictionary struct {
	t     [nsCount]strtab
	valid int64 // bytes of the file that check
	// tf is, per facet, each tuple's value of it (+1, 0 absent), built
	// once on first use and shared by the readers of this dictionary (a
	// server's cached one): only the sealer adds tuples, and it keeps its
	// own dictionary.
	tfOnce [NumFacets]sync.Once
	tf     [NumFacets][]uint32
}

// tupleFacet is, for facet f, the value (+1, 0 absent) of each tuple; a
// tuple that does not parse, or names a value past the dictionary, reads
// as absent.
func (d *dictionary) tupleFacet(f int) []uint32 {
	d.tfOnce[f].Do(func() {
		t := &d.t[nsTuple]
		out := make([]uint32, t.len())
		for i := range out {
			if fs, ok := parseTuple(t.at(uint32(i))); ok && fs[f] <= uint32(d.t[nsFacet+f].len()) {
				out[i] = fs[f]
			}
		}
		d.tf[f] = out
	})
	return d.tf[f]
}

// loadDictionary reads dir's dictionary up to its last whole frame; a
// missing file is an empty dictionary.
func loadDictionary(dir string) (*dictionary, error) { return readDictionary(dir, false) }

// loadSealerDictionary is loadDictionary for the sealer, which only
// interns: its tables keep no integer -> name index (8 bytes a name: 34
// MiB of the writer's heap at the population).
func loadSealerDictionary(dir string) (*dictionary, error) { return readDictionary(dir, true) }

func readDictionary(dir string, lookupOnly bool) (*dictionary, error) {
	d := &dictionary{}
	for ns := range d.t {
		d.t[ns].lookupOnly = lookupOnly
		d.t[ns].dense = true
	}
	path := filepath.Join(dir, idsFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return d, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	// Two passes: the first checks the frames and counts each namespace's
	// names and bytes, so that the second fills tables sized once (growing
	// them by appending copied millions of names several times over).
	var names, size [nsCount]int
	off := 0
	for off < len(b) {
		kind, body, n, err := nextFrame(b[off:])
		if err != nil || kind != kindDict || len(body) < 1 || int(body[0]) >= nsCount {
			break
		}
		names[body[0]]++
		size[body[0]] += d.t[body[0]].recLen(len(body) - 1)
		off += n
	}
	d.valid = int64(off)
	for ns := range d.t {
		d.t[ns].data = make([]byte, 0, size[ns])
		if !lookupOnly {
			d.t[ns].starts = make([]uint64, 0, names[ns])
		}
	}
	for at := 0; at < off; {
		n := int(binary.LittleEndian.Uint32(b[at:]))
		body := b[at+frameHead+1 : at+frameHead+n]
		d.t[body[0]].add(body[1:])
		at += frameHead + n
	}
	return d, nil
}

// sizes is how many integers each namespace holds.
func (d *dictionary) sizes() [nsCount]uint32 {
	var s [nsCount]uint32
	for ns := range s {
		s[ns] = uint32(d.t[ns].len())
	}
	return s
}

// id looks s up in ns.
func (d *dictionary) id(ns int, s string) (uint32, bool) { return d.t[ns].find(s) }

// intern returns s's integer in ns, appending a frame to buf when s is
// new.
func (d *dictionary) intern(ns int, s []byte, buf *[]byte) uint32 {
	v, added := d.t[ns].intern(unsafe.String(unsafe.SliceData(s), len(s)))
	if added {
		*buf = appendDictFrame(*buf, ns, s)
	}
	return v
}

// internMany is intern of n names of ns, name(i, dst) the i-th (appended
// to dst, or where it lies if it stays there until the batch is
// interned), its integer written to out[i]. The sealer interns each
// hour's distinct ids and tuples, about 3.7 an Access at the issue's
// density, in tables of millions of names, each look-up two cache misses
// (its slot, then its record). The look-ups are pipelined: name i+ahead
// is hashed and its slot prefetched, name i+ahead/2's slot (arrived by
// then) read and the record it points to prefetched, and name i looked
// up, so that the misses of about ahead names are in flight at once
// (cacheline.Prefetch does not stall the look-ups behind it, as the loads of
// Add's prefetch do).
func (d *dictionary) internMany(ns, n int, name func(i int, dst []byte) []byte, out []uint32, buf *[]byte) {
	const ahead = 16
	t := &d.t[ns]
	t.index()
	var keep [2 * ahead][]byte // names i to i+ahead, by i mod len
	var hs [len(keep)]uint64
	fill := func(j int) {
		k := j & (len(keep) - 1)
		keep[k] = name(j, keep[k][:0])
		hs[k] = maphash.Bytes(t.seed, keep[k])
		cacheline.Prefetch(unsafe.Pointer(&t.slots[home(hs[k], len(t.slots))]))
	}
	for j := range min(n, ahead) {
		fill(j)
	}
	for i := range n {
		if j := i + ahead; j < n {
			fill(j)
		}
		if j := i + ahead/2; j < n {
			// The probe's first slots (a name is found about two slots
			// past its home at 3/4 full), from the line prefetched.
			h := hs[j&(len(keep)-1)]
			s := t.tagShift()
			for at := home(h, len(t.slots)); at < min(len(t.slots), home(h, len(t.slots))+4); at++ {
				x := t.slots[at]
				if x == 0 {
					break
				}
				if x>>s == h>>s {
					cacheline.Prefetch(unsafe.Pointer(&t.data[x&(1<<t.offBits-1)-1]))
					break
				}
			}
		}
		k := i & (len(keep) - 1)
		s := keep[k]
		v, added := t.internHash(unsafe.String(unsafe.SliceData(s), len(s)), hs[k])
		if added {
			*buf = appendDictFrame(*buf, ns, s)
		}
		out[i] = v
	}
}

// adopt translates a log's partition p into d's integers, interning its
// names and its Accesses' tuples (the frames of new ones appended to buf),
// and returns each Access's tuple.
func (d *dictionary) adopt(p *partition, buf *[]byte) []uint32 {
	p.translateWith(func(ns int, names *strtab, out []uint32) {
		// A log's names stay where they lie until p.dict is dropped.
		d.internMany(ns, len(out), func(i int, _ []byte) []byte { return names.at(uint32(i)) }, out, buf)
	})
	tuples := make([]uint32, len(p.entries))
	d.internMany(nsTuple, len(p.entries), func(i int, dst []byte) []byte { return tupleKey(dst, &p.entries[i].facets) }, tuples, buf)
	return tuples
}

// appendDictFrame appends the frame that gives s the next integer of ns.
func appendDictFrame(dst []byte, ns int, s []byte) []byte {
	at := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(s)+2))
	dst = append(dst, 0, 0, 0, 0, kindDict, byte(ns))
	dst = append(dst, s...)
	binary.LittleEndian.PutUint32(dst[at+4:], crc32.Update(0, castagnoli, dst[at+frameHead:]))
	return dst
}

// appendIDs appends frames to dir's dictionary and syncs it. A torn tail
// left by a crash is cut first (nothing refers to it).
func (d *dictionary) appendIDs(dir string, frames []byte) error {
	if len(frames) == 0 {
		return nil
	}
	path := filepath.Join(dir, idsFile)
	f, err := openFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(d.valid); err != nil {
		return err
	}
	if _, err := f.WriteAt(frames, d.valid); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	d.valid += int64(len(frames))
	return nil
}

// recordLen is the bytes of a name of n bytes in a strtab's data: its
// integer, its length and its bytes (sized exactly: room for the longest
// length, 4 bytes more a name, was 17 MiB of a restarted writer's heap at
// the population).
func recordLen(n int) int { return 4 + uvarintLen(uint64(n)) + n }

func uvarintLen(x uint64) int {
	n := 1
	for ; x >= 0x80; x >>= 7 {
		n++
	}
	return n
}

// strtab numbers distinct strings 0, 1, 2, ... in the order they are
// added, without a pointer per string, so that a garbage collection does
// not mark millions of them: every name in one byte slice, each as its
// integer (u32), its length (uvarint) and its bytes; where each starts in
// a slice of integers; and an open-addressing table of integers for the
// look-up. A slot is the top 24 bits of the name's hash above where the
// name starts plus one (0: empty), so that a probe that misses rarely
// touches the names and one that hits reads one place of them (the
// writer looks up several ids per Access, most of them in memory the
// processor has not cached: each place is a cache miss). The table is
// built on the first look-up (a reader that only names integers never
// builds it) and grown past 3/4 full. A probe starts at the low 32 bits of
// the hash scaled to the table's size (multiply and shift, Lemire), so
// that a table need not be a power of two: a dense table (the shared
// dictionary's, millions of names for the life of the process) is sized
// and grown to 5/8 full and so holds its names between 5/8 and 3/4 full;
// the others (a log's, the open hour's: reset and reused every hour) are
// doubled, between 3/8 and 3/4. A dense table's data also grows by an
// eighth, not by append's quarter.
//
// Memory per name: its bytes plus 5 (its integer and length; a
// lookupOnly table's record holds its length alone, 1), 8 for its start
// (none in a lookupOnly table), and 8 bytes per slot: 10.7 to 12.8 bytes
// a name in a dense table (11 to 21 in the others). A dense lookupOnly
// table (the sealer's) thus takes about 13 bytes plus the name; a Go map
// of strings takes about 70 and is marked by every collection.
type strtab struct {
	data   []byte
	starts []uint64 // nil when lookupOnly
	slots  []uint64
	seed   maphash.Seed
	n      int
	// lookupOnly tables (the sealer's) answer intern and find, not at or
	// str: they keep no starts.
	lookupOnly bool
	// dense tables (the shared dictionary's) keep their slots 5/8 to 3/4
	// full and grow their data by an eighth.
	dense bool
	// A slot is, from the top, the tag (the rest of the hash's top bits),
	// the name's integer (idBits) and where its record starts plus one
	// (offBits). Other tables keep the integer in the record (idBits 0,
	// offBits 40: names fit in 1 TiB); a lookupOnly table keeps it in the
	// slot, its record only the name's length and bytes (4 bytes a name
	// less: 16 MiB of the sealer's heap at the population), both
	// widths sized by rehash to twice what the table holds (widen), and
	// widened again (a rehash) when a name would not fit.
	offBits, idBits uint8
}

const slotOffBits = 40 // a table's names fit in 1 TiB

// len is how many names t holds.
func (t *strtab) len() int { return t.n }

// record is the name of slot x: its integer and bytes.
func (t *strtab) record(x uint64) (uint32, []byte) {
	off := x&(1<<t.offBits-1) - 1
	if t.lookupOnly {
		n, k := binary.Uvarint(t.data[off:])
		return uint32(x >> t.offBits & (1<<t.idBits - 1)), t.data[off+uint64(k) : off+uint64(k)+n]
	}
	b := t.data[off:]
	n, k := binary.Uvarint(b[4:])
	return binary.LittleEndian.Uint32(b), b[4+k : 4+k+int(n)]
}

// tagShift is where a slot's tag starts.
func (t *strtab) tagShift() uint8 { return t.offBits + t.idBits }

// slot is the slot of the name v, of hash h, whose record starts at off.
func (t *strtab) slot(h uint64, v uint32, off uint64) uint64 {
	s := t.tagShift()
	return h>>s<<s | uint64(v)&(1<<t.idBits-1)<<t.offBits | (off + 1)
}

// recLen is the bytes of a name of n bytes in t's data.
func (t *strtab) recLen(n int) int {
	if t.lookupOnly {
		return recordLen(n) - 4
	}
	return recordLen(n)
}

// at is name i's bytes, where they lie in t (not to be kept past the next
// add).
func (t *strtab) at(i uint32) []byte {
	b := t.data[t.starts[i]:]
	n, k := binary.Uvarint(b[4:])
	return b[4+k : 4+k+int(n)]
}

// str is name i as a string; "" when i is out of range.
func (t *strtab) str(i uint32) string {
	if int(i) >= len(t.starts) { // a lookupOnly table names nothing
		return ""
	}
	return string(t.at(i))
}

// push appends s's record as the next integer and returns it and where
// the record starts; placed says that it widened t's slots, placing every
// name, s too.
func (t *strtab) push(s string) (v uint32, off uint64, placed bool) {
	v = uint32(t.n)
	off = uint64(len(t.data))
	if t.dense && len(t.data)+t.recLen(len(s)) > cap(t.data) {
		// An eighth more, copied: append would add a quarter, unused
		// until the dictionary grows that much (it grows with distinct
		// ids, and may never).
		d := make([]byte, len(t.data), len(t.data)+max(t.recLen(len(s)), len(t.data)/8, 4096))
		copy(d, t.data)
		t.data = d
	}
	if !t.lookupOnly {
		t.data = binary.LittleEndian.AppendUint32(t.data, v)
		t.starts = append(t.starts, off)
	}
	t.data = binary.AppendUvarint(t.data, uint64(len(s)))
	t.data = append(t.data, s...)
	t.n++
	if t.lookupOnly && t.slots != nil && (off+1 >= 1<<t.offBits || uint64(v) >= 1<<t.idBits) {
		t.rehash()
		return v, off, true
	}
	return v, off, false
}

// add appends s as the next integer without looking it up (s is known to
// be new, or t is being loaded in order).
func (t *strtab) add(s []byte) uint32 {
	v, off, placed := t.push(unsafe.String(unsafe.SliceData(s), len(s)))
	if t.slots != nil {
		if !placed {
			t.place(maphash.Bytes(t.seed, s), v, off)
		}
		t.grow()
	}
	return v
}

// reset empties t, keeping its memory for the next use.
func (t *strtab) reset() {
	t.data, t.starts, t.n = t.data[:0], t.starts[:0], 0
	clear(t.slots)
}

func (t *strtab) index() {
	if t.slots != nil {
		return
	}
	t.seed = maphash.MakeSeed()
	t.slots = make([]uint64, t.size())
	t.rehash()
}

// size is how many slots t's names need: 5/8 full in a dense table, else
// the smallest power of two that holds them below 3/4 full, as growth
// keeps it (twice that, as before, cost 15 bytes more per name: 60 MiB
// of a writer's or reader's heap at the population).
func (t *strtab) size() int {
	if t.dense {
		return max(16, t.n*8/5+1)
	}
	n := 16
	for n*3 < t.n*4+4 {
		n *= 2
	}
	return n
}

// home is the slot where the probe for hash h starts in n slots.
func home(h uint64, n int) int { return int(uint64(uint32(h)) * uint64(n) >> 32) }

func (t *strtab) rehash() {
	clear(t.slots)
	hdr := uint64(4) // the record's integer
	if t.lookupOnly {
		hdr = 0
		t.widen()
	} else {
		t.offBits, t.idBits = slotOffBits, 0
	}
	// The records are walked in order (a lookupOnly table has no starts),
	// each placed ahead records after its slot was prefetched: the slots
	// are written at random, a cache miss each in a table of millions.
	const ahead = 16
	var hs, offs [ahead]uint64
	v := uint32(0)
	for off := uint64(0); off < uint64(len(t.data)); v++ {
		n, k := binary.Uvarint(t.data[off+hdr:])
		at := off + hdr + uint64(k)
		h := maphash.Bytes(t.seed, t.data[at:at+n])
		cacheline.Prefetch(unsafe.Pointer(&t.slots[home(h, len(t.slots))]))
		r := v % ahead
		if v >= ahead {
			t.place(hs[r], v-ahead, offs[r])
		}
		hs[r], offs[r] = h, off
		off = at + n
	}
	for w := v - min(v, ahead); w < v; w++ {
		t.place(hs[w%ahead], w, offs[w%ahead])
	}
}

// widen sizes a lookupOnly table's slot fields to twice its names and
// bytes (the tag keeps the rest: 18 bits at a million names of 15 bytes).
func (t *strtab) widen() {
	t.idBits = uint8(min(32, bits.Len64(2*uint64(max(t.n, 1<<10)))))
	t.offBits = uint8(min(64-int(t.idBits), bits.Len64(2*uint64(max(len(t.data), 1<<16)))))
	if len(t.data) >= 1<<t.offBits {
		// 2^32 bytes of names in one namespace: beyond what 32-bit
		// integers number at any length worth a dictionary.
		panic(fmt.Sprintf("ledger: a dictionary namespace of %d bytes", len(t.data)))
	}
}

func (t *strtab) grow() {
	if t.n*4 < len(t.slots)*3 {
		return
	}
	n := 2 * len(t.slots)
	if t.dense {
		n = t.size()
	}
	// rehash reads the records, not the old slots: dropped first, so that
	// a collection the allocation starts does not keep both tables.
	t.slots = nil
	t.slots = make([]uint64, n)
	t.rehash()
}

// place puts the name v, of hash h, whose record starts at off, in the
// first empty slot of its probe.
func (t *strtab) place(h uint64, v uint32, off uint64) {
	for i := home(h, len(t.slots)); ; i++ {
		if i == len(t.slots) {
			i = 0
		}
		if t.slots[i] == 0 {
			t.slots[i] = t.slot(h, v, off)
			return
		}
	}
}

// prefetchSlots is the smallest table prefetch reads ahead in: 32,768
// slots (256 KiB), about what a core's cache holds; a smaller table's
// look-ups mostly hit it.
const prefetchSlots = 1 << 15

// prefetch hashes the ids one Access looks up (facet values, list,
// records, authors) and, in tables too large for the processor's caches,
// prefetches the places those look-ups will read: first the slot each
// probe starts at, then the name that slot points to. The look-ups
// themselves run one after another, each waiting on its cache misses (a
// slot, then a name: two per id at a million names); these reads depend
// on nothing but the hash, so the misses of all the ids overlap, and the
// look-ups that follow, given the hashes, find their places in the cache.
// The slots are prefetched (cacheline.Prefetch), not loaded: a load holds the
// instructions behind it until its line arrives, and the loads that
// stood here were a third of Add's CPU in a profile of BenchmarkIngest.
type prefetch struct {
	n, next int
	t       [16]*strtab
	h       [16]uint64
}

// add hashes s for t and prefetches the slot its probe starts at.
func (p *prefetch) add(t *strtab, s string) {
	if p.n == len(p.h) {
		return
	}
	t.index()
	h := maphash.String(t.seed, s)
	p.t[p.n], p.h[p.n] = t, h
	if len(t.slots) >= prefetchSlots {
		cacheline.Prefetch(unsafe.Pointer(&t.slots[home(h, len(t.slots))]))
	}
	p.n++
}

// names reads the slots add prefetched (arrived or on their way) and
// prefetches the name each points to, when its hash bits match.
func (p *prefetch) names() {
	for i := range p.n {
		t := p.t[i]
		if len(t.slots) < prefetchSlots {
			continue
		}
		h := p.h[i]
		if x, s := t.slots[home(h, len(t.slots))], t.tagShift(); x != 0 && x>>s == h>>s {
			cacheline.Prefetch(unsafe.Pointer(&t.data[x&(1<<t.offBits-1)-1]))
		}
	}
}

// hash is the hash of the next id added, in the order added: ok is
// false past the ids prefetch took (the caller hashes).
func (p *prefetch) hash() (h uint64, ok bool) {
	if p.next == p.n {
		return 0, false
	}
	p.next++
	return p.h[p.next-1], true
}

// find returns s's integer.
func (t *strtab) find(s string) (uint32, bool) {
	t.index()
	h := maphash.String(t.seed, s)
	for i := home(h, len(t.slots)); ; i++ {
		if i == len(t.slots) {
			i = 0
		}
		x := t.slots[i]
		if x == 0 {
			return 0, false
		}
		if x>>t.tagShift() == h>>t.tagShift() {
			if v, b := t.record(x); string(b) == s {
				return v, true
			}
		}
	}
}

// intern returns s's integer, adding s when it is new (added says so),
// with one probe.
func (t *strtab) intern(s string) (v uint32, added bool) {
	t.index()
	return t.internHash(s, maphash.String(t.seed, s))
}

// internHash is intern of s whose hash (by t's seed) is h.
func (t *strtab) internHash(s string, h uint64) (v uint32, added bool) {
	for i := home(h, len(t.slots)); ; i++ {
		if i == len(t.slots) {
			i = 0
		}
		x := t.slots[i]
		if x == 0 {
			v, off, placed := t.push(s)
			if !placed {
				t.slots[i] = t.slot(h, v, off)
			}
			t.grow()
			return v, true
		}
		if x>>t.tagShift() == h>>t.tagShift() {
			if v, b := t.record(x); string(b) == s {
				return v, false
			}
		}
	}
}
