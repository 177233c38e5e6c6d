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

	"github.com/warden-gw/warden/internal/privacy"
)

// Partition files.
const (
	walExt   = ".wal"
	segExt   = ".seg"
	tornMark = ".torn-"
	hourName = "2006-01-02T15"
	// partSecondName names a part of an hour after its first
	// (Options.PartitionAccesses) by the second it was opened at.
	partSecondName = "2006-01-02T15_04_05"
	segMagic       = segMagic5 // what the sealer writes
	segMagicV3     = "WLEDGER3"
	segMagicV1     = "WLEDGER1"
	segMagicV2     = "WLEDGER2"
	maxSegRaw      = 4 << 30 // a decompressed partition past this is refused
)

// partName is the file stem of the partition keyed by key (unix s): an
// hour's first part is named by its hour (2026-11-22T10), each further
// part by the second it was opened at (2026-11-22T10_20_34). Stems sort
// as their keys do.
func partName(key int64) string {
	t := time.Unix(key, 0).UTC()
	if key%3600 == 0 {
		return t.Format(hourName)
	}
	return t.Format(partSecondName)
}

// parseStem reads a stem back into its key: the hour of an hour's first
// part, the second a further part was opened at.
func parseStem(stem string) (int64, bool) {
	if len(stem) == len(hourName) {
		t, err := time.Parse(hourName, stem)
		if err != nil {
			return 0, false
		}
		return t.Unix(), true
	}
	t, err := time.Parse(partSecondName, stem)
	if err != nil || t.Unix()%3600 == 0 || t.Format(partSecondName) != stem {
		// On the hour is the hour's own name: one name per key.
		return 0, false
	}
	return t.Unix(), true
}

// hourOf is the hour a partition's key falls in: the hour its Accesses
// belong to, as the hour of a whole-hour partition.
func hourOf(key int64) int64 { return key - ((key%3600)+3600)%3600 }

// partition is one hour of the ledger, or a part of one
// (Options.PartitionAccesses), read from its log or its sealed file. Ids
// are the shared dictionary's once translated (a log is read with its own
// dictionary, dict, then translated); a sealed partition's Accesses and
// cold tables are decoded on first use.
type partition struct {
	path string
	// hour is the partition's key (unix s): its hour, or for a further
	// part of an hour the second it was opened at (hourOf gives the hour).
	// Times are encoded from it.
	hour       int64
	sealed     bool
	minT, maxT int64           // unix µs of the first and last Access; minT > maxT when empty
	dict       [nsCount]strtab // a log's own dictionary, before translation
	sizes      [nsCount]int    // ids are below these
	entries    []entry
	format     int     // a sealed partition's: 3 or 4
	x          *tables // a log's index, or a format 3 partition's
	v4         *index4 // a format 4 partition's index
	cold       []byte  // a sealed partition's compressed Accesses; nil once decoded
	coldRaw    uint64
	coldErr    error
	prev, hash [32]byte // sealed only
	// lazy: a sealed partition a reader has not mapped yet (hour, hash
	// and path alone; Reader.load).
	lazy bool
}

func newPartition(path string, hour int64) *partition {
	return &partition{path: path, hour: hour, minT: 1<<63 - 1, maxT: -1 << 63}
}

func (p *partition) logSizes() *[nsCount]int {
	var s [nsCount]int
	for i := range s {
		s[i] = p.dict[i].len()
	}
	return &s
}

func (p *partition) addEntry(e *entry) {
	p.entries = append(p.entries, *e)
	p.minT, p.maxT = min(p.minT, e.t), max(p.maxT, e.t)
}

// readLog parses a log's frames up to the first that does not check. It
// returns the partition (ids of its own dictionary) and where its valid
// part ends; a frame whose CRC checks but whose Access does not decode
// ends it too (why says so).
func readLog(path string, b []byte) (p *partition, valid int, why error) {
	return readLogInto(path, b, nil, nil)
}

