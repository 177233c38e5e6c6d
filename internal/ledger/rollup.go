package ledger

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/warden-gw/warden/internal/identify"
)

// A day's rollup (file DAY.day, magic WLEDGERD) is the union of the
// viewers sections (reach: author -> impressions and tuples) of the day's
// sealed hours, by account and by ip (what reach counts people by), so
// that reach over whole days reads one keyed section a day instead of 24
// (a 7-day reach of 1,000 authors looked each author up in 168 hours). An
// author's viewers recur across hours: the rollup keeps each value once a
// day, impressions summed. It keeps facet values, not tuples: mapping a
// tuple to its account reads a table of 4 bytes a tuple at random, a
// cache miss per posting that cost more than everything else a query did.
// It is derived data: the hours stay the record, the rollup names each
// hour it was made from by its SHA-256, verify rebuilds it from them and
// compares, and a reader uses it only when the hours of its day in the
// window are exactly those it names (else it reads the hours: the answer
// is the same).
//
//	"WLEDGERD", the day (unix s), the first and last Access (unix µs) of
//	its hours (varints), the count of facets, each facet (index) and the
//	size of its namespace its values are below (uvarints), the count of
//	hours, each hour (unix s, varint) and its SHA-256,
//	per facet a keyed section (keyed.go; payloads: impressions, count,
//	sorted values delta-coded): its blocks, then its directory,
//	per facet where its blocks and its directory start (u64 each),
//	the CRC32C (Castagnoli, u32 little-endian) of the header, the
//	directories and those offsets: all that is not compressed,
//	the SHA-256 of everything before.
//
// A section's directory follows its blocks so that the sealer writes the
// blocks as it merges the hours, keeping one block of each hour and of
// the rollup in memory, never the day (a day of more than rollupFanIn
// hours: one block of each of a group's, then of each group's rollup). Readers do not hash a rollup (a
// week's reach would read every byte of seven): a block's zstd frame
// checks its content, the CRC32C (checked when the reader maps it) the
// rest, so that a changed byte is a rollup passed over (with a warning),
// never another answer. Rollups written before the CRC32C (magic
// WLEDGERD, the same without it) are still read, without that check, and
// rebuilt by the writer at its next start.
const (
	rollupMagic  = "WLEDGRD2"
	rollupMagic1 = "WLEDGERD" // before the CRC32C
	dayExt       = ".day"
	dayName      = "2006-01-02"
	daySeconds   = 24 * 3600
	// maxDayParts bounds the partitions a rollup names: an hour has at
	// most 3,600 parts (one a second), a day 86,400.
	maxDayParts = 24 * 3600
	// rollupFanIn bounds the partitions one merge reads at once (each
	// mapped, and a block of each decompressed: 16 MiB of blocks at
	// most). A day cut in more (Options.PartitionAccesses: about 150
	// million Accesses at the default) is merged in two steps: each
	// group of rollupFanIn partitions into a file aside (a rollup of the
	// group, the same format), then those files into the day's rollup.
	// Merging is a union of sets and a sum, so the day's rollup holds the
	// same bytes whichever way it is merged.
	rollupFanIn = 1024
)

// rollupFacets are the facets a rollup keeps, as facet indexes (Facet-1):
// account and ip, what `warden reach --by` counts.
var rollupFacets = [...]int{int(identify.FacetAccount) - 1, int(identify.FacetIP) - 1}

// dayOf is the UTC day (unix s) holding hour.
func dayOf(hour int64) int64 { return hour - ((hour%daySeconds)+daySeconds)%daySeconds }

func dayStem(day int64) string                { return time.Unix(day, 0).UTC().Format(dayName) }
func rollupPath(dir string, day int64) string { return filepath.Join(dir, dayStem(day)+dayExt) }

// parseDayStem reads a rollup's file stem back into its day.
func parseDayStem(stem string) (int64, bool) {
	t, err := time.Parse(dayName, stem)
	if err != nil {
		return 0, false
	}
	return t.Unix(), true
}

// rollup is a day's rollup as a reader maps it.
type rollup struct {
	path       string
	day        int64
	minT, maxT int64
	facets     []int // facet indexes
	limits     []int // the size of nsFacet+facets[i] its values are below
	hours      []int64
	hashes     [][32]byte
	secs       []*keyed // by facets' order
	parts      []*partition
	checked    bool // it has a CRC32C (rollupMagic): parseRollup checked it
}

