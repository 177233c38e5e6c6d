package ledger

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/identify"
)

// manyHours writes hours hours of perHour Accesses each (accounts 0-49;
// account "lone" only in hour 7) through Open and seals them all. It
// returns, per account, the subjects it looked up and its Accesses.
func manyHours(t testing.TB, dir string, hours, perHour int) (subjects map[string]map[string]bool, accesses map[string]int) {
	c := &clock{t: t0}
	o := Options{Dir: dir, Now: c.now}
	l, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	subjects, accesses = map[string]map[string]bool{}, map[string]int{}
	for h := 0; h < hours; h++ {
		at := t0.Add(time.Duration(h) * time.Hour)
		c.set(at)
		for i := 0; i < perHour; i++ {
			acct, subj := fmt.Sprint(i%50), fmt.Sprint(h*100+i%500)
			if h == 7 && i%100 == 0 {
				acct = "lone"
			}
			l.Add(profile(at.Add(time.Duration(i)*time.Millisecond), acct, fmt.Sprintf("10.0.%d.%d", h, i%200), subj, i%3 == 0))
			if subjects[acct] == nil {
				subjects[acct] = map[string]bool{}
			}
			subjects[acct][subj] = true
			accesses[acct]++
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	c.set(t0.Add(time.Duration(hours) * time.Hour)) // seals the last hour on open
	l, err = Open(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return subjects, accesses
}

// noneDecoded fails when a partition of r still holds decoded Accesses.
func noneDecoded(t *testing.T, r *Reader, after string) {
	t.Helper()
	for _, p := range r.parts {
		if !p.sealed {
			t.Fatalf("after %s: %s is not sealed", after, p.path)
		}
		if p.entries != nil || p.cold == nil {
			t.Fatalf("after %s: %s holds %d decoded Accesses (compressed kept: %v)", after, p.path, len(p.entries), p.cold != nil)
		}
	}
}

// Took-by, explain and the distinct counts over many sealed hours keep no
// partition's Accesses decoded after they answer, and answer again from
// the same reader as a fresh one does.
func TestQueriesKeepNoAccesses(t *testing.T) {
	dir := t.TempDir()
	const hours, perHour = 48, 2000
	subjects, accesses := manyHours(t, dir, hours, perHour)
	r := reader(t, dir, Window{})
	defer r.Close()
	if r.Partitions() != hours {
		t.Fatalf("%d partitions, want %d", r.Partitions(), hours)
	}
	type answers struct {
		took, lone, none *TookByResult
		found            *Found
		distinct         int
		many             [][]int
	}
	// A request id of hour 30 (profile's: the Access's time in ns).
	id := fmt.Sprintf("%08x%016x", 1, t0.Add(30*time.Hour+1234*time.Millisecond).UnixNano())
	ask := func(r *Reader) answers {
		var a answers
		a.took = must(r.TookBy(identify.FacetAccount, "3"))(t)
		noneDecoded(t, r, "took-by")
		a.lone = must(r.TookBy(identify.FacetAccount, "lone"))(t)
		a.none = must(r.TookBy(identify.FacetIP, "10.0.99.1"))(t)
		noneDecoded(t, r, "took-by of a rare identity")
		a.found = must(r.Find(id))(t)
		noneDecoded(t, r, "explain")
		a.distinct = must(r.Distinct(identify.FacetAccount, "3", "profile"))(t)
		noneDecoded(t, r, "distinct")
		a.many = must(r.DistinctMany([]DistinctQuery{
			{By: identify.FacetAccount, Values: []string{"3", "lone", "nobody"}, Class: "contact"},
			{By: identify.FacetIP, Values: []string{"10.0.7.0", "10.0.40.3"}},
		}))(t)
		noneDecoded(t, r, "distinct many")
		return a
	}
	first := ask(r)
	if first.took.Accesses != accesses["3"] || first.took.Subjects != len(subjects["3"]) {
		t.Fatalf("took-by 3: %d Accesses of %d subjects, want %d of %d", first.took.Accesses, first.took.Subjects, accesses["3"], len(subjects["3"]))
	}
	if first.lone.Accesses != accesses["lone"] || first.lone.Subjects != len(subjects["lone"]) || first.lone.Accesses == 0 {
		t.Fatalf("took-by lone: %d Accesses of %d subjects, want %d of %d", first.lone.Accesses, first.lone.Subjects, accesses["lone"], len(subjects["lone"]))
	}
	if want := t0.Add(7 * time.Hour); !first.lone.First.Equal(want) {
		t.Fatalf("took-by lone: first %v, want %v", first.lone.First, want)
	}
	if first.none.Accesses != 0 {
		t.Fatalf("took-by of an ip never seen: %d Accesses", first.none.Accesses)
	}
	if first.found == nil || first.found.Entry.RequestID != id || first.found.Entry.Identity[1] != "34" {
		t.Fatalf("explain %s: %+v", id, first.found)
	}
	if first.distinct != len(subjects["3"]) || first.many[0][2] != 0 || first.many[0][1] == 0 || first.many[1][0] == 0 {
		t.Fatalf("distinct: %d (want %d), many %v", first.distinct, len(subjects["3"]), first.many)
	}
	// DistinctMany over sealed hours counts as Distinct does, value by value.
	for i, v := range []string{"3", "lone", "nobody"} {
		if want := must(r.Distinct(identify.FacetAccount, v, "contact"))(t); first.many[0][i] != want {
			t.Fatalf("DistinctMany %s: %d, Distinct %d", v, first.many[0][i], want)
		}
	}
	// Took-by of "lone" decodes hour 7 alone: the others' identity
	// columns lack it.
	lone, _ := r.d.id(nsFacet+int(identify.FacetAccount)-1, "lone")
	has := r.tupleHas(int(identify.FacetAccount)-1, lone)
	for h, p := range r.parts {
		if r.lacks(p, has) != (h != 7) {
			t.Fatalf("hour %d: lacks lone %v", h, r.lacks(p, has))
		}
	}
	// The same reader decodes again; a fresh one agrees.
	again := ask(r)
	fresh := reader(t, dir, Window{})
	defer fresh.Close()
	if other := ask(fresh); !reflect.DeepEqual(first, again) || !reflect.DeepEqual(first, other) {
		t.Fatalf("answers differ:\nfirst %+v\nagain %+v\nfresh %+v", first, again, other)
	}
}
