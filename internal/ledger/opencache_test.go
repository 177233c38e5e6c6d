package ledger

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/identify"
)

// answers is every query's answer over what r holds, as text: who-took of
// every subject by every facet and class, took-by and Distinct of every
// identity, reach of every author, explain of every request id, and every
// Access in order. vals are the values to ask, taken from a cold reader.
func answers(t *testing.T, r *Reader, vals *askVals) string {
	t.Helper()
	var b strings.Builder
	put := func(v any) {
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(j)
		b.WriteByte('\n')
	}
	for _, f := range identify.Facets {
		for _, s := range vals.subjects {
			for _, c := range append([]string{""}, vals.classes...) {
				put(must(r.WhoTook(s, c, f))(t))
			}
		}
		for _, v := range vals.idents[f-1] {
			put(must(r.TookBy(f, v))(t))
			for _, c := range append([]string{""}, vals.classes...) {
				put(must(r.Distinct(f, v, c))(t))
			}
		}
		put(must(r.DistinctEach(f, vals.idents[f-1], ""))(t))
		views, impr := must2(r.Viewers(vals.authors, f))(t)
		for i, v := range views {
			var people []string
			for _, id := range v.ToArray() {
				people = append(people, r.IdentityName(id))
			}
			slices.Sort(people)
			put([]any{vals.authors[i], people, impr[i]})
		}
	}
	for _, id := range vals.requests {
		put(must(r.Find(id))(t))
	}
	r.Each(func(e *Entry) bool { put(e); return true })
	return b.String()
}

type askVals struct {
	subjects, classes, authors, requests []string
	idents                               [NumFacets][]string
}

// valuesOf collects the values r's Accesses name, and some they do not.
func valuesOf(r *Reader) *askVals {
	v := &askVals{subjects: []string{"nobody"}, classes: []string{"contact", "profile", "none"}, authors: []string{"nobody"},
		requests: []string{"nobody"}}
	seen := map[string]bool{}
	add := func(to *[]string, kind, s string) {
		if s != "" && !seen[kind+"\x00"+s] {
			seen[kind+"\x00"+s] = true
			*to = append(*to, s)
		}
	}
	r.Each(func(e *Entry) bool {
		for _, rc := range e.Records {
			add(&v.subjects, "s", rc.ID)
		}
		for _, a := range e.Authors {
			add(&v.authors, "a", a)
		}
		for f, id := range e.Identity {
			add(&v.idents[f], fmt.Sprint(f), id)
		}
		add(&v.requests, "r", e.RequestID)
		return true
	})
	return v
}

// sameAnswers asks a reader through c and a cold reader every query over
// each window and fails where they differ.
func sameAnswers(t *testing.T, step, dir string, c *Cache, wins ...Window) {
	t.Helper()
	for _, w := range append([]Window{{}}, wins...) {
		// The sealer, in the background once the clock has passed an hour,
		// may replace its log by the sealed file between the two opens:
		// the readers are compared when they read the same files.
		var cold, warm *Reader
		for try := 0; ; try++ {
			cold = reader(t, dir, w)
			var err error
			if warm, err = OpenReader(dir, w, WithCache(c)); err != nil {
				t.Fatalf("%s: cached reader: %v", step, err)
			}
			if slices.Equal(files(cold), files(warm)) {
				break
			}
			cold.Close()
			warm.Close()
			if try == 100 {
				t.Fatalf("%s, window %v: the ledger's files changed between every two opens", step, w)
			}
		}
		vals := valuesOf(cold)
		if want, got := answers(t, cold, vals), answers(t, warm, vals); got != want {
			g, w2 := strings.Split(got, "\n"), strings.Split(want, "\n")
			for i := range min(len(g), len(w2)) {
				if g[i] != w2[i] {
					t.Fatalf("%s, window %v: answer %d: the cached reader says\n%s\na cold reader\n%s", step, w, i, g[i], w2[i])
				}
			}
			t.Fatalf("%s, window %v: the cached reader gives %d answers, a cold reader %d", step, w, len(g), len(w2))
		}
		cold.Close()
		warm.Close()
	}
}

// files are the files r reads, each once, in order (a cached log may be
// read as several parts).
func files(r *Reader) []string {
	var out []string
	for _, p := range r.parts {
		if len(out) == 0 || out[len(out)-1] != p.path {
			out = append(out, p.path)
		}
	}
	return out
}

