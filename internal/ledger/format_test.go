package ledger

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/identify"
)

// wantWhoTook is who-took computed from the Accesses themselves.
func wantWhoTook(es []*Entry, subject, class string, f int) map[string]WhoTookRow {
	out := map[string]WhoTookRow{}
	for _, e := range es {
		var served []string
		hit := false
		for _, r := range e.Records {
			if r.ID != subject {
				continue
			}
			for i, c := range e.Classes {
				if r.Classes&^r.Masked&(1<<i) != 0 {
					served = append(served, c)
				}
			}
			if class == "" || slices.Contains(served, class) {
				hit = true
			}
		}
		if !hit {
			continue
		}
		v := e.Identity[f]
		row, ok := out[v]
		if !ok {
			row = WhoTookRow{Value: v, Classes: []string{}, First: e.Time, Last: e.Time}
		}
		row.Count++
		if e.Time.Before(row.First) {
			row.First = e.Time
		}
		if e.Time.After(row.Last) {
			row.Last = e.Time
		}
		for _, c := range served {
			if !slices.Contains(row.Classes, c) {
				row.Classes = append(row.Classes, c)
			}
		}
		slices.Sort(row.Classes)
		out[v] = row
	}
	return out
}

// A sealed partition's who-took rows answer as its Accesses do, for every
// facet: those every Access has, one only some have (net), and those none
// has (app, fingerprint: format 3 keeps no rows for them and answers from
// another facet's).
func TestWhoTookEveryFacet(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: t0}
	l := openAt(t, dir, c, Options{})
	var es []*Entry
	for i := 0; i < 60; i++ {
		at := t0.Add(time.Duration(i) * 30 * time.Second)
		e := profile(at, fmt.Sprint(i%4), fmt.Sprintf("10.0.0.%d", i%3), fmt.Sprint(100+i%5), i%4 == 1)
		if i%2 == 0 {
			e.Identity[3] = "" // net only on some Accesses
		}
		if i%7 == 0 {
			e = posts(at, fmt.Sprint(i%4), "10.0.0.9", "100", "101")
			e.Records[0].ID, e.Records[1].ID = "100", "103" // posts whose records are subjects too
			e.Classes, e.Records[0].Classes, e.Records[1].Classes = []string{"profile"}, 1, 1
		}
		es = append(es, e)
		l.Add(e)
	}
	c.set(t0.Add(time.Hour))
	l.Add(profile(t0.Add(time.Hour), "x", "10.0.0.9", "999", false))
	waitSealed(t, dir, partName(t0.Unix()))
	l.Close()
	r := reader(t, dir, Window{From: t0, To: t0.Add(time.Hour - time.Second)})
	defer r.Close()
	if len(r.parts) != 1 || !r.parts[0].sealed || !r.win.covers(r.parts[0]) {
		t.Fatalf("want the sealed hour answered from its index: %d partitions", len(r.parts))
	}
	for _, fc := range identify.Facets {
		for _, subject := range []string{"100", "101", "103", "104", "nobody"} {
			for _, class := range []string{"", "contact", "profile"} {
				name := fmt.Sprintf("%s/%s/%q", fc, subject, class)
				got := must(r.WhoTook(subject, class, fc))(t)
				want := wantWhoTook(es, subject, class, int(fc)-1)
				if len(got.Rows) != len(want) {
					t.Fatalf("%s: %d rows %+v, want %d %+v", name, len(got.Rows), got.Rows, len(want), want)
				}
				for _, row := range got.Rows {
					w := want[row.Value]
					if row.Count != w.Count || !row.First.Equal(w.First) || !row.Last.Equal(w.Last) || !slices.Equal(row.Classes, w.Classes) {
						t.Fatalf("%s: row %+v, want %+v", name, row, w)
					}
				}
			}
		}
	}
}

