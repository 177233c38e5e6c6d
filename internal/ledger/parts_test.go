package ledger

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/warden-gw/warden/internal/identify"
)

// Stems name an hour's first part by its hour and each further part by
// the second it opened at; they sort as their keys, and nothing else
// reads as one.
func TestPartNames(t *testing.T) {
	h := t0.Unix()
	for _, c := range []struct {
		key  int64
		stem string
	}{{h, "2026-11-22T10"}, {h + 1, "2026-11-22T10_00_01"}, {h + 1234, "2026-11-22T10_20_34"}, {h + 3599, "2026-11-22T10_59_59"}} {
		if got := partName(c.key); got != c.stem {
			t.Errorf("partName(%d) = %s, want %s", c.key, got, c.stem)
		}
		if k, ok := parseStem(c.stem); !ok || k != c.key {
			t.Errorf("parseStem(%s) = %d, %v", c.stem, k, ok)
		}
		if hourOf(c.key) != h {
			t.Errorf("hourOf(%d) = %d", c.key, hourOf(c.key))
		}
	}
	// Sorted as names (stems or file names), parts follow their hour's
	// first part and precede the next hour.
	names := []string{"2026-11-22T11.seg", "2026-11-22T10_20_34.seg", "2026-11-22T10.seg", "2026-11-22T10_00_01.seg"}
	slices.Sort(names)
	if want := []string{"2026-11-22T10.seg", "2026-11-22T10_00_01.seg", "2026-11-22T10_20_34.seg", "2026-11-22T11.seg"}; !slices.Equal(names, want) {
		t.Errorf("sorted %v", names)
	}
	for _, bad := range []string{"2026-11-22T10_00_00", "2026-11-22T10_0_01", "2026-11-22T10_60_00", "2026-11-22T10-20-34", "2026-11-22T10_20_34x", "2026-11-22"} {
		if _, ok := parseStem(bad); ok {
			t.Errorf("parseStem(%q) took it", bad)
		}
	}
}

// An hour cut in parts (PartitionAccesses) answers every query as the
// whole hour does: who-took, took-by, the distinct counts, explain, reach
// over whole days (the day rollups, made from the parts) and over a
// window that cuts an hour (the parts' author indexes); verify checks
// the chain through the parts and the rollups made from them.
func TestPartsAnswerAsHours(t *testing.T) {
	whole, parts := t.TempDir(), t.TempDir()
	writeDays(t, whole, 27, Options{})
	writeDays(t, parts, 27, Options{PartitionAccesses: 7})

	ls, err := list(parts)
	if err != nil {
		t.Fatal(err)
	}
	perHour := map[int64][]string{}
	for _, stem := range ls.stems {
		if !ls.seg[stem] || ls.wal[stem] {
			t.Fatalf("%s: not sealed alone (seg %v, wal %v)", stem, ls.seg[stem], ls.wal[stem])
		}
		if !ls.aut[stem] {
			t.Errorf("%s: no author index", stem)
		}
		k, _ := parseStem(stem)
		perHour[hourOf(k)] = append(perHour[hourOf(k)], stem)
	}
	// writeDays adds 30 Accesses an hour: parts of 7, 7, 7, 7 and 2.
	if len(perHour) != 27 {
		t.Fatalf("%d hours, want 27", len(perHour))
	}
	for h, stems := range perHour {
		if len(stems) != 5 || stems[0] != partName(h) {
			t.Fatalf("hour %s in parts %v, want 5, the first named by the hour", partName(h), stems)
		}
	}
	if !ls.days[dayOf(day0.Unix())] || !rollupNames(rollupPath(parts, day0.Unix()), perDay(ls.stems, day0.Unix())) {
		t.Fatalf("no rollup of %s naming its %d parts", dayStem(day0.Unix()), len(perDay(ls.stems, day0.Unix())))
	}

	qs := damageQueries(day0.Add(25 * time.Hour))
	maps.Copy(qs, map[string]func(*Reader) (string, error){
		"rollup-reach": rollupQueries()["reach"],
	})
	want, failed, _ := runDamage(t, whole, qs, nil)
	if len(failed) > 0 {
		t.Fatalf("whole hours: %v", failed)
	}
	got, failed, fallbacks := runDamage(t, parts, qs, func(err error) { t.Errorf("warning: %v", err) })
	if len(failed) > 0 || fallbacks > 0 {
		t.Fatalf("parts: failed %v, %d fallbacks", failed, fallbacks)
	}
	for q, a := range want {
		if got[q] != a {
			t.Errorf("%s: parts answer %s, whole hours %s", q, got[q], a)
		}
	}
	rep, err := Verify(parts)
	if err != nil || !rep.OK || len(rep.Partitions) != len(ls.stems) {
		t.Fatalf("verify: %v, ok %v, %d partitions of %d: %v", err, rep.OK, len(rep.Partitions), len(ls.stems), rep.Problems)
	}

	// An edited part breaks the chain at the part after it.
	seg := segPath(parts, perHour[day0.Unix()][2])
	b, _ := os.ReadFile(seg)
	b[len(b)/2] ^= 1
	os.WriteFile(seg, b, 0o600)
	if rep, _ := Verify(parts); rep.OK {
		t.Fatal("verify passed an edited part")
	}
}

