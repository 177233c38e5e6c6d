package ledger

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/warden-gw/warden/internal/identify"
)

// day0 is the first day of the rollup tests' ledgers (UTC midnight).
var day0 = time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)

// writeDays writes 30 Accesses an hour for hours hours from day0 (feed
// pages of 0-3 authors of 25, accounts of 60, ips of 30 drawn apart, so
// that an account has several tuples, nets of 5; some Accesses have no
// ip or no account), seals every hour and returns the Entries written.
func writeDays(t *testing.T, dir string, hours int, o Options) []*Entry {
	t.Helper()
	rng := rand.New(rand.NewPCG(21, uint64(hours)))
	c := &clock{t: day0}
	l := openAt(t, dir, c, o)
	var all []*Entry
	for h := range hours {
		for i := range 30 {
			at := day0.Add(time.Duration(h)*time.Hour + time.Duration(i)*time.Minute + time.Duration(rng.IntN(59))*time.Second)
			c.set(at)
			var authors []string
			for range rng.IntN(4) {
				authors = append(authors, fmt.Sprintf("a%d", rng.IntN(25)))
			}
			ip := rng.IntN(30)
			e := posts(at, fmt.Sprintf("acct%d", rng.IntN(60)), fmt.Sprintf("10.0.%d.1", ip), authors...)
			e.Identity[3] = fmt.Sprintf("10.%d.0.0/16", ip%5)
			switch rng.IntN(10) {
			case 0:
				e.Identity[1] = ""
			case 1:
				e.Identity[2] = ""
			}
			l.Add(e)
			all = append(all, e)
		}
	}
	l.Close()
	// Open again an hour after the last: the last hour is sealed at start,
	// and Close waits for the sealer (rollups included).
	openAt(t, dir, &clock{t: day0.Add(time.Duration(hours+1) * time.Hour)}, o).Close()
	return all
}

// viewersOf is what Viewers must say, counted from the Entries: per
// author, the facet values that were served its content in w, and the
// impressions.
func viewersOf(all []*Entry, w Window, authors []string, by identify.Facet) ([]map[string]bool, []uint64) {
	sets, impr := make([]map[string]bool, len(authors)), make([]uint64, len(authors))
	for i := range sets {
		sets[i] = map[string]bool{}
	}
	for _, e := range all {
		if !w.has(e.Time.UnixMicro()) {
			continue
		}
		for _, a := range e.Authors {
			for i, b := range authors {
				if a != b {
					continue
				}
				impr[i]++
				if v := e.Identity[by-1]; v != "" {
					sets[i][v] = true
				}
			}
		}
	}
	return sets, impr
}

// valueSets turns Viewers' bitmaps into the values they stand for.
func valueSets(r *Reader, views []*roaring.Bitmap) []map[string]bool {
	out := make([]map[string]bool, len(views))
	for i, b := range views {
		out[i] = map[string]bool{}
		for _, v := range b.ToArray() {
			out[i][r.IdentityName(v)] = true
		}
	}
	return out
}

// viewerSets is r's Viewers of authors by the facet, as value sets, and
// their impressions.
func viewerSets(t testing.TB, r *Reader, authors []string, by identify.Facet) ([]map[string]bool, []uint64) {
	t.Helper()
	views, impr := must2(r.Viewers(authors, by))(t)
	return valueSets(r, views), impr
}

// sameViewers reports each author whose people or impressions in got
// differ from want's, naming both answers, and says whether all agreed.
func sameViewers(t testing.TB, authors []string, gotName string, got []map[string]bool, gotImpr []uint64, wantName string, want []map[string]bool, wantImpr []uint64) bool {
	t.Helper()
	same := true
	for i, a := range authors {
		if fmt.Sprint(got[i]) != fmt.Sprint(want[i]) || gotImpr[i] != wantImpr[i] {
			t.Errorf("%s: %s %v (%d), %s %v (%d)", a, gotName, got[i], gotImpr[i], wantName, want[i], wantImpr[i])
			same = false
		}
	}
	return same
}

