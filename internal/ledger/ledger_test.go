package ledger

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/identify"
)

// clock is a settable time for the writer.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func openAt(t *testing.T, dir string, c *clock, o Options) *Ledger {
	t.Helper()
	o.Dir, o.Now = dir, c.now
	l, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// profile is an Access of one profile look-up.
func profile(at time.Time, account, ip, subject string, masked bool) *Entry {
	r := Record{ID: subject, Classes: 0b11}
	if masked {
		r.Masked = 0b01
	}
	return &Entry{Time: at, RequestID: fmt.Sprintf("%08x%016x", 1, at.UnixNano()), Route: "GET /v1/users/{id}",
		Identity: [NumFacets]string{1: account, 2: ip, 3: ip + "/24"}, Lookup: subject, Status: 200,
		Classes: []string{"contact", "profile"}, Records: []Record{r}}
}

func posts(at time.Time, account, ip string, authors ...string) *Entry {
	e := &Entry{Time: at, Route: "GET /v1/feed", Identity: [NumFacets]string{1: account, 2: ip}, Status: 200, Page: "cursor-x"}
	for i, a := range authors {
		e.Records = append(e.Records, Record{ID: fmt.Sprintf("p%d-%s", i, a)})
		e.Authors = append(e.Authors, a)
		e.Links = append(e.Links, a)
	}
	return e
}