// perDay is the stems of day's partitions.
func perDay(stems []string, day int64) []string {
	var out []string
	for _, s := range stems {
		if k, _ := parseStem(s); dayOf(k) == day {
			out = append(out, s)
		}
	}
	return out
}

// A process that stops with an hour's full part not yet sealed and a
// later part open: at start the full part is sealed and the newest is
// reopened and written on until full; nothing is lost or counted twice.
func TestPartsRestart(t *testing.T) {
	dir, whole := t.TempDir(), t.TempDir()
	c := &clock{t: t0}
	o := Options{PartitionAccesses: 5}
	var all []*Entry
	add := func(l *Ledger, n int) {
		for range n {
			at := t0.Add(time.Duration(len(all)) * time.Second)
			c.set(at)
			e := profile(at, "acct"+string(rune('a'+len(all)%7)), "10.0.0.1", "subj"+string(rune('a'+len(all)%11)), false)
			l.Add(e)
			all = append(all, e)
		}
	}
	// The sealer cannot write the first part's file: a directory with a
	// file in it where it writes first.
	block := segPath(dir, partName(t0.Unix())) + ".tmp"
	if err := os.MkdirAll(filepath.Join(block, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	l := openAt(t, dir, c, o)
	add(l, 12) // parts of 5, 5, 2; the first stays a log
	l.Close()
	if err := os.RemoveAll(block); err != nil {
		t.Fatal(err)
	}
	ls, _ := list(dir)
	var logs []string
	for _, s := range ls.stems {
		if ls.wal[s] {
			logs = append(logs, s)
		}
	}
	if len(logs) < 2 || logs[0] != partName(t0.Unix()) {
		t.Fatalf("logs %v: want the first part and the open one", logs)
	}

	l = openAt(t, dir, c, o)
	add(l, 4) // the open part (2) takes 3 more, then a new part
	l.Close()
	openAt(t, dir, &clock{t: t0.Add(2 * time.Hour)}, o).Close()
	ls, _ = list(dir)
	var sealed []string
	for _, s := range ls.stems {
		if ls.wal[s] {
			t.Errorf("%s: still a log", s)
		}
		if ls.seg[s] {
			sealed = append(sealed, s)
		}
	}
	if len(sealed) != 4 { // 5, 5, 5 and 1
		t.Errorf("sealed %v, want 4 parts", sealed)
	}
	lw := openAt(t, whole, &clock{t: t0}, Options{})
	for _, e := range all {
		lw.Add(e)
	}
	lw.Close()
	openAt(t, whole, &clock{t: t0.Add(2 * time.Hour)}, Options{}).Close()

	for _, d := range []string{dir, whole} {
		if rep, err := Verify(d); err != nil || !rep.OK {
			t.Fatalf("verify %s: %v %v", d, err, rep.Problems)
		}
	}
	qs := map[string]func(*Reader) (string, error){
		"who-took": func(r *Reader) (string, error) {
			res, err := r.WhoTook("subja", "", identify.FacetAccount)
			return fmt.Sprint(res), err
		},
		"took-by": func(r *Reader) (string, error) {
			res, err := r.TookBy(identify.FacetAccount, "accta")
			return fmt.Sprint(res), err
		},
		"distinct": func(r *Reader) (string, error) {
			n, err := r.Distinct(identify.FacetAccount, "acctb", "")
			return fmt.Sprint(n), err
		},
		"find": func(r *Reader) (string, error) {
			f, err := r.Find(all[13].RequestID)
			return fmt.Sprint(f.Entry.Records, f.Entry.Time), err
		},
	}
	want, failed, _ := runDamage(t, whole, qs, nil)
	if len(failed) > 0 || !strings.Contains(want["who-took"], "accta") || want["distinct"] == "0" {
		t.Fatalf("whole hour: %v (failed %v)", want, failed)
	}
	got, failed, _ := runDamage(t, dir, qs, nil)
	if len(failed) > 0 || !maps.Equal(got, want) {
		t.Fatalf("parts after a restart: %v (failed %v), want %v", got, failed, want)
	}
	r := reader(t, dir, Window{})
	defer r.Close()
	var ids []string
	r.Each(func(e *Entry) bool {
		ids = append(ids, e.Records[0].ID)
		return true
	})
	var added []string
	for _, e := range all {
		added = append(added, e.Records[0].ID)
	}
	if !slices.Equal(ids, added) {
		t.Fatalf("read %v, added %v", ids, added)
	}
}

// warden_ledger_seal_queue counts the closed logs waiting to be sealed:
// a part whose seal fails stays counted, with those queued behind it,
// until it is sealed.
func TestSealQueueGauge(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: t0}
	m := NewMetrics(nil)
	block := segPath(dir, partName(t0.Unix())) + ".tmp"
	if err := os.MkdirAll(filepath.Join(block, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	l := openAt(t, dir, c, Options{PartitionAccesses: 5, Metrics: m, sealRetry: 20 * time.Millisecond})
	defer l.Close()
	for i := range 12 { // parts of 5, 5, 2: the first two closed
		at := t0.Add(time.Duration(i) * time.Second)
		c.set(at)
		l.Add(profile(at, "a", "10.0.0.1", fmt.Sprint(i), false))
	}
	waitGauge := func(want float64) {
		t.Helper()
		for range 500 {
			l.Sync()
			if testutil.ToFloat64(m.sealQueue) == want {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("seal queue %v, want %v", testutil.ToFloat64(m.sealQueue), want)
	}
	waitGauge(2)
	// Moved away at once, not removed in steps: the sealer, retrying,
	// removes an emptied directory and writes its file there.
	if err := os.Rename(block, block+".gone"); err != nil {
		t.Fatal(err)
	}
	waitGauge(0)
	if got := testutil.ToFloat64(m.sealed); got != 2 {
		t.Fatalf("%v sealed, want 2", got)
	}
}

// The sealer makes a part's author index as it seals it, and puts off
// retention and rollups (each lists the directory) to at most every
// housekeepEvery: a busy gateway's parts do not each list it twice. Put
// off, they still run without another seal.
func TestHousekeepingPutOff(t *testing.T) {
	for _, every := range []time.Duration{time.Hour, 50 * time.Millisecond} {
		dir := t.TempDir()
		c := &clock{t: t0}
		l := openAt(t, dir, c, Options{PartitionAccesses: 5, MaxAge: 2 * time.Hour, housekeepEvery: every})
		for i := range 12 { // hour 10: parts of 5, 5, 2
			at := t0.Add(time.Duration(i) * time.Second)
			c.set(at)
			l.Add(profile(at, "a", "10.0.0.1", fmt.Sprint(i), false))
		}
		// 13:30: hour 10 is past the 2h max age; its last part is closed
		// and sealed as the hour 13's first Access opens its log.
		at := t0.Add(3*time.Hour + 30*time.Minute)
		c.set(at)
		l.Add(profile(at, "a", "10.0.0.1", "x", false))
		l.Sync()
		hour10 := func() (segs, auts int) {
			ls, _ := list(dir)
			for _, s := range ls.stems {
				if k, _ := parseStem(s); hourOf(k) == t0.Unix() {
					if ls.seg[s] {
						segs++
					}
					if ls.aut[s] {
						auts++
					}
				}
			}
			return segs, auts
		}
		deadline := time.Now().Add(5 * time.Second)
		segs, auts := hour10()
		for ; time.Now().Before(deadline); segs, auts = hour10() {
			if every == time.Hour && segs == 3 && auts == 3 || every < time.Hour && segs == 0 && auts == 0 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if every == time.Hour && (segs != 3 || auts != 3) {
			t.Fatalf("every %v: hour 10 has %d parts sealed, %d author indexes; want 3 and 3, retention put off", every, segs, auts)
		}
		if every < time.Hour && (segs != 0 || auts != 0) {
			t.Fatalf("every %v: hour 10 has %d parts sealed, %d author indexes; want retention to have run", every, segs, auts)
		}
		l.Close()
		if segs, _ := hour10(); segs != 0 {
			t.Fatalf("every %v: after Close, hour 10 has %d parts", every, segs)
		}
		if rep, err := Verify(dir); err != nil || !rep.OK || rep.Retired != 3 {
			t.Fatalf("every %v: verify %v %v, %d retired", every, err, rep.Problems, rep.Retired)
		}
	}
}

// A log left with no Access (its only frame torn) is removed at start,
// not sealed, and no author index is tried for it: no error counted.
func TestEmptyLogRemovedQuietly(t *testing.T) {
	dir := t.TempDir()
	l := openAt(t, dir, &clock{t: t0}, Options{})
	l.Add(profile(t0, "a", "10.0.0.1", "s", false))
	l.Close()
	path := walPath(dir, partName(t0.Unix()))
	b, _ := os.ReadFile(path)
	os.WriteFile(path, b[:len(b)-7], 0o600)
	m := NewMetrics(nil)
	openAt(t, dir, &clock{t: t0.Add(2 * time.Hour)}, Options{Metrics: m}).Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("log left: %v", err)
	}
	if n := testutil.ToFloat64(m.errors); n != 0 {
		t.Fatalf("%v errors counted", n)
	}
}

// A day cut in more parts than one merge reads at once (rollupFanIn) gets
// its rollup in two steps, groups merged aside first: the same bytes as
// one step, verify checks it either way, reach uses it, and nothing is
// left aside.
func TestRollupInGroups(t *testing.T) {
	dir := t.TempDir()
	// 120 parts on day0 (24 hours of 5), merged in groups of 16: 7 of 16
	// and one of 8.
	all := writeDays(t, dir, 27, Options{PartitionAccesses: 7, rollupFanIn: 16})
	ls, err := list(dir)
	if err != nil {
		t.Fatal(err)
	}
	day := day0.Unix()
	stems := perDay(ls.stems, day)
	if len(stems) != 120 {
		t.Fatalf("%d parts on %s, want 120", len(stems), dayStem(day))
	}
	path := rollupPath(dir, day)
	if !ls.days[day] || !rollupNames(path, stems) {
		t.Fatalf("no rollup of %s naming its %d parts", dayStem(day), len(stems))
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*.tmp"))
	if len(left) > 0 {
		t.Fatalf("left aside: %v", left)
	}
	grouped, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	// The same bytes merged in one step, and in groups of 3 (40 groups).
	for _, fanIn := range []int{rollupFanIn, 3, 16} {
		os.Remove(path)
		var tv tupleVals
		if made, err := writeRollup(dir, day, stems, &tv, fanIn, mustDecoder(t), mustEncoder(t)); !made || err != nil {
			t.Fatalf("fan-in %d: made %v, %v", fanIn, made, err)
		}
		b, _ := os.ReadFile(path)
		if !slices.Equal(b, grouped) {
			t.Fatalf("fan-in %d: %d bytes, not the %d merged in groups of 16", fanIn, len(b), len(grouped))
		}
	}
	left, _ = filepath.Glob(filepath.Join(dir, "*.tmp"))
	if len(left) > 0 {
		t.Fatalf("left aside: %v", left)
	}

	// Verify rebuilds it in one step (Verify) and in groups.
	rep, err := Verify(dir)
	if err != nil || !rep.OK || len(rep.Rollups) != 1 || rep.Rollups[0].Hours != 120 {
		t.Fatalf("verify: %v, %+v", err, rep)
	}
	d, err := loadDictionary(dir)
	if err != nil {
		t.Fatal(err)
	}
	hashes := map[string][32]byte{}
	for _, stem := range stems {
		b, _ := os.ReadFile(segPath(dir, stem))
		hashes[stem] = [32]byte(b[len(b)-32:])
	}
	if p := verifyRollup(dir, day, stems, hashes, d.tupleFacet, 16, mustDecoder(t)); p != "" {
		t.Fatalf("verify in groups of 16: %s", p)
	}
	// A rollup forged with two accounts swapped is caught in groups too.
	var tv tupleVals
	if err := tv.extend(dir); err != nil {
		t.Fatal(err)
	}
	tv.v[0][0], tv.v[0][1] = tv.v[0][1], tv.v[0][0]
	os.Remove(path)
	if made, err := writeRollup(dir, day, stems, &tv, 16, mustDecoder(t), mustEncoder(t)); !made || err != nil {
		t.Fatalf("forged: made %v, %v", made, err)
	}
	if p := verifyRollup(dir, day, stems, hashes, d.tupleFacet, 16, mustDecoder(t)); !strings.Contains(p, "postings by account") {
		t.Fatalf("forged rollup, verified in groups: %q", p)
	}
	os.WriteFile(path, grouped, 0o600)

	// Reach over the day reads the rollup, and answers as the hours do
	// and as the Entries say.
	w := Window{From: day0, To: day0.Add(24*time.Hour - time.Microsecond)}
	r := reader(t, dir, w)
	defer r.Close()
	if len(r.rollups) != 1 {
		t.Fatalf("%d rollups used, want 1", len(r.rollups))
	}
	authors := []string{"a0", "a3", "a12", "a24", "nobody"}
	got, impr := viewerSets(t, r, authors, identify.FacetAccount)
	r.rollups = nil
	hours, himpr := viewerSets(t, r, authors, identify.FacetAccount)
	sets, wimpr := viewersOf(all, w, authors, identify.FacetAccount)
	sameViewers(t, authors, "with the rollup", got, impr, "hours", hours, himpr)
	sameViewers(t, authors, "with the rollup", got, impr, "the Entries say", sets, wimpr)
	if len(sets[0]) == 0 {
		t.Fatal("a0 reached no one: the test asserts nothing")
	}
}