// A day whose hours are all sealed gets a rollup; reach over windows
// that take whole days (from rollups), cut days (hours) or both gives,
// by every facet, what the hours alone give and what the Entries say.
func TestRollupEqualsHours(t *testing.T) {
	dir := t.TempDir()
	all := writeDays(t, dir, 60, Options{}) // two whole days and half a third
	ls, err := list(dir)
	if err != nil {
		t.Fatal(err)
	}
	d1, d2 := day0.Add(24*time.Hour), day0.Add(48*time.Hour)
	if !ls.days[day0.Unix()] || !ls.days[d1.Unix()] || ls.days[d2.Unix()] || len(ls.days) != 2 {
		t.Fatalf("rollups %v: want the two whole days' (%d, %d)", ls.days, day0.Unix(), d1.Unix())
	}
	authors := []string{"a0", "a1", "a3", "a7", "a7", "a12", "a24", "nobody"}
	for _, c := range []struct {
		name    string
		w       Window
		rollups int
	}{
		{"all", Window{}, 2},
		{"ragged", Window{From: day0.Add(5*time.Hour + 30*time.Minute), To: d2.Add(3*time.Hour + 15*time.Minute)}, 1},
		{"one day", Window{From: d1, To: d2.Add(-time.Microsecond)}, 1},
		{"cut in its last hour", Window{From: d1, To: d2.Add(-50 * time.Minute)}, 0},
	} {
		for _, by := range []identify.Facet{identify.FacetAccount, identify.FacetIP, identify.FacetNet} {
			t.Run(c.name+"/"+by.String(), func(t *testing.T) {
				r := reader(t, dir, c.w)
				defer r.Close()
				// Rollups keep no net: by net, the reader reads the hours.
				if len(r.rollups) != c.rollups {
					t.Fatalf("%d rollups used, want %d", len(r.rollups), c.rollups)
				}
				got, impr := viewerSets(t, r, authors, by)
				r.rollups = nil // the hours alone
				hours, himpr := viewerSets(t, r, authors, by)
				sets, wimpr := viewersOf(all, c.w, authors, by)
				sameViewers(t, authors, "with rollups", got, impr, "hours", hours, himpr)
				sameViewers(t, authors, "with rollups", got, impr, "the Entries say", sets, wimpr)
				if len(sets[0]) == 0 || wimpr[0] == 0 {
					t.Fatalf("a0 reached no one: the test asserts nothing")
				}
			})
		}
	}
	rep, err := Verify(dir)
	if err != nil || !rep.OK || len(rep.Rollups) != 2 || rep.Rollups[0].Hours != 24 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

// Verify checks each rollup's hash, the hours it names and its postings
// against what its hours make; a reader never panics on an edited one.
func TestVerifyCatchesRollupEdits(t *testing.T) {
	dir := t.TempDir()
	writeDays(t, dir, 49, Options{})
	path := rollupPath(dir, day0.Unix())
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	// A byte changed: the rollup's hash fails.
	b := slices.Clone(orig)
	b[len(b)/2] ^= 1
	os.WriteFile(path, b, 0o600)
	if p := verifyProblem(t, dir, path, "edited byte"); !strings.Contains(p, "SHA-256") {
		t.Fatalf("edited byte: %s", p)
	}
	// The reader does not hash a rollup; it must not panic on one edited
	// anywhere.
	for _, at := range []int{9, 30, len(b) / 3, len(b) / 2, len(b) - 50, len(b) - 40} {
		e := slices.Clone(orig)
		e[at] ^= 0xff
		os.WriteFile(path, e, 0o600)
		if r, err := OpenReader(dir, Window{}); err == nil {
			must2(r.Viewers([]string{"a1", "a2"}, identify.FacetAccount))(t)
			r.Close()
		}
	}

	// Rewritten with a fresh hash from the right hours, but with two
	// tuples' accounts swapped: its postings are not what the hours make.
	os.Remove(path)
	var tv tupleVals
	if err := tv.extend(dir); err != nil {
		t.Fatal(err)
	}
	tv.v[0][0], tv.v[0][1] = tv.v[0][1], tv.v[0][0]
	var stems []string
	for h := range 24 {
		stems = append(stems, partName(day0.Add(time.Duration(h)*time.Hour).Unix()))
	}
	enc := mustEncoder(t)
	if made, err := writeRollup(dir, day0.Unix(), stems, &tv, rollupFanIn, mustDecoder(t), enc); !made || err != nil {
		t.Fatalf("forged rollup: %v %v", made, err)
	}
	if p := verifyProblem(t, dir, path, "forged rollup"); !strings.Contains(p, "postings by account") {
		t.Fatalf("forged rollup: %s", p)
	}

	// One that names 23 of the day's 24 hours.
	os.Remove(path)
	tv = tupleVals{}
	tv.extend(dir)
	writeRollup(dir, day0.Unix(), stems[1:], &tv, rollupFanIn, mustDecoder(t), enc)
	if p := verifyProblem(t, dir, path, "an hour left out"); !strings.Contains(p, "names hours") {
		t.Fatalf("an hour left out: %s", p)
	}
	r := reader(t, dir, Window{})
	for _, x := range r.rollups {
		if x.day == day0.Unix() {
			t.Fatalf("a reader used a rollup that names 23 of 24 hours")
		}
	}
	r.Close()

	// As the sealer wrote it: clean again.
	os.WriteFile(path, orig, 0o600)
	if rep, err := Verify(dir); err != nil || !rep.OK {
		t.Fatalf("restored: %+v %v", rep, err)
	}
}

// Retention removes a day's rollup with the first hour of the day it
// removes, and the sealer does not make a rollup of the day's rest.
func TestRollupRetention(t *testing.T) {
	dir := t.TempDir()
	writeDays(t, dir, 50, Options{})
	if ls, _ := list(dir); len(ls.days) != 2 {
		t.Fatalf("rollups %v", ls.days)
	}
	// At day 2's 03:00 a 30h max age removes day 0's hours up to 20:00.
	openAt(t, dir, &clock{t: day0.Add(51 * time.Hour)}, Options{MaxAge: 30 * time.Hour}).Close()
	ls, _ := list(dir)
	if ls.days[day0.Unix()] || !ls.days[day0.Add(24*time.Hour).Unix()] {
		t.Fatalf("rollups after retention %v", ls.days)
	}
	if ls.seg[partName(day0.Unix())] || !ls.seg[partName(day0.Add(23*time.Hour).Unix())] {
		t.Fatalf("hours after retention %v", ls.stems)
	}
	rep, err := Verify(dir)
	if err != nil || !rep.OK || len(rep.Rollups) != 1 {
		t.Fatalf("verify after retention: %+v %v", rep, err)
	}
}

// Union equals roaring.FastOr: dense views (the bit array), sparse ones
// (FastOr), empty ones and none.
func TestUnion(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, c := range []struct {
		n, each int
		top     uint32
	}{{0, 0, 1}, {3, 0, 1}, {1000, 40, 1 << 20}, {50, 3, 1 << 31}, {20, 500, 5000}} {
		views := make([]*roaring.Bitmap, c.n)
		for i := range views {
			views[i] = roaring.New()
			for range c.each {
				views[i].Add(rng.Uint32N(c.top))
			}
		}
		got, want := Union(views), roaring.FastOr(views...)
		if !got.Equals(want) {
			t.Fatalf("%d views of %d below %d: Union has %d, FastOr %d", c.n, c.each, c.top, got.GetCardinality(), want.GetCardinality())
		}
	}
}

// A reader leaves the partitions of the days their rollups answer whole
// unmapped: reach by account or ip never maps them; every other query
// (and reach by net, which rollups do not keep) maps them first and
// answers as a reader that mapped everything at open.
func TestLazyPartsOfCoveredDays(t *testing.T) {
	dir := t.TempDir()
	all := writeDays(t, dir, 60, Options{}) // days 0 and 1 rolled up, day 2 half
	qs := damageQueries(day0.Add(50 * time.Hour))
	eager := reader(t, dir, Window{})
	defer eager.Close()
	if err := eager.load(); err != nil || eager.unmapped != 0 {
		t.Fatalf("load: %v, %d unmapped", err, eager.unmapped)
	}
	lazy := reader(t, dir, Window{})
	defer lazy.Close()
	if lazy.unmapped != 48 {
		t.Fatalf("%d partitions unmapped, want the 48 of the two days rolled up", lazy.unmapped)
	}
	maps := len(lazy.maps)
	authors := []string{"a0", "a3", "a12", "nobody"}
	for _, by := range []identify.Facet{identify.FacetAccount, identify.FacetIP} {
		got, impr := viewerSets(t, lazy, authors, by)
		want, wimpr := viewerSets(t, eager, authors, by)
		sets, simpr := viewersOf(all, Window{}, authors, by)
		sameViewers(t, authors, "lazy", got, impr, "eager", want, wimpr)
		sameViewers(t, authors, "lazy", got, impr, "the Entries say", sets, simpr)
		if len(sets[0]) == 0 {
			t.Fatal("a0 reached no one: the test asserts nothing")
		}
	}
	if lazy.unmapped != 48 || len(lazy.maps) != maps {
		t.Fatalf("reach by account and ip mapped partitions: %d unmapped, %d maps (were %d)", lazy.unmapped, len(lazy.maps), maps)
	}
	// By net the hours answer: mapped then.
	got, impr := viewerSets(t, lazy, authors, identify.FacetNet)
	want, wimpr := viewerSets(t, eager, authors, identify.FacetNet)
	sameViewers(t, authors, "lazy", got, impr, "eager", want, wimpr)
	if lazy.unmapped != 0 {
		t.Fatalf("reach by net left %d unmapped", lazy.unmapped)
	}
	// Every other query, each on a reader of its own, maps them first.
	for name, q := range qs {
		r := reader(t, dir, Window{})
		got, err := q(r)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want, err := q(eager)
		if err != nil {
			t.Fatalf("%s, eager: %v", name, err)
		}
		if got != want {
			t.Errorf("%s: lazy %s, eager %s", name, got, want)
		}
		if !strings.HasPrefix(name, "reach") && r.unmapped != 0 {
			t.Errorf("%s: answered with %d partitions unmapped", name, r.unmapped)
		}
		r.Close()
	}
	// A window that cuts day 1 maps its hours at open.
	r := reader(t, dir, Window{To: day0.Add(47 * time.Hour)})
	if r.unmapped != 24 {
		t.Fatalf("window cutting day 1: %d unmapped, want day 0's 24", r.unmapped)
	}
	r.Close()

	// A partition replaced after the reader opened is an error naming it.
	r = reader(t, dir, Window{})
	defer r.Close()
	seg := segPath(dir, partName(day0.Add(5*time.Hour).Unix()))
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	defer os.WriteFile(seg, b, 0o600)
	forged := slices.Clone(b)
	forged[len(forged)-1] ^= 1
	os.WriteFile(seg, forged, 0o600)
	if _, err := r.WhoTook("p0-a3", "", identify.FacetIP); err == nil || !strings.Contains(err.Error(), seg) {
		t.Fatalf("who-took over a replaced hour: %v", err)
	}
}