// A cached reader of an open log unchanged since the last takes its
// chunks and names; one appended to sees the new Accesses.
func TestCacheTakesUnchanged(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: t0.Add(10 * time.Minute)}
	l := openAt(t, dir, c, Options{})
	defer l.Close()
	l.Add(profile(t0.Add(time.Minute), "alice", "10.0.0.1", "s1", false))
	l.Sync()

	cache := &Cache{} // the zero Cache is ready to use
	open := func(w Window) *Reader {
		r, err := OpenReader(dir, w, WithCache(cache))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	took := func(r *Reader) int { return len(must(r.WhoTook("s1", "contact", identify.FacetAccount))(t).Rows) }
	r1, r2 := open(Window{}), open(Window{From: t0})
	if len(r1.parts) != 1 || len(r2.parts) != 1 || r1.parts[0] != r2.parts[0] || r1.d != r2.d {
		t.Fatalf("second reader of an unchanged log did not take the first's: %d, %d partitions", len(r1.parts), len(r2.parts))
	}
	if took(r1) != 1 || took(r2) != 1 {
		t.Fatalf("who-took s1: %d, %d rows, want 1", took(r1), took(r2))
	}
	r1.Close()
	if took(r2) != 1 {
		t.Fatal("closing a reader changed another's answer")
	}

	l.Add(profile(t0.Add(2*time.Minute), "bob", "10.0.0.2", "s1", false))
	l.Sync()
	r3 := open(Window{})
	defer r3.Close()
	if took(r3) != 2 || len(r3.parts) != 1 || r3.parts[0] == r2.parts[0] {
		t.Fatalf("after an append, who-took s1: %d rows in %d chunks, want 2 in 1 (merged anew)", took(r3), len(r3.parts))
	}
	if took(r2) != 1 {
		t.Fatal("an append changed what an earlier reader answers")
	}
	r2.Close()
	if r4 := open(Window{To: t0.Add(90 * time.Second)}); took(r4) != 1 {
		t.Fatalf("a window cutting the cached log: %d rows, want 1", took(r4))
	}
}

// The open log fed to the directory a few bytes at a time, cut anywhere
// (inside a frame: a torn tail), with names arriving as it grows: after
// every step a reader through the cache answers every query as a reader
// that reads the log whole.
func TestCacheAppendsAndTornFrames(t *testing.T) {
	src := t.TempDir()
	c := &clock{t: t0.Add(50 * time.Minute)}
	l := openAt(t, src, c, Options{})
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		at := t0.Add(time.Duration(i) * 7 * time.Second)
		acct, ip := fmt.Sprint("acct", rng.IntN(20)), fmt.Sprintf("10.0.%d.%d", rng.IntN(3), rng.IntN(9))
		if i%3 == 0 {
			l.Add(posts(at, acct, ip, fmt.Sprint(rng.IntN(30)), fmt.Sprint(rng.IntN(30))))
		} else {
			l.Add(profile(at, acct, ip, fmt.Sprint("s", rng.IntN(60)), rng.IntN(4) == 0))
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	log, err := os.ReadFile(walPath(src, partName(t0.Unix())))
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	f, err := os.OpenFile(walPath(dir, partName(t0.Unix())), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cache := NewCache(0)
	cache.chunk = 16
	cut := Window{From: t0.Add(5 * time.Minute), To: t0.Add(20 * time.Minute)}
	for off, step := 0, 0; off < len(log); step++ {
		n := min(len(log)-off, 1+rng.IntN(900))
		if step < 3 {
			n = min(len(log)-off, 3+step*4) // the header frame itself arrives torn
		}
		if _, err := f.Write(log[off : off+n]); err != nil {
			t.Fatal(err)
		}
		off += n
		sameAnswers(t, fmt.Sprintf("step %d, %d of %d bytes", step, off, len(log)), dir, cache, cut)
	}
	r, err := OpenReader(dir, Window{}, WithCache(cache))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if n := len(r.parts); n < 300/16 || n > 2*300/16+8 {
		t.Errorf("300 Accesses in %d chunks of at most 16", n)
	}
	if _, v, _ := readLog("", log); v != len(log) {
		t.Fatalf("the log read whole: %d of %d bytes valid", v, len(log))
	}
}

// Rotation: the hour sealed (its log replaced by the sealed file, the
// shared dictionary grown), a new hour's log, Accesses recorded late in
// it; and a log replaced on disk. At each step the cached reader answers
// as a cold one.
func TestCacheRotationAndDictionaryGrowth(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: t0.Add(10 * time.Minute)}
	l := openAt(t, dir, c, Options{})
	defer l.Close()
	cache := NewCache(0)
	cut := Window{From: t0.Add(30 * time.Minute), To: t0.Add(90 * time.Minute)}
	for i := range 20 {
		l.Add(profile(t0.Add(time.Duration(i)*3*time.Minute), fmt.Sprint("a", i%4), "10.0.0.1", fmt.Sprint("s", i), i%5 == 0))
	}
	l.Add(posts(t0.Add(50*time.Minute), "a1", "10.0.0.1", "7", "8"))
	l.Sync()
	sameAnswers(t, "first hour open", dir, cache, cut)

	// The next hour: the first is sealed (names into the dictionary) while
	// the cache holds both the old log and names only it had.
	c.set(t0.Add(70 * time.Minute))
	l.Add(profile(t0.Add(61*time.Minute), "a9", "10.0.0.9", "s1", false)) // a new account, an old subject
	l.Sync()
	sameAnswers(t, "second hour opened", dir, cache, cut)
	waitSealed(t, dir, partName(t0.Unix()))
	sameAnswers(t, "first hour sealed", dir, cache, cut)
	r, err := OpenReader(dir, Window{}, WithCache(cache))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.parts) != 2 || !r.parts[0].sealed || r.d.more.base[nsFacet+1] != 4 {
		t.Fatalf("after the seal: %d partitions, first sealed %v, accounts in the dictionary %d (want 2, true, 4)",
			len(r.parts), r.parts[0].sealed, r.d.more.base[nsFacet+1])
	}
	r.Close()
	for i := range 10 {
		l.Add(profile(t0.Add(time.Duration(62+i)*time.Minute), fmt.Sprint("a", i), "10.0.0.2", fmt.Sprint("s", 100+i), false))
	}
	l.Add(profile(t0.Add(59*time.Minute), "late", "10.0.0.3", "s2", false)) // recorded late, in the second hour's log
	l.Add(posts(t0.Add(75*time.Minute), "a2", "10.0.0.2", "8", "9"))
	l.Sync()
	sameAnswers(t, "second hour grown", dir, cache, cut)

	// The log replaced by one of the same name holding less.
	l.Close()
	wp := walPath(dir, partName(t0.Unix()+3600))
	b, err := os.ReadFile(wp)
	if err != nil {
		t.Fatal(err)
	}
	p, _, _ := readLog(wp, b)
	if err := os.Remove(wp); err != nil {
		t.Fatal(err)
	}
	short := b[:len(b)-3*len(b)/4]
	if _, v, _ := readLog(wp, short); v < len(short) && len(p.entries) > 0 {
		short = short[:v]
	}
	if err := os.WriteFile(wp, short, 0o600); err != nil {
		t.Fatal(err)
	}
	sameAnswers(t, "log replaced", dir, cache, cut)
}