// A partition sealed in format 2 is refused by readers and verify with an
// error naming its file and what to do.
func TestFormat2Refused(t *testing.T) {
	dir := t.TempDir()
	sealHours(t, dir, 2, Options{})
	seg := segPath(dir, partName(t0.Unix()))
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	copy(b, segMagicV2)
	if err := os.WriteFile(seg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = OpenReader(dir, Window{})
	if err == nil || !strings.Contains(err.Error(), seg) || !strings.Contains(err.Error(), "format 2") {
		t.Fatalf("reader: %v", err)
	}
	rep, err := Verify(dir)
	if err != nil || rep.OK || !strings.Contains(strings.Join(rep.Problems, "\n"), "format 2") {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

// A ledger sealed in format 3 (by the warden before format 4) still
// reads, verifies and answers as the same ledger in format 4 does.
func TestFormat3Reads(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: t0}
	l := openAt(t, dir, c, Options{})
	for h := 0; h < 4; h++ {
		at := t0.Add(time.Duration(h) * time.Hour)
		c.set(at)
		for i := 0; i < 50; i++ {
			l.Add(profile(at.Add(time.Duration(i)*time.Second), fmt.Sprint(i%7), fmt.Sprint("10.0.0.", i%3), fmt.Sprint(h*1000+i), i%3 == 0))
			l.Add(posts(at.Add(time.Duration(i)*time.Second+1), fmt.Sprint(i%5), "10.0.0.1", fmt.Sprint(i%4), fmt.Sprint(7+h)))
		}
	}
	waitSealed(t, dir, partName(t0.Add(2*time.Hour).Unix()))
	l.Close()
	queries := func(dir string) string {
		r := reader(t, dir, Window{})
		defer r.Close()
		var b strings.Builder
		for _, s := range []string{"1001", "1002", "2003", "nobody"} {
			fmt.Fprintf(&b, "%+v\n", must(r.WhoTook(s, "", identify.FacetAccount))(t).Rows)
			fmt.Fprintf(&b, "%+v\n", must(r.WhoTook(s, "contact", identify.FacetIP))(t).Rows)
		}
		for _, a := range []string{"1", "2", "3"} {
			tb := must(r.TookBy(identify.FacetAccount, a))(t)
			fmt.Fprintf(&b, "%v %v %d %d\n", tb.Served, tb.Masked, tb.Subjects, tb.Accesses)
		}
		v, impr := must2(r.Viewers([]string{"7", "8", "9", "1"}, identify.FacetAccount))(t)
		for i := range v {
			fmt.Fprintf(&b, "%v %d\n", v[i].ToArray(), impr[i])
		}
		return b.String()
	}
	want := queries(dir)
	if segs := rewriteV3(t, dir); len(segs) != 3 {
		t.Fatalf("segs %v", segs)
	}
	r := reader(t, dir, Window{})
	for _, p := range r.parts {
		if p.sealed && p.format != 3 {
			t.Fatalf("%s: format %d after the rewrite", p.path, p.format)
		}
	}
	r.Close()
	if got := queries(dir); got != want {
		t.Fatalf("format 3 answers:\n%s\nformat 4 answers:\n%s", got, want)
	}
	if rep, err := Verify(dir); err != nil || !rep.OK {
		t.Fatalf("verify of format 3: %+v %v", rep, err)
	}
}

// rewriteV3 rewrites dir's sealed partitions (format 4) in format 3, the
// chain kept, as an earlier warden sealed them; it returns their paths.
func rewriteV3(t *testing.T, dir string) []string {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(dir, "*"+segExt))
	slices.Sort(segs)
	enc := mustEncoder(t)
	var prev [32]byte
	for _, s := range segs {
		b, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		p, err := readSeg(s, b, mustDecoder(t), dirTuples(t, dir))
		if err != nil || p.format != 5 {
			t.Fatalf("%s: format %d, %v", s, p.format, err)
		}
		out, sum := encodeSegV3(p, prev, enc)
		prev = sum
		if err := os.WriteFile(s, out, 0o600); err != nil {
			t.Fatal(err)
		}
		// That warden made no author indexes (the sealer makes none of a
		// format 3 hour).
		os.Remove(strings.TrimSuffix(s, segExt) + autExt)
	}
	return segs
}

// Format 4's Accesses columns give back every field, for request ids of
// warden's form from several processes (out of order) and for others.
func TestColumnsRoundTrip(t *testing.T) {
	hour := t0.Unix()
	es := []entry{
		{t: hour*1e6 + 5, reqID: reqIDOf(7, 100), route: 1, facets: [NumFacets]uint32{0, 2, 3, 0, 1}, list: 1, page: 9, status: 200,
			classes: []uint32{0, 1}, recs: []rec{{id: 2, classes: 3, masked: 1}, {id: 1, classes: 1}}, authors: []uint32{1, 1}, links: []uint64{5, 1 << 63}},
		{t: hour*1e6 + 3, reqID: reqIDOf(9, 1), lookup: 77, unref: true, ageRank: 31, status: 404},
		{t: hour*1e6 + 3600e6 - 1, reqID: reqIDOf(7, 99), facets: [NumFacets]uint32{1}, status: 429, rule: 2, facet: 3, masks: []uint32{2, 0}},
		{t: hour * 1e6, reqID: "refused-1", ageRank: 2, status: 500},
		{t: hour*1e6 + 1, reqID: strings.Repeat("x", 300), status: 200},
		{t: hour*1e6 + 2, reqID: "0123456789ABCDEF01234567", status: 200}, // upper case: not warden's form
		{t: hour*1e6 + 2, reqID: reqIDOf(1<<32-1, 1<<64-1), status: 200},
	}
	var sizes [nsCount]int
	for i := range sizes {
		sizes[i] = 4
	}
	sizes[nsTuple] = len(es)
	var tt strtab
	tuples := tuplesOf(es, func(key []byte) uint32 { v, _ := tt.intern(string(key)); return v })
	b := appendColumns(nil, es, tuples, hour, mustEncoder(t))
	got, err := parseColumns(b, hour, &sizes, &tt, mustDecoder(t))
	if err != nil {
		t.Fatal(err)
	}
	es[4].reqID = es[4].reqID[:255] // ids are kept up to 255 bytes
	if len(got) != len(es) {
		t.Fatalf("%d Accesses back, want %d", len(got), len(es))
	}
	for i := range es {
		if fmt.Sprintf("%+v", normal(es[i])) != fmt.Sprintf("%+v", normal(got[i])) {
			t.Fatalf("Access %d:\n got %+v\nwant %+v", i, got[i], es[i])
		}
	}
	// An id outside the dictionary is refused, not returned.
	sizes[nsID] = 1
	if _, err := parseColumns(b, hour, &sizes, &tt, mustDecoder(t)); err == nil {
		t.Fatal("record id past the dictionary accepted")
	}
	// Truncated anywhere: an error, never a panic.
	for n := range len(b) {
		if _, err := parseColumns(b[:n], hour, &sizes, &tt, mustDecoder(t)); err == nil {
			t.Fatalf("cut at %d of %d bytes accepted", n, len(b))
		}
	}
}

// normal makes empty slices nil, as decoding gives them.
func normal(e entry) entry {
	if len(e.masks) == 0 {
		e.masks = nil
	}
	if len(e.classes) == 0 {
		e.classes = nil
	}
	return e
}

// A format 4 partition edited and given a fresh hash (what a forger
// would do) is reported by verify with its path (its content, or its
// successor's link to it), and never makes the reader or verify panic,
// wherever the change is.
func TestFormat4Forged(t *testing.T) {
	dir := t.TempDir()
	sealHours(t, dir, 3, Options{})
	seg := segPath(dir, partName(t0.Unix()))
	orig, _ := os.ReadFile(seg)
	caught := 0
	positions := 0
	for at := len(segMagic); at < len(orig)-32; at += max(1, len(orig)/97) {
		positions++
		b := slices.Clone(orig[:len(orig)-32])
		b[at] ^= 0x5a
		os.WriteFile(seg, appendHash(b), 0o600)
		if r, err := OpenReader(dir, Window{}); err == nil {
			askNamesPath(t, r, seg)
			r.Close()
		} else if !strings.Contains(err.Error(), seg) {
			t.Fatalf("byte %d: reader error without the path: %v", at, err)
		}
		rep, err := Verify(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK {
			caught++
			if p := strings.Join(rep.Problems, "\n"); !strings.Contains(p, seg) && !strings.Contains(p, "chain broken") {
				t.Fatalf("byte %d: %v", at, rep.Problems)
			}
		}
	}
	// A changed byte changes the partition's hash, so its successor's
	// link breaks even when the content still decodes.
	if caught != positions {
		t.Fatalf("verify caught %d of %d edits", caught, positions)
	}
}

// rewriteV4 rewrites dir's sealed hours (format 5) in format 4, as an
// earlier warden sealed them: the same bytes without the CRC32C, the
// chain kept. Their derived files (named by the hours' hashes) are
// removed and a writer started on the directory makes them again; it
// must not touch the hours.
func rewriteV4(t *testing.T, dir string) {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(dir, "*"+segExt))
	slices.Sort(segs)
	var prev []byte
	var last time.Time
	var written [][]byte
	for _, s := range segs {
		b, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		if string(b[:len(segMagic5)]) != segMagic5 {
			t.Fatalf("%s: not format 5", s)
		}
		out := append([]byte(segMagic4), b[len(segMagic5):len(b)-36]...)
		at := len(segMagic4)
		for range 3 { // hour, first, last
			_, n := binary.Varint(out[at:])
			at += n
		}
		if prev != nil {
			copy(out[at:at+32], prev)
		}
		out = appendHash(out)
		prev = out[len(out)-32:]
		if err := os.WriteFile(s, out, 0o600); err != nil {
			t.Fatal(err)
		}
		written = append(written, out)
		os.Remove(strings.TrimSuffix(s, segExt) + autExt)
		h, _ := parseStem(strings.TrimSuffix(filepath.Base(s), segExt))
		os.Remove(rollupPath(dir, dayOf(h)))
		last = time.Unix(h, 0)
	}
	openAt(t, dir, &clock{t: last.Add(2 * time.Hour)}, Options{}).Close()
	for i, s := range segs {
		if b, _ := os.ReadFile(s); !bytes.Equal(b, written[i]) {
			t.Fatalf("%s: a writer's start rewrote a format 4 hour", s)
		}
	}
	if rep, err := Verify(dir); err != nil || !rep.OK {
		t.Fatalf("verify of format 4: %v %v", err, rep.Problems)
	}
}

// Who-took says a class is unseen when no Access of the window served or
// masked a class of that name, though the ledger holds the name as a
// route's: from a sealed hour's index, from its Accesses when the window
// cuts it, and from an open log.
func TestWhoTookClassUnseen(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: t0}
	l := openAt(t, dir, c, Options{})
	defer l.Close()
	l.Add(profile(t0, "a", "10.0.0.1", "100", false))
	c.set(t0.Add(time.Hour))
	l.Add(profile(t0.Add(time.Hour), "b", "10.0.0.2", "100", false))
	waitSealed(t, dir, partName(t0.Unix()))
	l.Sync()
	for _, w := range []struct {
		name string
		win  Window
	}{
		{"sealed, its index", Window{From: t0, To: t0.Add(time.Hour - time.Second)}},
		{"sealed, a cut window", Window{From: t0, To: t0.Add(time.Minute)}},
		{"the open log", Window{From: t0.Add(time.Hour)}},
	} {
		r := reader(t, dir, w.win)
		for class, unseen := range map[string]bool{"contact": false, "profile": false, "GET /v1/users/{id}": true, "nosuch": true} {
			got := must(r.WhoTook("100", class, identify.FacetAccount))(t)
			if got.ClassUnseen != unseen || !unseen && len(got.Rows) != 1 || unseen && len(got.Rows) != 0 {
				t.Errorf("%s: class %q: unseen %v with %d rows, want %v", w.name, class, got.ClassUnseen, len(got.Rows), unseen)
			}
		}
		r.Close()
	}
}