// section is the rollup's keyed section of facet f; nil when it has none.
func (x *rollup) section(f int) *keyed {
	for i, g := range x.facets {
		if g == f {
			return x.secs[i]
		}
	}
	return nil
}

// rollupHeader reads a rollup's header (what precedes its blocks); n is
// where the blocks start.
func rollupHeader(b []byte) (x *rollup, n int, err error) {
	if len(b) < len(rollupMagic) || string(b[:len(rollupMagic)]) != rollupMagic && string(b[:len(rollupMagic1)]) != rollupMagic1 {
		return nil, 0, errors.New("not a day rollup (bad magic)")
	}
	d := decoder{b: b[len(rollupMagic):]}
	x = &rollup{day: d.varint(), minT: d.varint(), maxT: d.varint()}
	nf := d.count(2)
	if nf > NumFacets {
		d.fail(fmt.Errorf("%d facets", nf))
	}
	for range nf {
		f, lim := d.uvarint(), d.uvarint()
		if f >= uint64(NumFacets) || lim > 1<<32 {
			d.fail(errors.New("bad facet"))
			break
		}
		x.facets, x.limits = append(x.facets, int(f)), append(x.limits, int(lim))
	}
	nh := d.count(33)
	if nh > maxDayParts {
		d.fail(fmt.Errorf("%d partitions in a day", nh))
	}
	for range nh {
		if d.err != nil {
			break
		}
		h, hash := d.varint(), d.bytes(32)
		if d.err != nil {
			break
		}
		x.hours = append(x.hours, h)
		x.hashes = append(x.hashes, [32]byte(hash))
	}
	if d.err != nil {
		return nil, 0, fmt.Errorf("header: %w", d.err)
	}
	for i, h := range x.hours {
		if dayOf(h) != x.day || i > 0 && h <= x.hours[i-1] {
			return nil, 0, fmt.Errorf("header: hour %s is not the day's or out of order", partName(h))
		}
	}
	return x, len(b) - len(d.b), nil
}

// errRollupCRC is a rollup whose header or directories do not match
// their CRC32C.
var errRollupCRC = errors.New("header or directories do not match their CRC32C (damaged)")

// parseRollup reads a rollup's header and directories (b stays
// referenced: blocks are decompressed on use). It checks the structure
// and the CRC32C of what is not compressed, not the hash (verify does).
func parseRollup(path string, b []byte) (*rollup, error) {
	x, sum, err := parseRollupSum(path, b)
	if err != nil {
		return nil, err
	}
	if x.checked && sum != binary.LittleEndian.Uint32(b[len(b)-36:]) {
		return nil, errRollupCRC
	}
	return x, nil
}

// parseRollupSum is parseRollup without the check: it returns the
// CRC32C of what the check covers (the header, the directories, the
// trailer) of a rollup that has one (checked set: rollupMagic).
func parseRollupSum(path string, b []byte) (*rollup, uint32, error) {
	tail := 32
	if len(b) >= len(rollupMagic) && string(b[:len(rollupMagic)]) == rollupMagic {
		tail = 36
	}
	if len(b) < len(rollupMagic)+tail {
		return nil, 0, errors.New("not a day rollup (too short)")
	}
	body := b[:len(b)-tail]
	x, n, err := rollupHeader(body)
	if err != nil {
		return nil, 0, err
	}
	x.path = path
	sum := crc32.Update(0, castagnoli, body[:n])
	tr := 16 * len(x.facets)
	if len(body)-n < tr {
		return nil, 0, errors.New("sections do not fit the file (truncated or corrupt)")
	}
	end := len(body) - tr
	at := uint64(n)
	for i := range x.facets {
		blocks := binary.LittleEndian.Uint64(body[end+16*i:])
		dir := binary.LittleEndian.Uint64(body[end+16*i+8:])
		next := uint64(end)
		if i+1 < len(x.facets) {
			next = binary.LittleEndian.Uint64(body[end+16*(i+1):])
		}
		if blocks != at || dir < blocks || next < dir || next > uint64(end) {
			return nil, 0, errors.New("sections do not fit the file (truncated or corrupt)")
		}
		k, comp, rest, err := parseKeyedDir(body[dir:next])
		if err == nil && len(rest) != 0 {
			err = errTrailing
		}
		if err == nil {
			err = k.setData(comp, body[blocks:dir])
		}
		if err != nil {
			return nil, 0, fmt.Errorf("facet %d: %w", x.facets[i], err)
		}
		sum = crc32.Update(sum, castagnoli, body[dir:next])
		x.secs = append(x.secs, k)
		at = next
	}
	if at != uint64(end) {
		return nil, 0, errors.New("sections do not fit the file (truncated or corrupt)")
	}
	x.checked = tail == 36
	return x, crc32.Update(sum, castagnoli, body[end:]), nil
}

