package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Partition files.
const (
	walExt    = ".wal"
	segExt    = ".seg"
	tornMark  = ".torn-"
	hourName  = "2006-01-02T15"
	segMagic  = "WLEDGER1"
	maxSegRaw = 4 << 30 // a decompressed partition past this is refused
)

// partName is the file stem of the partition starting at hour (unix s).
func partName(hour int64) string { return time.Unix(hour, 0).UTC().Format(hourName) }

// parseStem reads a stem back into its hour.
func parseStem(stem string) (int64, bool) {
	t, err := time.Parse(hourName, stem)
	if err != nil {
		return 0, false
	}
	return t.Unix(), true
}

// partition is one hour of the ledger, read from its log or its sealed
// file: the dictionary, the Accesses and the index.
type partition struct {
	path       string
	hour       int64 // unix seconds
	sealed     bool
	minT, maxT int64 // unix µs of the first and last Access; minT > maxT when empty
	dict       [nsCount][]string
	lookup     [nsCount]map[string]uint32 // built on first use
	entries    []entry
	idx        *index
	prev, hash [32]byte // sealed only
}

func newPartition(path string, hour int64) *partition {
	return &partition{path: path, hour: hour, minT: 1<<63 - 1, maxT: -1 << 63}
}

// id returns the dictionary integer of s in namespace ns.
func (p *partition) id(ns int, s string) (uint32, bool) {
	if p.lookup[ns] == nil {
		m := make(map[string]uint32, len(p.dict[ns]))
		for i, v := range p.dict[ns] {
			m[v] = uint32(i)
		}
		p.lookup[ns] = m
	}
	v, ok := p.lookup[ns][s]
	return v, ok
}

func (p *partition) sizes() *[nsCount]int {
	var s [nsCount]int
	for i := range s {
		s[i] = len(p.dict[i])
	}
	return &s
}

func (p *partition) name(ns int, v uint32) string {
	if int(v) < len(p.dict[ns]) {
		return p.dict[ns][v]
	}
	return ""
}

func (p *partition) addEntry(e *entry) {
	p.entries = append(p.entries, *e)
	p.minT, p.maxT = min(p.minT, e.t), max(p.maxT, e.t)
}

// readLog parses a log's frames up to the first that does not check. It
// returns the partition and where its valid part ends; a frame whose CRC
// checks but whose Access does not decode ends it too (why says so).
func readLog(path string, b []byte) (p *partition, valid int, why error) {
	kind, body, n, err := nextFrame(b)
	if err != nil || kind != kindHeader {
		return nil, 0, errors.New("no header frame")
	}
	hour, err := parseHeader(body)
	if err != nil {
		return nil, 0, err
	}
	p = newPartition(path, hour)
	off := n
	sizes := p.sizes()
	var e entry
	for off < len(b) {
		kind, body, n, err := nextFrame(b[off:])
		if err != nil {
			return p, off, fmt.Errorf("at byte %d: %w", off, err)
		}
		switch kind {
		case kindDict:
			if len(body) < 1 || int(body[0]) >= nsCount {
				return p, off, fmt.Errorf("at byte %d: bad dictionary entry", off)
			}
			ns := body[0]
			p.dict[ns] = append(p.dict[ns], string(body[1:]))
			sizes[ns]++
		case kindAccess:
			if err := decodeEntry(body, hour*1e6, sizes, &e); err != nil {
				return p, off, fmt.Errorf("at byte %d: access: %w", off, err)
			}
			p.addEntry(&e)
		default:
			return p, off, fmt.Errorf("at byte %d: unknown frame kind %d", off, kind)
		}
		off += n
	}
	return p, off, nil
}

// buildIndex indexes every Access of p.
func (p *partition) buildIndex() {
	x := newIndex()
	for i := range p.entries {
		x.addEntry(&p.entries[i])
	}
	p.idx = x
}

// encodeSeg writes p, indexed, as a sealed partition after prev.
func encodeSeg(p *partition, prev [32]byte, enc *zstd.Encoder) ([]byte, [32]byte) {
	var body []byte
	for ns := range p.dict {
		body = binary.AppendUvarint(body, uint64(len(p.dict[ns])))
		for _, s := range p.dict[ns] {
			body = binary.AppendUvarint(body, uint64(len(s)))
			body = append(body, s...)
		}
	}
	ix := appendIndex(nil, p.idx)
	body = binary.AppendUvarint(body, uint64(len(ix)))
	body = append(body, ix...)
	body = binary.AppendUvarint(body, uint64(len(p.entries)))
	var eb []byte
	for i := range p.entries {
		eb = appendEntry(eb[:0], &p.entries[i], p.hour*1e6)
		body = binary.AppendUvarint(body, uint64(len(eb)))
		body = append(body, eb...)
	}
	out := []byte(segMagic)
	out = binary.AppendVarint(out, p.hour)
	out = binary.AppendVarint(out, p.minT)
	out = binary.AppendVarint(out, p.maxT)
	out = binary.AppendUvarint(out, uint64(len(body)))
	out = append(out, prev[:]...)
	z := enc.EncodeAll(body, nil)
	out = binary.AppendUvarint(out, uint64(len(z)))
	out = append(out, z...)
	sum := sha256.Sum256(out)
	return append(out, sum[:]...), sum
}