// readLogInto is readLog with the entries' slices cut from a (nil:
// allocated each) and the entries decoded into reuse when it is large
// enough: the sealer's, whose partition is dropped whole.
func readLogInto(path string, b []byte, a *entryArena, reuse []entry) (p *partition, valid int, why error) {
	kind, body, n, err := nextFrame(b)
	if err != nil || kind != kindHeader {
		return nil, 0, errors.New("no header frame")
	}
	hour, err := parseHeader(body)
	if err != nil {
		return nil, 0, err
	}
	p = newPartition(path, hour)
	switch c := countFrames(b[n:], &p.dict); {
	case cap(reuse) >= c:
		p.entries = reuse[:0]
	case a != nil:
		// The sealer's, kept for the next log: room for one an eighth
		// larger (an hour's Accesses vary) before it is made again.
		p.entries = make([]entry, 0, c+c/8)
	default:
		p.entries = make([]entry, 0, c)
	}
	off := n
	sizes := p.logSizes()
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
			p.dict[ns].add(body[1:])
			sizes[ns]++
		case kindAccess:
			// Decoded where it is kept: copying an entry (about 200
			// bytes, pointers among them) was a tenth of reading a log.
			i := len(p.entries)
			p.entries = slices.Grow(p.entries, 1)[:i+1]
			e := &p.entries[i]
			if err := decodeEntry(body, hour*1e6, sizes, e, a); err != nil {
				p.entries = p.entries[:i]
				return p, off, fmt.Errorf("at byte %d: access: %w", off, err)
			}
			p.minT, p.maxT = min(p.minT, e.t), max(p.maxT, e.t)
		default:
			return p, off, fmt.Errorf("at byte %d: unknown frame kind %d", off, kind)
		}
		off += n
	}
	p.sizes = *sizes
	return p, off, nil
}

// countAccesses counts the Access frames of b by their headers alone (no
// checksum): at least as many as check, so that a sealer reading an hour
// sizes its Accesses once instead of doubling them.
func countAccesses(b []byte) int {
	return countFrames(b, nil)
}

// countFrames is countAccesses, and sizes each namespace's dictionary
// frames (names and bytes) in dict, when not nil, so that their tables
// grow once.
func countFrames(b []byte, dict *[nsCount]strtab) int {
	c := 0
	var names, size [nsCount]int
	for len(b) > frameHead {
		n := binary.LittleEndian.Uint32(b)
		if n < 1 || uint64(n) > uint64(len(b)-frameHead) {
			break
		}
		switch k := b[frameHead]; {
		case k == kindAccess:
			c++
		case k == kindDict && n >= 2 && int(b[frameHead+1]) < nsCount:
			names[b[frameHead+1]]++
			size[b[frameHead+1]] += recordLen(int(n) - 2)
		}
		b = b[frameHead+int(n):]
	}
	if dict != nil {
		for ns := range dict {
			dict[ns].data = make([]byte, 0, size[ns])
			dict[ns].starts = make([]uint64, 0, names[ns])
		}
	}
	return c
}

// translate turns a log's ids (its own dictionary) into those id gives
// (the shared dictionary's), and drops the log's dictionary.
func (p *partition) translate(id func(ns int, s []byte) uint32) {
	p.translateWith(func(ns int, names *strtab, out []uint32) {
		for i := range out {
			out[i] = id(ns, names.at(uint32(i)))
		}
	})
}

// translateWith is translate with ids giving the integers of every name
// of a namespace of the log's dictionary at once (out[i]: name i's).
func (p *partition) translateWith(ids func(ns int, names *strtab, out []uint32)) {
	var m [nsCount][]uint32
	for ns := range m {
		m[ns] = make([]uint32, p.dict[ns].len())
		ids(ns, &p.dict[ns], m[ns])
	}
	for i := range p.entries {
		translateEntry(&p.entries[i], &m)
	}
	p.dict = [nsCount]strtab{}
}

// buildIndex indexes every Access of p (ids of the shared dictionary).
func (p *partition) buildIndex() { p.x = buildTables(p.entries, p.hour) }

// A sealed partition (format 3, still read; written by the sealer up to
// format 4):
//
//	"WLEDGER3", hour, first and last Access (unix µs) as varints,
//	the predecessor's SHA-256 (32 bytes),
//	the shared dictionary's size per namespace (uvarints, nsCountV3),
//	hot offset, hot length, cold length decompressed, cold offset, cold
//	length (u64 each), zeros up to the hot offset (8-byte aligned),
//	hot tables (uncompressed), cold (zstd: the Accesses), the SHA-256 of
//	everything before it.
const segHotFields = 5 * 8