// appendViewers appends an author's viewers payload: impressions, the
// count of tuples, the tuples (sorted) delta-coded.
func appendViewers(dst []byte, impr uint64, tuples []uint32) []byte {
	dst = binary.AppendUvarint(dst, impr)
	dst = binary.AppendUvarint(dst, uint64(len(tuples)))
	var prev uint32
	for _, t := range tuples {
		dst = binary.AppendUvarint(dst, uint64(t-prev))
		prev = t
	}
	return dst
}

// viewerTuples appends the tuples of a viewers payload and returns its
// impressions; tuples at or past limit are an error.
func viewerTuples(b []byte, limit int, dst []uint32) ([]uint32, uint64, error) {
	d := decoder{b: b}
	impr := d.uvarint()
	n := d.count(1)
	if d.err != nil {
		return dst, impr, d.err
	}
	dst, rest, err := appendSums(d.b, n, uint64(limit), dst)
	if err == nil && len(rest) != 0 {
		err = errTrailing
	}
	return dst, impr, err
}

// appendSums appends the running sums of n uvarints of b (sorted values,
// delta-coded), each below limit, and returns what follows them. It is
// reach's innermost loop (every posting it reads): deltas of up to three
// bytes (all but a few: an hour's tuples are below 2^21 apart) are
// decoded inline. On an error dst holds the
// values before it.
func appendSums(b []byte, n int, limit uint64, dst []uint32) ([]uint32, []byte, error) {
	dst = slices.Grow(dst, min(n, len(b)))
	var t uint64
	for range n {
		var v uint64
		switch {
		case len(b) > 0 && b[0] < 0x80:
			v, b = uint64(b[0]), b[1:]
		case len(b) > 1 && b[1] < 0x80:
			v, b = uint64(b[0]&0x7f)|uint64(b[1])<<7, b[2:]
		case len(b) > 2 && b[2] < 0x80:
			v, b = uint64(b[0]&0x7f)|uint64(b[1]&0x7f)<<7|uint64(b[2])<<14, b[3:]
		default:
			var k int
			if v, k = binary.Uvarint(b); k <= 0 {
				return dst, b, errShort
			}
			b = b[k:]
		}
		if t += v; t >= limit {
			return dst, b, fmt.Errorf("value %d outside the dictionary (%d)", t, limit)
		}
		dst = append(dst, uint32(t))
	}
	return dst, b, nil
}

// cursor walks a keyed section key by key, one block decoded at a time.
type cursor struct {
	k   *keyed
	bi  int
	bl  *block
	j   int
	buf []byte
}

func (c *cursor) valid() bool { return c.bl != nil && c.j < len(c.bl.keys) }

// next moves to the next key, decoding the next block when needed.
func (c *cursor) next(dec *zstd.Decoder) error {
	c.j++
	for !c.valid() && c.bi+1 < len(c.k.first) {
		c.bi++
		var buf []byte
		if c.bl != nil {
			buf = c.bl.raw
		}
		bl, err := c.k.decode(c.bi, dec, buf)
		if err != nil {
			c.bl = nil
			return err
		}
		c.bl, c.j = bl, 0
	}
	if !c.valid() {
		c.bl = nil
	}
	return nil
}