func reader(t *testing.T, dir string, w Window) *Reader {
	t.Helper()
	r, err := OpenReader(dir, w)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Across a sealed hour and the open one, queries answer from the index
// where the window covers a partition and from the Accesses where it cuts
// one, with the same results.
func TestQueriesAcrossPartitions(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: t0}
	l := openAt(t, dir, c, Options{})
	// Hour 10: account 1 takes contact of 100..109, account 2 is masked on
	// 100..104; hour 11: account 1 takes 105..114 again from another ip.
	for i := 0; i < 10; i++ {
		l.Add(profile(t0.Add(time.Duration(i)*time.Minute), "1", "10.0.0.1", fmt.Sprint(100+i), false))
	}
	for i := 0; i < 5; i++ {
		l.Add(profile(t0.Add(time.Duration(30+i)*time.Minute), "2", "10.0.0.2", fmt.Sprint(100+i), true))
	}
	l.Add(posts(t0.Add(40*time.Minute), "2", "10.0.0.2", "7", "7", "8"))
	l.Add(posts(t0.Add(41*time.Minute), "3", "10.0.0.3", "8"))
	c.set(t0.Add(time.Hour))
	for i := 5; i < 15; i++ {
		l.Add(profile(t0.Add(time.Hour+time.Duration(i)*time.Minute), "1", "10.0.1.1", fmt.Sprint(100+i), false))
	}
	l.Add(posts(t0.Add(time.Hour+30*time.Minute), "4", "10.0.0.4", "9", "7"))
	l.Add(&Entry{Time: t0.Add(time.Hour + 31*time.Minute), RequestID: "refused-1", Route: "GET /v1/users/{id}",
		Identity: [NumFacets]string{1: "1"}, Status: 429, Rule: "per-account", Facet: "account"})
	waitSealed(t, dir, partName(t0.Unix()))
	l.Sync()

	for _, w := range []struct {
		name string
		win  Window
	}{{"everything", Window{}}, {"cut windows", Window{From: t0.Add(-time.Minute), To: t0.Add(3 * time.Hour)}}} {
		t.Run(w.name, func(t *testing.T) {
			r := reader(t, dir, w.win)
			if r.Partitions() != 2 {
				t.Fatalf("%d partitions, want 2", r.Partitions())
			}
			wt := must(r.WhoTook("103", "", identify.FacetAccount))(t)
			if len(wt.Rows) != 2 || wt.Rows[0].Value != "1" || wt.Rows[0].Count != 1 || wt.Rows[1].Value != "2" {
				t.Fatalf("who-took 103: %+v", wt.Rows)
			}
			if !slices.Equal(wt.Rows[0].Classes, []string{"contact", "profile"}) || !slices.Equal(wt.Rows[1].Classes, []string{"profile"}) {
				t.Fatalf("who-took 103 classes: %+v", wt.Rows)
			}
			if wt := must(r.WhoTook("103", "contact", identify.FacetAccount))(t); len(wt.Rows) != 1 || wt.Rows[0].Value != "1" {
				t.Fatalf("who-took 103 contact: %+v", wt.Rows)
			}
			if wt := must(r.WhoTook("107", "contact", identify.FacetIP))(t); len(wt.Rows) != 2 || wt.Rows[0].Count != 1 {
				t.Fatalf("who-took 107 by ip: %+v", wt.Rows)
			}
			tb := must(r.TookBy(identify.FacetAccount, "1"))(t)
			if tb.Served["contact"] != 15 || tb.Subjects != 15 || tb.Accesses != 21 || len(tb.Masked) != 0 {
				t.Fatalf("took-by account 1: %+v", tb)
			}
			if !tb.First.Equal(t0) || !tb.Last.Equal(t0.Add(time.Hour+31*time.Minute)) {
				t.Fatalf("took-by account 1 span: %v %v", tb.First, tb.Last)
			}
			tb = must(r.TookBy(identify.FacetAccount, "2"))(t)
			if tb.Masked["contact"] != 5 || tb.Served["contact"] != 0 || tb.Served["profile"] != 5 {
				t.Fatalf("took-by account 2: %+v", tb)
			}
			v, impr := must2(r.Viewers([]string{"7", "8", "9"}, identify.FacetAccount))(t)
			if v[0].GetCardinality() != 2 || v[1].GetCardinality() != 2 || v[2].GetCardinality() != 1 {
				t.Fatalf("viewers: %v %v %v", v[0], v[1], v[2])
			}
			if !slices.Equal(impr, []uint64{3, 2, 1}) {
				t.Fatalf("impressions %v", impr)
			}
			f := must(r.Find("refused-1"))(t)
			if f == nil || f.Entry.Status != 429 || f.Entry.Rule != "per-account" || f.Entry.Identity[1] != "1" {
				t.Fatalf("find: %+v", f)
			}
			if d := must(r.Distinct(identify.FacetAccount, "1", "contact"))(t); d != 15 {
				t.Fatalf("distinct %d", d)
			}
		})
	}
	// A window cutting the first hour in half.
	r := reader(t, dir, Window{From: t0.Add(5 * time.Minute), To: t0.Add(time.Hour + 7*time.Minute)})
	if tb := must(r.TookBy(identify.FacetAccount, "1"))(t); tb.Served["contact"] != 5 || tb.Accesses != 8 { // 105..109, then 105..107 again
		t.Fatalf("took-by in a cut window: %+v", tb)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	assertModes(t, dir)
}

func waitSealed(t *testing.T, dir, stem string) {
	t.Helper()
	for i := 0; i < 500; i++ {
		if _, err := os.Stat(segPath(dir, stem)); err == nil {
			if _, err := os.Stat(walPath(dir, stem)); os.IsNotExist(err) {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never sealed", stem)
}

func assertModes(t *testing.T, dir string) {
	t.Helper()
	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v", info.Mode().Perm())
	}
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		info, _ := de.Info()
		if info.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %v", de.Name(), info.Mode().Perm())
		}
	}
}

// No value of a profile field ever reaches the files: the ledger is
// given ids, and what is not an id by the route map is hashed.
func TestNoValuesOnDisk(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: t0}
	l := openAt(t, dir, c, Options{})
	e := profile(t0, "1", "10.0.0.1", "100", false)
	e.Lookup, e.Page, e.Links = "lena.morgan_482", "opaque-cursor-zz", []string{"someone.username_9"}
	l.Add(e)
	c.set(t0.Add(time.Hour))
	l.Add(profile(t0.Add(time.Hour), "1", "10.0.0.1", "101", false))
	waitSealed(t, dir, partName(t0.Unix()))
	l.Close()
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		b, _ := os.ReadFile(filepath.Join(dir, de.Name()))
		for _, v := range []string{"lena.morgan", "opaque-cursor", "someone.username"} {
			if bytes.Contains(b, []byte(v)) {
				t.Fatalf("%s holds %q", de.Name(), v)
			}
		}
	}
}

