package ledger

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/warden-gw/warden/internal/identify"
)

// fuzzLedger opens a ledger and adds the seed Accesses of the fuzz
// targets: a look-up, a feed page and a refusal.
func fuzzLedger(f *testing.F) (string, *clock, *Ledger) {
	dir := f.TempDir()
	c := &clock{t: t0}
	l, err := Open(Options{Dir: dir, Now: c.now})
	if err != nil {
		f.Fatal(err)
	}
	l.Add(profile(t0, "1", "10.0.0.1", "100", true))
	l.Add(posts(t0.Add(time.Second), "2", "10.0.0.2", "7", "8"))
	l.Add(&Entry{Time: t0.Add(2 * time.Second), RequestID: "x", Status: 429, Rule: "r", Facet: "ip", MaskRules: []string{"m"}})
	return dir, c, l
}

// FuzzDecodeLog feeds arbitrary bytes to the log reader and the Access
// decoder: never a panic, and what decodes encodes back to the same bytes.
// Each input is read as it is and with its frames' checksums made right: a
// mutation of a frame fails its checksum, so without the second reading
// the fuzzer never reaches the decoders.
func FuzzDecodeLog(f *testing.F) {
	dir, _, l := fuzzLedger(f)
	l.Sync()
	l.Close()
	log, _ := readFileOrNil(walPath(dir, partName(t0.Unix())))
	f.Add(log)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, b := range [][]byte{data, reframed(data)} {
			p, valid, _ := readLog("fuzz", b)
			if valid > len(b) {
				t.Fatalf("valid %d past %d", valid, len(b))
			}
			if p == nil {
				continue
			}
			sizes := p.logSizes()
			for i := range p.entries {
				enc := appendEntry(nil, &p.entries[i], p.hour*1e6)
				var e entry
				if err := decodeEntry(enc, p.hour*1e6, sizes, &e, nil); err != nil {
					t.Fatalf("re-decode: %v", err)
				}
				if again := appendEntry(nil, &e, p.hour*1e6); string(again) != string(enc) {
					t.Fatalf("round trip differs")
				}
			}
			p.buildIndex()
			var x tables
			if err := x.parseHot(aligned(p.x.appendHot(nil))); err != nil {
				t.Fatalf("hot tables round trip: %v", err)
			}
		}
	})
}

// reframed is a copy of a log whose frames have their checksums
// recomputed; it stops at the first frame whose length does not fit.
func reframed(log []byte) []byte {
	b := bytes.Clone(log)
	for off := 0; off+frameHead < len(b); {
		n := int(binary.LittleEndian.Uint32(b[off:]))
		if n < 1 || n > maxFrameBody || n > len(b)-off-frameHead {
			break
		}
		binary.LittleEndian.PutUint32(b[off+4:], crc32.Checksum(b[off+frameHead:off+frameHead+n], castagnoli))
		off += frameHead + n
	}
	return b
}

// FuzzDecodeEntry decodes arbitrary Access bodies against a small
// dictionary: never a panic, never an id outside it.
func FuzzDecodeEntry(f *testing.F) {
	p := newPartition("", t0.Unix())
	for ns := range p.dict {
		for _, s := range []string{"a", "b", "c"} {
			p.dict[ns].add([]byte(s))
		}
	}
	e := entry{t: t0.UnixMicro() + 5, reqID: "0123456789abcdef01234567", route: 1, facets: [NumFacets]uint32{0, 2, 3}, list: 1,
		page: 9, status: 200, classes: []uint32{0, 1}, recs: []rec{{id: 2, classes: 3, masked: 1}}, authors: []uint32{1}, links: []uint64{5}}
	f.Add(appendEntry(nil, &e, t0.UnixMicro()))
	f.Add([]byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var e entry
		if decodeEntry(b, t0.UnixMicro(), p.logSizes(), &e, nil) != nil {
			return
		}
		for _, v := range append(append([]uint32{}, e.classes...), e.masks...) {
			if int(v) >= 3 {
				t.Fatalf("name %d outside the dictionary", v)
			}
		}
		for _, r := range e.recs {
			if r.id >= 3 {
				t.Fatalf("record %d outside the dictionary", r.id)
			}
		}
		r := &Reader{d: names{d: &dictionary{t: p.dict}}}
		r.entryOf(&e) // must not panic
		buildTables([]entry{e}, t0.Unix())
	})
}