// mergeViewers merges the viewers sections of a day's hours (format 4)
// key by key into b: per author, impressions summed and the values of
// its tuples (tv: tuple -> value+1, 0 absent) once. With tv nil the
// sections are rollups' (of groups of the day's hours): their postings
// are values already, below limit.
func mergeViewers(secs []*keyed, tv []uint32, limit int, dec *zstd.Decoder, b *keyedBuilder) error {
	if tv != nil {
		limit = len(tv)
	}
	cs := make([]cursor, len(secs))
	for i, k := range secs {
		cs[i] = cursor{k: k, bi: -1, j: -1}
		if err := cs[i].next(dec); err != nil {
			return err
		}
	}
	var ts []uint32
	var payload []byte
	for {
		key, any := uint32(0), false
		for i := range cs {
			if c := &cs[i]; c.valid() && (!any || c.bl.keys[c.j] < key) {
				key, any = c.bl.keys[c.j], true
			}
		}
		if !any {
			return b.err
		}
		var impr uint64
		ts = ts[:0]
		for i := range cs {
			c := &cs[i]
			if !c.valid() || c.bl.keys[c.j] != key {
				continue
			}
			var n uint64
			var err error
			from := len(ts)
			if ts, n, err = viewerTuples(c.bl.raw[c.bl.off[c.j]:c.bl.end[c.j]], limit, ts); err != nil {
				return fmt.Errorf("author %d: %w", key, err)
			}
			if tv != nil {
				j := from
				for _, t := range ts[from:] {
					if v := tv[t]; v != 0 {
						ts[j] = v - 1
						j++
					}
				}
				ts = ts[:j]
			}
			impr += n
			if err := c.next(dec); err != nil {
				return err
			}
		}
		slices.Sort(ts)
		ts = slices.Compact(ts)
		payload = appendViewers(payload[:0], impr, ts)
		b.add(key, payload)
		if b.err != nil {
			return b.err
		}
	}
}

// dayHours is one day's sealed hours as the rollup's maker and verify
// read them: mapped, parsed, released by close.
type dayHours struct {
	parts []*partition
	maps  [][]byte
}

func (h *dayHours) close() {
	unmapAll(h.maps)
	h.maps, h.parts = nil, nil
}

// openDayHours maps the sealed hours of stems (one day's, in order).
// format3 is true when one of them is format 3 (no rollup is made then:
// its index is not a keyed section).
func openDayHours(dir string, stems []string) (h *dayHours, format3 bool, err error) {
	h = &dayHours{}
	for _, stem := range stems {
		path := segPath(dir, stem)
		b, err := mapFile(path)
		if err != nil {
			h.close()
			return nil, false, err
		}
		h.maps = append(h.maps, b)
		p, err := parseSeg(path, b)
		if err != nil {
			h.close()
			return nil, false, fmt.Errorf("%s: %w", path, err)
		}
		if p.format < 4 {
			format3 = true
		}
		h.parts = append(h.parts, p)
	}
	return h, format3, nil
}

// mapFile maps path read-only.
func mapFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if info.Size() == 0 {
		return nil, fmt.Errorf("%s: empty", path)
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, int(info.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("map %s: %w", path, err)
	}
	return b, nil
}

// rollupHead is the header of day's rollup over parts (its hours, in
// order).
func rollupHead(day int64, parts []*partition) []byte {
	lo, hi := int64(1<<63-1), int64(-1<<63)
	for _, p := range parts {
		lo, hi = min(lo, p.minT), max(hi, p.maxT)
	}
	out := append([]byte(nil), rollupMagic...)
	out = binary.AppendVarint(out, day)
	out = binary.AppendVarint(out, lo)
	out = binary.AppendVarint(out, hi)
	out = binary.AppendUvarint(out, uint64(len(rollupFacets)))
	for _, f := range rollupFacets {
		out = binary.AppendUvarint(out, uint64(f))
		out = binary.AppendUvarint(out, uint64(facetLimit(parts, f)))
	}
	out = binary.AppendUvarint(out, uint64(len(parts)))
	for _, p := range parts {
		out = binary.AppendVarint(out, p.hour)
		out = append(out, p.hash[:]...)
	}
	return out
}

// facetLimit is the size of facet f's namespace parts' values are below.
func facetLimit(parts []*partition, f int) int {
	limit := 0
	for _, p := range parts {
		limit = max(limit, p.sizes[nsFacet+f])
	}
	return limit
}

func (h *dayHours) viewers() []*keyed {
	out := make([]*keyed, len(h.parts))
	for i, p := range h.parts {
		out[i] = p.v4.viewers
	}
	return out
}

// tuples is the size of nsTuple h's hours' tuples are below.
func (h *dayHours) tuples() int {
	n := 0
	for _, p := range h.parts {
		n = max(n, p.sizes[nsTuple])
	}
	return n
}

// tupleVals is, for each of rollupFacets, each tuple's value +1 (0
// absent): what the sealer maps an hour's tuples through. The sealer's
// dictionary keeps no integer -> name index, so it reads the tuples' frames
// of `ids` into this (4 bytes a tuple a facet: 8 MiB at 1,000,000 tuples),
// the new ones when a day needs them. It lives while rollups runs, not
// while the sealer seals: read again from `ids` (in the page cache) once
// a day, about 160 ms of CPU at the population (under 2% of the
// day's sealing), it keeps 8 MiB out of the sealer's peak.
type tupleVals struct {
	v   [len(rollupFacets)][]uint32
	off int64 // bytes of `ids` read
}