// parseSeg reads a sealed partition's header and index where they lie in
// b (b stays referenced); it checks the structure, not the hash (Verify
// does, and readSeg).
func parseSeg(path string, b []byte) (*partition, error) {
	if len(b) >= len(segMagic4) && (string(b[:len(segMagic4)]) == segMagic4 || string(b[:len(segMagic5)]) == segMagic5) {
		return parseSeg4(path, b)
	}
	if len(b) >= len(segMagicV1) && string(b[:len(segMagicV1)]) == segMagicV1 {
		return nil, errFormat1
	}
	if len(b) >= len(segMagicV2) && string(b[:len(segMagicV2)]) == segMagicV2 {
		return nil, errFormat2
	}
	if len(b) < len(segMagicV3)+32 || string(b[:len(segMagicV3)]) != segMagicV3 {
		return nil, errors.New("not a sealed ledger partition (bad magic or too short)")
	}
	d := decoder{b: b[len(segMagicV3):]}
	p := newPartition(path, d.varint())
	p.sealed, p.format = true, 3
	p.minT, p.maxT = d.varint(), d.varint()
	copy(p.prev[:], d.bytes(32))
	for ns := range nsCountV3 {
		v := d.uvarint()
		if v > 1<<32 {
			d.fail(errors.New("bad dictionary size"))
		}
		p.sizes[ns] = int(v)
	}
	var f [5]uint64
	for i := range f {
		f[i] = d.u64()
	}
	if d.err != nil {
		return nil, fmt.Errorf("header: %w", d.err)
	}
	hotOff, hotLen, rawLen, coldOff, coldLen := f[0], f[1], f[2], f[3], f[4]
	n := uint64(len(b))
	if hotOff%8 != 0 || hotOff > n || hotLen > n || coldOff != hotOff+hotLen || coldLen > n || coldOff+coldLen+32 != n {
		return nil, errors.New("header: sections do not fit the file (truncated or corrupt)")
	}
	if rawLen > maxSegRaw {
		return nil, fmt.Errorf("header: body of %d bytes is past the bound", rawLen)
	}
	copy(p.hash[:], b[n-32:])
	p.x = &tables{}
	if err := p.x.parseHot(aligned(b[hotOff:coldOff])); err != nil {
		return nil, fmt.Errorf("hot tables: %w", err)
	}
	p.cold, p.coldRaw = b[coldOff:coldOff+coldLen], rawLen
	return p, nil
}

var (
	errFormat1 = errors.New("sealed by a warden before ledger format 2 (per-hour dictionaries); " +
		"this warden reads formats 3 and 4 only: keep the directory for the older warden and give this one a new ledger directory")
	errFormat2 = errors.New("sealed in ledger format 2 (cold took-by tables, who-took rows for absent facets); " +
		"this warden reads formats 3 and 4 only: keep the directory for the older warden and give this one a new ledger directory")
)

// loadCold decodes a sealed partition's Accesses and keeps them in
// p.entries: for readSeg (verify, the sealer's checks), which reads one
// partition whole. A Reader decodes with decodeCold and keeps nothing.
// tuples is the shared dictionary's tuples (format 4's identities).
func (p *partition) loadCold(dec *zstd.Decoder, tuples *strtab) error {
	if p.cold == nil || p.coldErr != nil {
		return p.coldErr
	}
	es, err := p.decodeCold(dec, tuples)
	if err != nil {
		return err
	}
	p.entries, p.cold = es, nil
	return nil
}

// decodeCold decodes a sealed partition's Accesses from its compressed
// bytes (kept: a later query decodes them again) and checks them against
// the header's time span. It does not keep them; an error is remembered
// in p.coldErr, so that a corrupt partition is decoded once.
func (p *partition) decodeCold(dec *zstd.Decoder, tuples *strtab) ([]entry, error) {
	if p.coldErr != nil {
		return nil, p.coldErr
	}
	var es []entry
	var err error
	if p.format >= 4 {
		es, err = parseColumns(p.cold, p.hour, &p.sizes, tuples, dec)
	} else {
		var raw []byte
		raw, err = decodeSized(dec, p.cold, p.coldRaw, nil)
		if err == nil {
			es, err = parseCold(raw, p.hour, &p.sizes)
		}
	}
	if err == nil {
		err = p.checkSpan(es)
	}
	if err != nil {
		p.coldErr = fmt.Errorf("ledger: %s: Accesses: %w", p.path, err)
		return nil, p.coldErr
	}
	return es, nil
}

// parseCold decodes a format 3 partition's Accesses (decompressed).
func parseCold(raw []byte, hour int64, sizes *[nsCount]int) ([]entry, error) {
	d := decoder{b: raw}
	n := d.count(1)
	es := make([]entry, 0, n)
	var e entry
	for i := 0; i < n && d.err == nil; i++ {
		eb := d.bytes(d.count(1))
		if d.err != nil {
			break
		}
		if err := decodeEntry(eb, hour*1e6, sizes, &e, nil); err != nil {
			return nil, fmt.Errorf("access %d: %w", i, err)
		}
		es = append(es, e)
	}
	if d.err != nil {
		return nil, d.err
	}
	if used := len(raw) - len(d.b); (used+7)&^7 != len(raw) {
		return nil, errTrailing
	}
	return es, nil
}