// A log whose tail was cut mid-frame (a crash mid-write) is truncated to
// its last whole frame on start, the cut bytes kept beside it, and the
// ledger continues from there.
func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: t0}
	l := openAt(t, dir, c, Options{})
	for i := 0; i < 20; i++ {
		l.Add(profile(t0.Add(time.Duration(i)*time.Second), "1", "10.0.0.1", fmt.Sprint(i), false))
	}
	l.Close()
	path := walPath(dir, partName(t0.Unix()))
	b, _ := os.ReadFile(path)
	// Cut the last frame in half, and add garbage after it.
	cut := len(b) - 7
	torn := append(b[:cut:cut], "garbage"...)
	if err := os.WriteFile(path, torn, 0o600); err != nil {
		t.Fatal(err)
	}
	l = openAt(t, dir, c, Options{})
	l.Add(profile(t0.Add(time.Minute), "1", "10.0.0.1", "500", false))
	l.Close()
	r := reader(t, dir, Window{})
	tb := must(r.TookBy(identify.FacetAccount, "1"))(t)
	if tb.Accesses != 20 { // 19 whole, the 20th cut, then one more
		t.Fatalf("%d Accesses after repair, want 20", tb.Accesses)
	}
	aside, _ := filepath.Glob(path + tornMark + "*")
	if len(aside) != 1 {
		t.Fatalf("torn tail kept in %v", aside)
	}
	kept, _ := os.ReadFile(aside[0])
	if !bytes.Equal(kept, torn[len(torn)-len(kept):]) || len(kept) < 7 {
		t.Fatalf("kept %q", kept)
	}
	if rep, err := Verify(dir); err != nil || !rep.OK {
		t.Fatalf("verify after repair: %+v %v", rep, err)
	}
}

// sealHours writes one Access an hour for n hours and waits for the
// sealing of all but the last.
func sealHours(t *testing.T, dir string, n int, o Options) *clock {
	t.Helper()
	c := &clock{t: t0}
	l := openAt(t, dir, c, o)
	for h := 0; h < n; h++ {
		at := t0.Add(time.Duration(h) * time.Hour)
		c.set(at)
		for i := 0; i < 50; i++ {
			l.Add(profile(at.Add(time.Duration(i)*time.Second), fmt.Sprint(i%7), "10.0.0.1", fmt.Sprint(h*1000+i), i%3 == 0))
		}
	}
	if n > 1 {
		waitSealed(t, dir, partName(t0.Add(time.Duration(n-2)*time.Hour).Unix()))
	}
	l.Close()
	return c
}

func TestVerifyCatchesEdits(t *testing.T) {
	dir := t.TempDir()
	sealHours(t, dir, 4, Options{})
	rep, err := Verify(dir)
	if err != nil || !rep.OK || len(rep.Partitions) != 4 {
		t.Fatalf("clean ledger: %+v %v", rep, err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*"+segExt))
	slices.Sort(segs)
	if len(segs) != 3 {
		t.Fatalf("segs %v", segs)
	}
	orig, _ := os.ReadFile(segs[1])

	// A byte changed: the partition's own hash fails.
	b := slices.Clone(orig)
	b[len(b)/2] ^= 1
	os.WriteFile(segs[1], b, 0o600)
	rep, _ = Verify(dir)
	if rep.OK || len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], segs[1]) || !strings.Contains(rep.Problems[0], "SHA-256") {
		t.Fatalf("edited byte: %+v", rep.Problems)
	}
	// The reader does not hash what it maps (verify does); it must not
	// panic on the edited partition, whichever byte changed.
	for _, at := range []int{len(b) / 2, len(b) / 3, 40, len(b) - 40} {
		e := slices.Clone(orig)
		e[at] ^= 0xff
		os.WriteFile(segs[1], e, 0o600)
		if r, err := OpenReader(dir, Window{}); err == nil {
			askNamesPath(t, r, segs[1])
			r.Close()
		}
	}

	// Rewritten whole with a fresh hash (an Access dropped): the next
	// partition's link fails, and the hour's author index names it by the
	// hash it had.
	os.WriteFile(segs[1], orig, 0o600)
	p, err := readSeg(segs[1], orig, mustDecoder(t), dirTuples(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	p.entries = p.entries[1:]
	p.minT = p.entries[0].t
	enc := mustEncoder(t)
	out, _ := encodeSeg(p, tuplesIn(t, dir, p.entries), p.prev, enc)
	os.WriteFile(segs[1], out, 0o600)
	rep, _ = Verify(dir)
	if rep.OK || len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], segs[2]) || !strings.Contains(rep.Problems[0], "chain broken") ||
		len(rep.Rebuild) != 1 || !strings.Contains(rep.Rebuild[0], strings.TrimSuffix(segs[1], segExt)+autExt) || !strings.Contains(rep.Rebuild[0], "by hash") {
		t.Fatalf("rewritten partition: %+v, to rebuild %v", rep.Problems, rep.Rebuild)
	}

	// A partition removed outside retention: the chain breaks too.
	os.WriteFile(segs[1], orig, 0o600)
	os.Remove(segs[1])
	rep, _ = Verify(dir)
	if rep.OK || !strings.Contains(strings.Join(rep.Problems, "\n"), "chain broken") {
		t.Fatalf("removed partition: %+v", rep.Problems)
	}
	// The partition after the gap still says how many Accesses it holds
	// (it decodes; only its link fails), not 0.
	for _, vp := range rep.Partitions {
		if vp.File == segs[2] && (vp.OK || vp.Accesses != 50) {
			t.Errorf("the partition after the gap: ok %v, %d Accesses, want 50", vp.OK, vp.Accesses)
		}
	}
}