// extend reads the tuples dir's `ids` holds past what tv read, up to its
// last whole frame.
func (tv *tupleVals) extend(dir string) error {
	f, err := os.Open(filepath.Join(dir, idsFile))
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(tv.off, io.SeekStart); err != nil {
		return err
	}
	br := bufio.NewReaderSize(f, 1<<16)
	var frame []byte
	for {
		head, err := br.Peek(frameHead)
		if err != nil {
			return nil // the end, or a tail being written
		}
		n := int(binary.LittleEndian.Uint32(head))
		if n < 1 || n > maxFrameBody {
			return nil
		}
		frame = slices.Grow(frame[:0], frameHead+n)[:frameHead+n]
		if _, err := io.ReadFull(br, frame); err != nil {
			return nil
		}
		kind, body, _, err := nextFrame(frame)
		if err != nil || kind != kindDict || len(body) < 1 {
			return nil
		}
		if int(body[0]) == nsTuple {
			fs, ok := parseTuple(body[1:])
			for i, g := range rollupFacets {
				v := uint32(0)
				if ok {
					v = fs[g]
				}
				tv.v[i] = append(tv.v[i], v)
			}
		}
		tv.off += int64(len(frame))
	}
}

// tupleMaps gives, for the tuples below n, each of rollupFacets' tuple
// -> value+1 (0 absent).
type tupleMaps func(n int) ([len(rollupFacets)][]uint32, error)

// dayMerge is what a day's rollup is merged from: its hours, mapped
// (rollupFanIn or fewer), or the rollups of groups of them, written
// aside and mapped. parts holds every hour's header (what the rollup
// names); an hour merged into a group is released, its index with it.
type dayMerge struct {
	day    int64
	parts  []*partition
	hours  *dayHours                   // one step
	tv     [len(rollupFacets)][]uint32 // one step: the hours' tuples -> values
	groups []*rollup                   // two steps
	maps   [][]byte
	files  []string // the groups' rollups aside, removed by close
}

// openDayMerge readies the merge of day's sealed hours (stems, in
// order), at most fanIn mapped at once; a day of more is merged a group
// at a time into files in aside. format3: an hour is format 3 (no rollup
// is made then: its index is not a keyed section).
func openDayMerge(dir string, day int64, stems []string, fanIn int, tm tupleMaps, aside string, dec *zstd.Decoder, enc *zstd.Encoder) (m *dayMerge, format3 bool, err error) {
	m = &dayMerge{day: day}
	if len(stems) <= fanIn {
		h, format3, err := openDayHours(dir, stems)
		if err != nil || format3 {
			return nil, format3, err
		}
		m.hours, m.parts = h, h.parts
		if m.tv, err = tm(h.tuples()); err != nil {
			m.close()
			return nil, false, err
		}
		return m, false, nil
	}
	for g := 0; g*fanIn < len(stems); g++ {
		sub, format3, err := openDayMerge(dir, day, stems[g*fanIn:min((g+1)*fanIn, len(stems))], fanIn, tm, aside, dec, enc)
		if err != nil || format3 {
			m.close()
			return nil, format3, err
		}
		path := filepath.Join(aside, fmt.Sprintf("%s%s.%d.tmp", dayStem(day), dayExt, g))
		m.files = append(m.files, path)
		err = writeRollupFile(path, sub.head(), func(i int, b *keyedBuilder) error { return sub.merge(i, dec, b) }, enc, false)
		m.parts = append(m.parts, sub.parts...)
		sub.close()
		if err == nil {
			err = m.mapGroup(path)
		}
		if err != nil {
			m.close()
			return nil, false, err
		}
	}
	return m, false, nil
}

// mapGroup maps the group's rollup at path.
func (m *dayMerge) mapGroup(path string) error {
	b, err := mapFile(path)
	if err != nil {
		return err
	}
	m.maps = append(m.maps, b)
	x, err := parseRollup(path, b)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	m.groups = append(m.groups, x)
	return nil
}

// head is the day's rollup's header.
func (m *dayMerge) head() []byte { return rollupHead(m.day, m.parts) }