// A reader through the cache sees every Access the writer flushed before
// it was opened: with the writer's flush every 100 ms, a query sees an
// Access well within a second of its answer (issue 21).
func TestCacheSeesFlushed(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: t0.Add(10 * time.Minute)}
	l := openAt(t, dir, c, Options{})
	defer l.Close()
	cache := NewCache(0)
	for i := range 50 {
		e := profile(t0.Add(time.Duration(i)*time.Second), "alice", "10.0.0.1", fmt.Sprint("s", i), false)
		l.Add(e)
		if i%7 == 0 {
			l.Sync()
			r, err := OpenReader(dir, Window{}, WithCache(cache))
			if err != nil {
				t.Fatal(err)
			}
			if f := must(r.Find(e.RequestID))(t); f == nil || f.Entry.Records[0].ID != fmt.Sprint("s", i) {
				t.Fatalf("Access %d flushed before the reader opened: not found", i)
			}
			if n := must(r.TookBy(identify.FacetAccount, "alice"))(t).Accesses; n != i+1 {
				t.Fatalf("after %d Accesses flushed, took-by counts %d", i+1, n)
			}
			r.Close()
		}
	}
}

// DistinctEach counts as Distinct does, value by value.
func TestDistinctEach(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: t0.Add(10 * time.Minute)}
	l := openAt(t, dir, c, Options{})
	defer l.Close()
	l.Add(profile(t0.Add(time.Minute), "alice", "10.0.0.1", "s1", false))
	l.Add(profile(t0.Add(2*time.Minute), "alice", "10.0.0.1", "s2", true))
	l.Add(profile(t0.Add(3*time.Minute), "bob", "10.0.0.2", "s1", false))
	l.Sync()
	r := reader(t, dir, Window{})
	defer r.Close()
	values := []string{"alice", "bob", "nobody", "alice"}
	for _, class := range []string{"", "contact", "profile", "none"} {
		got := must(r.DistinctEach(identify.FacetAccount, values, class))(t)
		for i, v := range values {
			if want := must(r.Distinct(identify.FacetAccount, v, class))(t); got[i] != want {
				t.Errorf("class %q, %s: DistinctEach %d, Distinct %d", class, v, got[i], want)
			}
		}
	}
	if got := must(r.DistinctEach(identify.FacetAccount, values, "contact"))(t); got[0] != 1 || got[1] != 1 {
		t.Errorf("contact: %v, want alice 1 (s2 masked), bob 1", got)
	}
}