// checkSpan checks a sealed partition's decoded Accesses against the
// header's time span.
func (p *partition) checkSpan(es []entry) error {
	lo, hi := int64(1<<63-1), int64(-1<<63)
	for i := range es {
		lo, hi = min(lo, es[i].t), max(hi, es[i].t)
	}
	if len(es) > 0 && (p.minT != lo || p.maxT != hi) || len(es) == 0 && p.minT <= p.maxT && p.format >= 4 {
		return errors.New("header's time span differs from its Accesses'")
	}
	return nil
}

// readSeg reads a sealed partition whole: its hash checked, its hot
// tables and Accesses decoded.
func readSeg(path string, b []byte, dec *zstd.Decoder, tuples *strtab) (*partition, error) {
	if len(b) >= len(segMagic)+32 && (string(b[:len(segMagic)]) == segMagic5 || string(b[:len(segMagic)]) == segMagic4 || string(b[:len(segMagic)]) == segMagicV3) &&
		sha256.Sum256(b[:len(b)-32]) != [32]byte(b[len(b)-32:]) {
		return nil, errors.New("SHA-256 does not match the partition's content (edited or corrupt)")
	}
	p, err := parseSeg(path, b)
	if err != nil {
		return nil, err
	}
	if err := p.loadCold(dec, tuples); err != nil {
		return nil, err
	}
	return p, nil
}

// indexMatches rebuilds a format 3 partition's tables from its Accesses and compares them
// with those stored: an auditor's check that the index says what the
// Accesses say.
func (p *partition) indexMatches() bool {
	q := buildTables(p.entries, p.hour)
	return bytes.Equal(p.x.appendHot(nil), q.appendHot(nil))
}

// listing is the directory's partitions by stem: a sealed file wins over
// a log of the same hour (a seal in progress).
type listing struct {
	stems []string // sorted
	seg   map[string]bool
	wal   map[string]bool
	files []os.DirEntry   // the ledger's files above (sizes reads them)
	days  map[int64]bool  // days with a rollup file (rollup.go)
	aut   map[string]bool // hours (stems) with an author index (authored.go)
}

// isLedger is an error unless dir is a ledger's directory: one a writer
// opened (its lock and key are made at once) or that holds partitions,
// its dictionary or retention's record, or the privacy budgets a DP
// answer keeps in a ledger directory (one asked before any gateway wrote
// there, or with --no-ledger, makes the config's ledger.dir for them: an
// empty ledger). A mistyped --ledger must not read as a ledger in which
// nobody took anything.
func isLedger(dir string, ls *listing) error {
	if len(ls.stems) > 0 {
		return nil
	}
	for _, name := range []string{"key", "lock", idsFile, retiredFile, privacy.BudgetFile, privacy.KeyFile} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			return nil
		}
	}
	return fmt.Errorf("ledger: %s is not a ledger directory (no partitions, key, lock, ids or privacy budgets): is it the gateway's ledger.dir?", dir)
}

func list(dir string) (*listing, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	l := &listing{seg: map[string]bool{}, wal: map[string]bool{}, days: map[int64]bool{}, aut: map[string]bool{}}
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
		case strings.HasSuffix(name, autExt):
			stem = strings.TrimSuffix(name, autExt)
			if _, ok := parseStem(stem); !ok {
				continue
			}
			l.aut[stem] = true
			l.files = append(l.files, de)
			continue
		case strings.HasSuffix(name, dayExt):
			day, ok := parseDayStem(strings.TrimSuffix(name, dayExt))
			if !ok {
				continue
			}
			l.days[day] = true
			l.files = append(l.files, de)
			continue
		default:
			continue
		}
		l.files = append(l.files, de)
		if !seen[stem] {
			seen[stem] = true
			l.stems = append(l.stems, stem)
		}
	}
	slices.Sort(l.stems)
	return l, nil
}

// sizes is the size of each of the listing's files by name, read when
// asked (a stat a file: retention's size bound alone needs them, and a
// reader listing a directory of many parts would pay for them on every
// query).
func (l *listing) sizes() map[string]int64 {
	m := make(map[string]int64, len(l.files))
	for _, de := range l.files {
		if info, err := de.Info(); err == nil {
			m[de.Name()] = info.Size()
		}
	}
	return m
}

func segPath(dir, stem string) string { return filepath.Join(dir, stem+segExt) }
func walPath(dir, stem string) string { return filepath.Join(dir, stem+walExt) }