func TestRetention(t *testing.T) {
	t.Run("age", func(t *testing.T) {
		dir := t.TempDir()
		// Hours 10..15 written; at 15:00 a 2h max age keeps 12, 13 and 14
		// sealed (12 ends at 13:00, not before 15:00-2h) and 15 open.
		sealHours(t, dir, 6, Options{MaxAge: 2 * time.Hour})
		ls, _ := list(dir)
		var segs []string
		for _, s := range ls.stems {
			if ls.seg[s] {
				segs = append(segs, s)
			}
		}
		if !slices.Equal(segs, []string{partName(t0.Add(2 * time.Hour).Unix()), partName(t0.Add(3 * time.Hour).Unix()), partName(t0.Add(4 * time.Hour).Unix())}) {
			t.Fatalf("kept %v", segs)
		}
		rep, err := Verify(dir)
		if err != nil || !rep.OK || rep.Retired != 2 {
			t.Fatalf("verify after retention: %+v %v", rep, err)
		}
	})
	t.Run("size", func(t *testing.T) {
		dir := t.TempDir()
		sealHours(t, dir, 6, Options{})
		// Seal the last hour too, so that the sizes below are all sealed.
		openAt(t, dir, &clock{t: t0.Add(6 * time.Hour)}, Options{}).Close()
		ls, _ := list(dir)
		size := ls.sizes()
		var total int64
		for _, s := range size {
			total += s
		}
		// A bound that holds all but about two sealed hours.
		one := size[ls.stems[0]+segExt]
		c := &clock{t: t0.Add(6 * time.Hour)}
		l := openAt(t, dir, c, Options{MaxBytes: total - one - one/2})
		l.Close()
		ls, _ = list(dir)
		var now int64
		for _, s := range ls.sizes() {
			now += s
		}
		if now > total-one-one/2 || ls.seg[ls.stems[0]] && ls.stems[0] == partName(t0.Unix()) || len(ls.stems) != 4 || ls.stems[0] != partName(t0.Add(2*time.Hour).Unix()) {
			t.Fatalf("after a size bound: %d bytes (bound %d), %v", now, total-one-one/2, ls.stems)
		}
		if rep, err := Verify(dir); err != nil || !rep.OK || rep.Retired != 2 {
			t.Fatalf("verify after retention: %+v %v", rep, err)
		}
	})
}

// Corrupt and truncated files are errors that name the file, never
// panics, for the reader and for verify.
func TestCorruptFiles(t *testing.T) {
	dir := t.TempDir()
	sealHours(t, dir, 2, Options{})
	seg := segPath(dir, partName(t0.Unix()))
	orig, _ := os.ReadFile(seg)
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"magic only", []byte(segMagic)},
		{"truncated", orig[:len(orig)/2]},
		{"trailer cut", orig[:len(orig)-1]},
		{"garbage", bytes.Repeat([]byte{0xff}, 200)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.WriteFile(seg, tc.b, 0o600)
			_, err := OpenReader(dir, Window{})
			if err == nil || !strings.Contains(err.Error(), seg) {
				t.Fatalf("reader: %v", err)
			}
			rep, err := Verify(dir)
			if err != nil || rep.OK || !strings.Contains(strings.Join(rep.Problems, "\n"), seg) {
				t.Fatalf("verify: %+v %v", rep, err)
			}
		})
	}
	// A log that is not one.
	os.WriteFile(seg, orig, 0o600)
	wal := walPath(dir, partName(t0.Add(time.Hour).Unix()))
	os.WriteFile(wal, []byte("not a ledger log at all, just text"), 0o600)
	if _, err := OpenReader(dir, Window{}); err == nil || !strings.Contains(err.Error(), wal) {
		t.Fatalf("reader on a bad log: %v", err)
	}
}