// Readers through one cache query while others open and the writer
// appends (run with -race: what readers share is not written).
func TestCacheConcurrentReaders(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: t0.Add(10 * time.Minute)}
	l := openAt(t, dir, c, Options{})
	defer l.Close()
	cache := NewCache(0)
	l.Add(profile(t0, "first", "10.0.0.1", "s0", false))
	l.Sync()
	done := make(chan struct{})
	errs := make(chan error, 2)
	for g := range 2 {
		go func() {
			for {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				r, err := OpenReader(dir, Window{}, WithCache(cache))
				if err != nil {
					errs <- err
					return
				}
				views, _ := must2(r.Viewers([]string{"7"}, identify.FacetAccount))(t)
				for _, v := range views[0].ToArray() {
					_ = r.IdentityName(v)
				}
				if n := must(r.TookBy(identify.FacetAccount, "first"))(t).Accesses; n != 1 {
					errs <- fmt.Errorf("reader %d: took-by first: %d Accesses", g, n)
					return
				}
				_ = must(r.WhoTook("s0", "contact", identify.FacetIP))(t)
				r.Close()
			}
		}()
	}
	for i := range 200 {
		l.Add(posts(t0.Add(time.Duration(i)*time.Second), fmt.Sprint("acct", i), "10.0.0.2", "7", fmt.Sprint(i)))
		if i%10 == 0 {
			l.Sync()
		}
	}
	close(done)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// pagedSet counts distinct integers as a map does, across pages and at
// the ends of the range.
func TestPagedSet(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var s pagedSet
	seen := map[uint32]bool{}
	for i := range 20000 {
		v := rng.Uint32N(1 << 20)
		switch i % 5 {
		case 0:
			v = uint32(i) // runs within a page
		case 1:
			v = 1<<32 - 1 - uint32(i%7)
		}
		s.add(v)
		seen[v] = true
	}
	if s.count() != len(seen) {
		t.Fatalf("count %d, want %d", s.count(), len(seen))
	}
}

// The cache's memory is bounded: past its bound the open log that crossed
// it is read whole by each reader (the same answers), the cache holds at
// most the bound, and once that hour is sealed the next hour is cached
// again.
func TestCacheBound(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: t0.Add(10 * time.Minute)}
	l := openAt(t, dir, c, Options{})
	defer l.Close()
	cache := NewCache(40)
	cut := Window{From: t0.Add(5 * time.Minute), To: t0.Add(50 * time.Minute)}
	stem := partName(t0.Unix())
	for step := range 6 {
		for i := range 15 {
			n := step*15 + i
			l.Add(profile(t0.Add(time.Duration(n)*30*time.Second), fmt.Sprint("a", n%7), "10.0.0.1", fmt.Sprint("s", n), n%3 == 0))
		}
		l.Sync()
		sameAnswers(t, fmt.Sprintf("step %d: %d Accesses", step, (step+1)*15), dir, cache, cut)
		cache.mu.Lock()
		held, over := cache.held(), cache.over[stem] != nil
		cache.mu.Unlock()
		if held > 40 {
			t.Fatalf("step %d: the cache holds %d Accesses, bound 40", step, held)
		}
		if want := (step+1)*15 > 40; over != want {
			t.Fatalf("step %d: log given up %v, want %v (held %d)", step, over, want, held)
		}
	}
	// The hour sealed: the next one is cached again.
	c.set(t0.Add(70 * time.Minute))
	for i := range 10 {
		l.Add(profile(t0.Add(time.Duration(61+i)*time.Minute), "b", "10.0.0.2", fmt.Sprint("t", i), false))
	}
	l.Sync()
	waitSealed(t, dir, stem)
	sameAnswers(t, "next hour", dir, cache, cut)
	cache.mu.Lock()
	defer cache.mu.Unlock()
	if held := cache.held(); held != 10 || len(cache.over) != 0 {
		t.Fatalf("after the seal: the cache holds %d Accesses (want the new hour's 10), gives up %v", held, cache.over)
	}
}