// segHeader is what a sealed partition says of itself before its body.
type segHeader struct {
	hour, minT, maxT int64
	rawLen           uint64
	prev, hash       [32]byte
	body             []byte // compressed
}

// parseSeg checks a sealed partition's framing and hash; it does not
// decompress.
func parseSeg(b []byte) (*segHeader, error) {
	if len(b) < len(segMagic)+32 || string(b[:len(segMagic)]) != segMagic {
		return nil, errors.New("not a sealed ledger partition (bad magic or too short)")
	}
	content, trailer := b[:len(b)-32], b[len(b)-32:]
	h := &segHeader{}
	copy(h.hash[:], trailer)
	if sha256.Sum256(content) != h.hash {
		return nil, errors.New("SHA-256 does not match the partition's content (edited or corrupt)")
	}
	d := decoder{b: content[len(segMagic):]}
	h.hour, h.minT, h.maxT = d.varint(), d.varint(), d.varint()
	h.rawLen = d.uvarint()
	copy(h.prev[:], d.bytes(32))
	n := d.count(1)
	h.body = d.bytes(n)
	if d.err == nil && len(d.b) != 0 {
		d.fail(errors.New("trailing bytes"))
	}
	if d.err != nil {
		return nil, fmt.Errorf("header: %w", d.err)
	}
	if h.rawLen > maxSegRaw {
		return nil, fmt.Errorf("header: body of %d bytes is past the bound", h.rawLen)
	}
	return h, nil
}

// readSeg reads a sealed partition whole: its hash checked, its body
// decompressed, its dictionary, index and Accesses decoded.
func readSeg(path string, b []byte, dec *zstd.Decoder) (*partition, error) {
	h, err := parseSeg(b)
	if err != nil {
		return nil, err
	}
	raw, err := dec.DecodeAll(h.body, make([]byte, 0, h.rawLen))
	if err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	if uint64(len(raw)) != h.rawLen {
		return nil, fmt.Errorf("body: %d bytes, header says %d", len(raw), h.rawLen)
	}
	p := newPartition(path, h.hour)
	p.sealed, p.prev, p.hash = true, h.prev, h.hash
	d := decoder{b: raw}
	for ns := range p.dict {
		n := d.count(1)
		p.dict[ns] = make([]string, 0, n)
		for i := 0; i < n && d.err == nil; i++ {
			p.dict[ns] = append(p.dict[ns], string(d.bytes(d.count(1))))
		}
	}
	ix := d.bytes(d.count(1))
	if d.err != nil {
		return nil, fmt.Errorf("body: %w", d.err)
	}
	if p.idx, err = readIndex(ix); err != nil {
		return nil, err
	}
	n := d.count(1)
	sizes := p.sizes()
	p.entries = make([]entry, 0, n)
	var e entry
	for i := 0; i < n && d.err == nil; i++ {
		eb := d.bytes(d.count(1))
		if d.err != nil {
			break
		}
		if err := decodeEntry(eb, h.hour*1e6, sizes, &e); err != nil {
			return nil, fmt.Errorf("access %d: %w", i, err)
		}
		p.addEntry(&e)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail(errors.New("trailing bytes"))
	}
	if d.err != nil {
		return nil, fmt.Errorf("body: %w", d.err)
	}
	if len(p.entries) > 0 && (p.minT != h.minT || p.maxT != h.maxT) {
		return nil, errors.New("header's time span differs from its Accesses'")
	}
	p.minT, p.maxT = h.minT, h.maxT
	return p, nil
}

// indexMatches rebuilds p's index from its Accesses and compares it with
// the one stored: an auditor's check that the index says what the
// Accesses say.
func (p *partition) indexMatches() bool {
	stored := appendIndex(nil, p.idx)
	q := &partition{entries: p.entries}
	q.buildIndex()
	return bytes.Equal(stored, appendIndex(nil, q.idx))
}

// listing is the directory's partitions by stem: a sealed file wins over
// a log of the same hour (a seal in progress).
type listing struct {
	stems []string // sorted
	seg   map[string]bool
	wal   map[string]bool
	size  map[string]int64
}

func list(dir string) (*listing, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	l := &listing{seg: map[string]bool{}, wal: map[string]bool{}, size: map[string]int64{}}
	seen := map[string]bool{}
	for _, de := range des {
		name := de.Name()
		var stem string
		switch {
		case strings.HasSuffix(name, segExt):
			stem = strings.TrimSuffix(name, segExt)
			if _, ok := parseStem(stem); !ok {
				continue
			}
			l.seg[stem] = true
		case strings.HasSuffix(name, walExt):
			stem = strings.TrimSuffix(name, walExt)
			if _, ok := parseStem(stem); !ok {
				continue
			}
			l.wal[stem] = true
		default:
			continue
		}
		if info, err := de.Info(); err == nil {
			l.size[name] = info.Size()
		}
		if !seen[stem] {
			seen[stem] = true
			l.stems = append(l.stems, stem)
		}
	}
	slices.Sort(l.stems)
	return l, nil
}

func segPath(dir, stem string) string { return filepath.Join(dir, stem+segExt) }
func walPath(dir, stem string) string { return filepath.Join(dir, stem+walExt) }