// A body whose hash checks but whose content is forged (a bitmap that is
// not one) is an error too.
func TestForgedBody(t *testing.T) {
	dir := t.TempDir()
	sealHours(t, dir, 2, Options{})
	seg := segPath(dir, partName(t0.Unix()))
	b, _ := os.ReadFile(seg)
	p, err := readSeg(seg, b, mustDecoder(t), dirTuples(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	body := []byte{}
	for range nsCount {
		body = binary.AppendUvarint(body, 0)
	}
	body = binary.AppendUvarint(body, 5)
	body = append(body, 1, 7, 3, 0xff, 0xff)
	out := []byte(segMagic)
	out = binary.AppendVarint(out, p.hour)
	out = binary.AppendVarint(out, p.minT)
	out = binary.AppendVarint(out, p.maxT)
	out = binary.AppendUvarint(out, uint64(len(body)))
	out = append(out, p.prev[:]...)
	z := mustEncoder(t).EncodeAll(body, nil)
	out = binary.AppendUvarint(out, uint64(len(z)))
	out = append(out, z...)
	if _, err := readSeg(seg, appendHash(out), mustDecoder(t), dirTuples(t, dir)); err == nil {
		t.Fatal("forged body read")
	}
}

// Distinct with also counts what an address's budget identified: own
// counted for one account behind it: that account's subjects on the
// address, not its neighbours' (explain's budget rows).
func TestDistinctAlso(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: t0}
	l := openAt(t, dir, c, Options{})
	ip := "10.9.0.1"
	for i, e := range []*Entry{
		profile(t0, "a", ip, "1", false), profile(t0, "a", ip, "2", false),
		profile(t0, "b", ip, "3", false), profile(t0, "", ip, "4", false),
		profile(t0, "a", "10.9.0.2", "5", false), // a, elsewhere
	} {
		e.RequestID = fmt.Sprintf("also-%d", i)
		l.Add(e)
	}
	l.Sync()
	r := reader(t, dir, Window{})
	defer r.Close()
	acct := func(v string) FacetValue { return FacetValue{By: identify.FacetAccount, Value: v} }
	for _, c := range []struct {
		also []FacetValue
		want int
	}{
		{nil, 4}, {[]FacetValue{acct("a")}, 2}, {[]FacetValue{acct("b")}, 1},
		{[]FacetValue{acct("nobody")}, 0}, {[]FacetValue{acct("a"), acct("b")}, 0},
	} {
		if got := must(r.Distinct(identify.FacetIP, ip, "contact", c.also...))(t); got != c.want {
			t.Errorf("distinct on %s with %v: %d, want %d", ip, c.also, got, c.want)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// A directory holding a DP answer's privacy files alone (the config's
// ledger.dir made for them before any gateway wrote there) is an empty
// ledger; one holding anything else is no ledger.
func TestPrivacyFilesMakeAnEmptyLedger(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		ledger     bool
	}{
		{"budgets", "privacy-budgets.json", true},
		{"key", "privacy.key", true},
		{"other", "notes.txt", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, tc.file), []byte("{}"), 0o600); err != nil {
				t.Fatal(err)
			}
			r, err := OpenReader(dir, Window{})
			if !tc.ledger {
				if err == nil || !strings.Contains(err.Error(), "not a ledger directory") {
					t.Errorf("%s alone: %v, want not a ledger directory", tc.file, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s alone: %v", tc.file, err)
			}
			defer r.Close()
			res, err := r.WhoTook("17", "", identify.FacetAccount)
			if err != nil || len(res.Rows) != 0 {
				t.Errorf("who-took on an empty ledger: %+v, %v", res, err)
			}
		})
	}
}