// merge merges the day's viewers by rollupFacets[i] into b.
func (m *dayMerge) merge(i int, dec *zstd.Decoder, b *keyedBuilder) error {
	if m.hours != nil {
		return mergeViewers(m.hours.viewers(), m.tv[i], 0, dec, b)
	}
	secs := make([]*keyed, len(m.groups))
	for j, x := range m.groups {
		if secs[j] = x.section(rollupFacets[i]); secs[j] == nil {
			return fmt.Errorf("%s: no section by %s", x.path, identify.Facets[rollupFacets[i]])
		}
	}
	return mergeViewers(secs, nil, facetLimit(m.parts, rollupFacets[i]), dec, b)
}

// close releases the hours and the groups' rollups and removes the
// files aside.
func (m *dayMerge) close() {
	if m.hours != nil {
		m.hours.close()
	}
	// An hour merged into a group is unmapped: nothing may read its
	// index after.
	for _, p := range m.parts {
		p.v4, p.x, p.cold = nil, nil, nil
	}
	unmapAll(m.maps)
	m.maps, m.groups = nil, nil
	for _, f := range m.files {
		os.Remove(f)
	}
}

// writeRollup writes day's rollup from its sealed hours (stems, in order),
// tuples mapped through tv, at most fanIn hours mapped at once (groups
// merged aside, in dir, first): aside, synced, renamed into place. made
// false: an hour is format 3.
func writeRollup(dir string, day int64, stems []string, tv *tupleVals, fanIn int, dec *zstd.Decoder, enc *zstd.Encoder) (made bool, err error) {
	tm := func(n int) ([len(rollupFacets)][]uint32, error) {
		if len(tv.v[0]) < n {
			if err := tv.extend(dir); err != nil {
				return tv.v, err
			}
			if len(tv.v[0]) < n {
				return tv.v, fmt.Errorf("%s holds %d tuples, the hours of %s refer to %d", idsFile, len(tv.v[0]), dayStem(day), n)
			}
		}
		return tv.v, nil
	}
	m, format3, err := openDayMerge(dir, day, stems, fanIn, tm, dir, dec, enc)
	if err != nil || format3 {
		return false, err
	}
	defer m.close()
	if err := writeRollupFile(rollupPath(dir, day), m.head(), func(i int, b *keyedBuilder) error { return m.merge(i, dec, b) }, enc, true); err != nil {
		return false, err
	}
	return true, syncDir(dir)
}