// FuzzParseSeg feeds arbitrary bytes to the sealed partition reader
// (format 4's header, keyed sections and Accesses columns; format 3's
// too): never a panic, whatever a query then reads of it.
func FuzzParseSeg(f *testing.F) {
	dir, c, l := fuzzLedger(f)
	c.set(t0.Add(time.Hour))
	l.Add(profile(t0.Add(time.Hour), "1", "10.0.0.1", "100", true))
	l.Close()
	l, err := Open(Options{Dir: dir, Now: c.now}) // seals the first hour
	if err != nil {
		f.Fatal(err)
	}
	l.Close()
	seg, err := readFileOrNil(segPath(dir, partName(t0.Unix())))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seg)
	f.Add(segV4(seg))
	f.Add([]byte(segMagic4))
	f.Add([]byte(segMagic5))
	dec := mustDecoder(f)
	tf := []uint32{0, 1, 2, 3}
	tuples := dirTuples(f, dir)
	f.Fuzz(func(t *testing.T, b []byte) {
		// A format 5 input with its CRC32C made right too, so that the
		// fuzzer's changes reach the sections' decoders past the check.
		if fixed := withSegCRC(b); fixed != nil {
			fuzzSeg(t, fixed, dec, tf, tuples)
		}
		fuzzSeg(t, b, dec, tf, tuples)
	})
}

// withSegCRC is b (a format 5 partition) with the CRC32C its header and
// directories have; nil when b is not one that parses.
func withSegCRC(b []byte) []byte {
	p, sum, err := parseSeg45("fuzz", b)
	if err != nil || p.format != 5 {
		return nil
	}
	out := slices.Clone(b)
	binary.LittleEndian.PutUint32(out[len(out)-36:], sum)
	return out
}

// segV4 is a format 5 partition written as format 4 (without its CRC32C).
func segV4(b []byte) []byte {
	return appendHash(append([]byte(segMagic4), b[len(segMagic5):len(b)-36]...))
}

// fuzzSeg is FuzzParseSeg's property for one input.
func fuzzSeg(t *testing.T, b []byte, dec *zstd.Decoder, tf []uint32, tuples *strtab) {
	p, err := parseSeg("fuzz", b)
	if err != nil {
		return
	}
	// Reach over a cut hour without an author index reads four
	// columns alone (eachAuthored): what it sees
	// is what the Accesses decoded whole hold.
	type authored struct {
		i       uint32
		t       int64
		authors string
	}
	var cols []authored
	colErr := errors.New("not format 4")
	if p.format >= 4 {
		_, colErr = eachAuthored(p.cold, p.hour, dec, func(i uint32, t int64, _ uint64, authors []uint32) {
			cols = append(cols, authored{i, t, fmt.Sprint(authors)})
		})
	}
	p.loadCold(dec, tuples)
	if colErr == nil && p.coldErr == nil && p.entries != nil {
		var whole []authored
		for i, e := range p.entries {
			if len(e.authors) > 0 {
				whole = append(whole, authored{uint32(i), e.t, fmt.Sprint(e.authors)})
			}
		}
		if !slices.Equal(cols, whole) {
			t.Fatalf("columns alone give %v, the Accesses %v", cols, whole)
		}
	}
	if p.v4 == nil {
		return
	}
	p.v4.viewers.rawBlocks(dec)
	p.v4.takers.eachSorted([]uint32{0, 1, 2, 5, 9}, dec, func(int, []byte) {})
	for k := range uint32(8) {
		if b, err := p.v4.viewers.get(k, dec); err == nil {
			viewers4(b, tf, nil)
		}
		p.v4.rows4(k, p.hour*1e6, tf, dec)
	}
}

// FuzzCacheTail writes arbitrary log bytes in two pieces, a reader through
// a Cache opened after each: never a panic, and after the whole it answers
// as a cold reader (the same error, or the same Accesses and took-by).
// The cut's top bit asks for the bytes with their frames' checksums made
// right (see FuzzDecodeLog), its other bits say where the first piece ends.
func FuzzCacheTail(f *testing.F) {
	dir, _, l := fuzzLedger(f)
	l.Sync()
	l.Close()
	log, _ := readFileOrNil(walPath(dir, partName(t0.Unix())))
	for _, cut := range []uint16{0, 5, 20, uint16(len(log) / 2), uint16(len(log) - 3)} {
		f.Add(log, cut)
		f.Add(log, cut|0x8000)
	}
	f.Add([]byte{}, uint16(0))
	dir = f.TempDir() // one directory, its log rewritten each run: the fuzzer's speed is its I/O
	path := walPath(dir, partName(t0.Unix()))
	f.Fuzz(func(t *testing.T, b []byte, cut uint16) {
		if cut&0x8000 != 0 {
			b = reframed(b)
		}
		k := min(int(cut&0x7fff), len(b))
		if err := os.WriteFile(path, b[:k], 0o600); err != nil {
			t.Fatal(err)
		}
		c := NewCache(0)
		if r, err := OpenReader(dir, Window{}, WithCache(c)); err == nil {
			r.Close()
		}
		fh, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = fh.Write(b[k:])
		fh.Close()
		if err != nil {
			t.Fatal(err)
		}
		cold, cerr := OpenReader(dir, Window{})
		warm, werr := OpenReader(dir, Window{}, WithCache(c))
		if (cerr == nil) != (werr == nil) {
			t.Fatalf("cold reader: %v; cached: %v", cerr, werr)
		}
		if cerr != nil {
			return
		}
		defer cold.Close()
		defer warm.Close()
		each := func(r *Reader) string {
			var s strings.Builder
			r.Each(func(e *Entry) bool { fmt.Fprintf(&s, "%+v\n", *e); return true })
			return s.String()
		}
		if a, b := each(cold), each(warm); a != b {
			t.Fatalf("cold reader's Accesses\n%s\ncached\n%s", a, b)
		}
		for _, acct := range []string{"1", "2", ""} {
			if a, b := fmt.Sprint(must(cold.TookBy(identify.FacetAccount, acct))(t)), fmt.Sprint(must(warm.TookBy(identify.FacetAccount, acct))(t)); a != b {
				t.Fatalf("took-by %q: cold %s, cached %s", acct, a, b)
			}
		}
		if a, b := fmt.Sprint(must(cold.WhoTook("100", "", identify.FacetIP))(t)), fmt.Sprint(must(warm.WhoTook("100", "", identify.FacetIP))(t)); a != b {
			t.Fatalf("who-took 100: cold %s, cached %s", a, b)
		}
	})
}

// FuzzParseRollup feeds arbitrary bytes to a day rollup's parser and
// reach's reading of its sections: never a panic.
func FuzzParseRollup(f *testing.F) {
	dir := f.TempDir()
	c := &clock{t: day0}
	l, err := Open(Options{Dir: dir, Now: c.now})
	if err != nil {
		f.Fatal(err)
	}
	for h := range 25 {
		at := day0.Add(time.Duration(h) * time.Hour)
		c.set(at)
		l.Add(posts(at, fmt.Sprint("acct", h%3), "10.0.0.1", "a1", fmt.Sprint("a", h%4)))
	}
	l.Close()
	if l, err = Open(Options{Dir: dir, Now: func() time.Time { return day0.Add(27 * time.Hour) }}); err != nil {
		f.Fatal(err)
	}
	l.Close()
	seed, err := os.ReadFile(rollupPath(dir, day0.Unix()))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(rollupV1(seed))
	f.Add([]byte(rollupMagic))
	f.Add([]byte(rollupMagic1))
	dec := mustDecoder(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		ins := [][]byte{b}
		// With its CRC32C made right too, so that the fuzzer's changes
		// reach the sections' decoders past the check.
		if x, sum, err := parseRollupSum("fuzz", b); err == nil && x.checked {
			fixed := slices.Clone(b)
			binary.LittleEndian.PutUint32(fixed[len(fixed)-36:], sum)
			ins = append(ins, fixed)
		}
		for _, b := range ins {
			x, err := parseRollup("fuzz", b)
			if err != nil {
				continue
			}
			for _, k := range x.secs {
				k.rawBlocks(dec)
				k.eachSorted([]uint32{0, 1, 2, 3, 5, 9}, dec, func(_ int, p []byte) {
					viewerTuples(p, 1<<20, nil)
				})
			}
		}
	})
}

// FuzzParseAuthored feeds arbitrary bytes to an hour's author index
// parser and reach's reading of its postings: never a panic.
func FuzzParseAuthored(f *testing.F) {
	dir := f.TempDir()
	c := &clock{t: day0}
	l, err := Open(Options{Dir: dir, Now: c.now})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 40 {
		at := day0.Add(time.Duration(i) * time.Minute)
		c.set(at)
		l.Add(posts(at, fmt.Sprint("acct", i%3), "10.0.0.1", "a1", fmt.Sprint("a", i%4)))
	}
	l.Close()
	if l, err = Open(Options{Dir: dir, Now: func() time.Time { return day0.Add(2 * time.Hour) }}); err != nil {
		f.Fatal(err)
	}
	l.Close()
	seed, err := os.ReadFile(autPath(dir, partName(day0.Unix())))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(autMagic))
	dec := mustDecoder(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := parseAuthored(b)
		if err != nil {
			return
		}
		x.k.rawBlocks(dec)
		x.k.eachSorted([]uint32{0, 1, 2, 3, 5, 9}, dec, func(_ int, p []byte) {
			accessNumbers(p, x.n, nil)
		})
	})
}