// writeRollupFile writes a rollup to path: head, then for each of
// rollupFacets the section merge makes; written aside and renamed into
// place, synced first when sync (a group's, merged and removed at once,
// is not).
func writeRollupFile(path string, head []byte, merge func(i int, b *keyedBuilder) error, enc *zstd.Encoder, sync bool) (err error) {
	tmp := path + ".tmp"
	os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if f != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	sum := sha256.New()
	buf := bufio.NewWriterSize(f, 1<<16)
	out := &hashWriter{w: buf, h: sum}
	// crc covers what is not compressed (the header, the directories, the
	// trailer), in the order parseRollup reads it.
	crc := crc32.Update(0, castagnoli, head)
	out.Write(head)
	var trailer []byte
	var z []byte
	for i := range rollupFacets {
		var raw, comp []int
		b := &keyedBuilder{sink: func(r []byte) error {
			z = enc.EncodeAll(r, z[:0])
			raw, comp = append(raw, len(r)), append(comp, len(z))
			_, err := out.Write(z)
			return err
		}}
		trailer = binary.LittleEndian.AppendUint64(trailer, uint64(out.n))
		if err := merge(i, b); err != nil {
			return err
		}
		b.close()
		if b.err != nil {
			return b.err
		}
		trailer = binary.LittleEndian.AppendUint64(trailer, uint64(out.n))
		kd := appendKeyedDir(nil, b.first, b.nkeys, raw, comp)
		crc = crc32.Update(crc, castagnoli, kd)
		out.Write(kd)
	}
	out.Write(trailer)
	out.Write(binary.LittleEndian.AppendUint32(nil, crc32.Update(crc, castagnoli, trailer)))
	if out.err != nil {
		return out.err
	}
	if _, err := buf.Write(sum.Sum(nil)); err != nil {
		return err
	}
	if err := buf.Flush(); err != nil {
		return err
	}
	if sync {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	err = f.Close()
	f = nil
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// hashWriter writes to w and h, counting bytes and keeping the first
// error.
type hashWriter struct {
	w   io.Writer
	h   hash.Hash
	n   int64
	err error
}

func (w *hashWriter) Write(b []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	w.h.Write(b)
	n, err := w.w.Write(b)
	w.n += int64(n)
	w.err = err
	return n, err
}

// rollups writes the rollup of each day that is over (a later hour is on
// disk, or its last hour is sealed) and whose hours are all sealed (no
// log of the day left), when it has none or its rollup names other hours
// (an hour sealed late, after a crash). A day retention has begun
// removing gets none: its rollup went with its first hour removed. Called
// by the sealer after each seal and at start (a ledger sealed before
// rollups existed gets them then).
func (l *Ledger) rollups(enc *zstd.Encoder, dec *zstd.Decoder) {
	dir := l.opts.Dir
	ls, err := list(dir)
	if err != nil {
		l.fail("rollup", err)
		return
	}
	if len(ls.stems) == 0 {
		return
	}
	if !l.autChecked {
		// At start, a rollup whose SHA-256 fails or that does not parse
		// is rebuilt from its hours, as a missing one is: readers do not
		// hash a rollup (a week's would cost more than the query), so
		// one damaged is not left unused until someone runs verify. One
		// written before the CRC32C is rebuilt too: a reader cannot tell
		// a changed byte of its directories from a first key.
		for day := range ls.days {
			switch err := rollupUsable(rollupPath(dir, day)); {
			case errors.Is(err, errRollupOld):
				l.log.Info("ledger: day rollup of an earlier format, rebuilt from its hours with a CRC32C", slog.String("file", rollupPath(dir, day)))
				ls.days[day] = false
			case err != nil:
				l.log.Warn("ledger: day rollup unusable, rebuilt from its hours", slog.String("file", rollupPath(dir, day)), slog.String("error", err.Error()))
				ls.days[day] = false
			}
		}
	}
	l.authoredIndexes(ls, enc, dec)
	ret, err := readRetired(dir)
	if err != nil {
		l.fail("rollup", err)
		return
	}
	gone := map[int64]bool{}
	for _, r := range ret {
		if h, ok := parseStem(r.stem); ok {
			gone[dayOf(h)] = true
		}
	}
	type dayState struct {
		stems      []string
		open, last bool
	}
	days := map[int64]*dayState{}
	var order []int64
	for _, stem := range ls.stems {
		h, _ := parseStem(stem)
		d := dayOf(h)
		st := days[d]
		if st == nil {
			st = &dayState{}
			days[d] = st
			order = append(order, d)
		}
		if !ls.seg[stem] {
			st.open = true
			continue
		}
		st.stems = append(st.stems, stem)
		st.last = st.last || hourOf(h) == d+23*3600
	}
	newest := order[len(order)-1]
	var tv tupleVals
	for _, d := range order {
		st := days[d]
		if st.open || gone[d] || l.noRollup[d] || len(st.stems) == 0 || len(st.stems) > maxDayParts || d == newest && !st.last {
			continue
		}
		if ls.days[d] && rollupNames(rollupPath(dir, d), st.stems) {
			continue
		}
		made, err := writeRollup(dir, d, st.stems, &tv, cmp.Or(l.opts.rollupFanIn, rollupFanIn), dec, enc)
		if err != nil {
			l.fail("rollup "+dayStem(d), err)
			continue
		}
		if !made {
			if l.noRollup == nil {
				l.noRollup = map[int64]bool{}
			}
			l.noRollup[d] = true // a format 3 hour: its reach is read hour by hour
			continue
		}
		l.m.rollups.Inc()
	}
}

// errRollupOld is a rollup written before rollups carried a CRC32C: a
// reader uses it without that check, the writer rebuilds it at start.
var errRollupOld = errors.New("written before day rollups carried a CRC32C (" + rollupMagic1 + ")")

// rollupUsable says why the rollup at path is not one a reader may use
// as it is (its SHA-256 fails, it does not parse) or one to write again
// (errRollupOld); nil when it is neither.
func rollupUsable(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if len(b) < 32 || sha256.Sum256(b[:len(b)-32]) != [32]byte(b[len(b)-32:]) {
		return errors.New("SHA-256 does not match the rollup's content (edited, corrupt or cut)")
	}
	x, err := parseRollup(path, b)
	if err == nil && !x.checked {
		err = errRollupOld
	}
	return err
}

// rollupHeaderOf reads the header of the rollup at path, naming about
// parts partitions; nil when it cannot be read or does not parse.
func rollupHeaderOf(path string, parts int) *rollup {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	// A header of 24 hours is about 1,100 bytes, then 34 or so a part.
	b := make([]byte, 4096+48*parts)
	n, _ := f.ReadAt(b, 0)
	x, _, err := rollupHeader(b[:n])
	if err != nil {
		return nil
	}
	return x
}

// rollupNames reports whether the rollup at path names exactly the hours
// stems, from its header alone.
func rollupNames(path string, stems []string) bool {
	x := rollupHeaderOf(path, len(stems))
	if x == nil || len(x.hours) != len(stems) {
		return false
	}
	for i, stem := range stems {
		if partName(x.hours[i]) != stem {
			return false
		}
	}
	return true
}

// errRollupDiffers says a rollup is not what its hours make.
var errRollupDiffers = errors.New("differs from the rollup its hours make")

// verifyRollup checks day's rollup: its SHA-256, that it names exactly
// the day's sealed hours (stems) with the hashes they have (hashes: stem
// -> SHA-256 as the file ends), and that its postings are what those
// hours' viewers merge to (tf: the dictionary's tuple -> value+1 of
// facet f).
func verifyRollup(dir string, day int64, stems []string, hashes map[string][32]byte, tf func(f int) []uint32, fanIn int, dec *zstd.Decoder) string {
	path := rollupPath(dir, day)
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) < 32 || sha256.Sum256(b[:len(b)-32]) != [32]byte(b[len(b)-32:]) {
		return "SHA-256 does not match the rollup's content (edited or corrupt)"
	}
	x, err := parseRollup(path, b)
	if err != nil {
		return err.Error()
	}
	if x.day != day {
		return fmt.Sprintf("says it is day %s", dayStem(x.day))
	}
	var named []string
	for _, h := range x.hours {
		named = append(named, partName(h))
	}
	if !slices.Equal(named, stems) {
		return fmt.Sprintf("names hours %v, the directory holds %v sealed", named, stems)
	}
	for i, stem := range stems {
		if hv := hashes[stem]; x.hashes[i] != hv {
			return fmt.Sprintf("names hour %s by hash %s, the hour hashes to %s", stem, short(x.hashes[i][:]), short(hv[:]))
		}
	}
	aside, enc := "", (*zstd.Encoder)(nil)
	if len(stems) > fanIn {
		// The groups' merges go to a directory of verify's own: verify
		// writes nothing in the ledger's. They are read back once and
		// removed: the fastest level.
		if aside, err = os.MkdirTemp("", "warden-verify-"); err != nil {
			return err.Error()
		}
		defer os.RemoveAll(aside)
		if enc, err = zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedFastest)); err != nil {
			return err.Error()
		}
		defer enc.Close()
	}
	tm := func(int) (tv [len(rollupFacets)][]uint32, _ error) {
		for i, f := range rollupFacets {
			tv[i] = tf(f)
		}
		return tv, nil
	}
	m, format3, err := openDayMerge(dir, day, stems, fanIn, tm, aside, dec, enc)
	if err != nil {
		return err.Error()
	}
	if format3 {
		return "made from a format 3 hour (the sealer makes none)"
	}
	defer m.close()
	head := m.head()
	if !x.checked { // written before the CRC32C: the same header under the earlier magic
		head = append([]byte(rollupMagic1), head[len(rollupMagic):]...)
	}
	if !bytes.HasPrefix(b, head) {
		return "header " + errRollupDiffers.Error()
	}
	for i, f := range rollupFacets {
		k := x.section(f)
		if k == nil {
			return errRollupDiffers.Error()
		}
		j := 0
		kb := &keyedBuilder{sink: func(raw []byte) error {
			if j >= len(k.first) {
				return errRollupDiffers
			}
			bl, err := k.decode(j, dec, nil)
			if err != nil {
				return err
			}
			if !bytes.Equal(bl.raw, raw) {
				return errRollupDiffers
			}
			j++
			return nil
		}}
		err = m.merge(i, dec, kb)
		kb.close()
		if err == nil {
			err = kb.err
		}
		if err == nil && (j != len(k.first) || !slices.Equal(kb.first, k.first) || !slices.Equal(kb.nkeys, k.nkeys)) {
			err = errRollupDiffers
		}
		if err != nil {
			return fmt.Sprintf("postings by %s: %v", identify.Facets[rollupFacets[i]], err)
		}
	}
	return ""
}
