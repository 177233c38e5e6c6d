package ledger

import (
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/identify"
)

// A reader of an open log unchanged since the last reader takes its
// translated, indexed partition; one appended to reads it again and sees
// the new Accesses.
func TestOpenLogCache(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: t0.Add(10 * time.Minute)}
	l := openAt(t, dir, c, Options{})
	defer l.Close()
	l.Add(profile(t0.Add(time.Minute), "alice", "10.0.0.1", "s1", false))
	l.Sync()

	took := func(r *Reader) int { return len(r.WhoTook("s1", "contact", identify.FacetAccount).Rows) }
	r1 := reader(t, dir, Window{})
	r2 := reader(t, dir, Window{From: t0})
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
	r2.Close()

	l.Add(profile(t0.Add(2*time.Minute), "bob", "10.0.0.2", "s1", false))
	l.Sync()
	r3 := reader(t, dir, Window{})
	defer r3.Close()
	if took(r3) != 2 {
		t.Fatalf("after an append, who-took s1: %d rows, want 2", took(r3))
	}
	if r4 := reader(t, dir, Window{To: t0.Add(90 * time.Second)}); took(r4) != 1 {
		t.Fatalf("a window cutting the cached log: %d rows, want 1", took(r4))
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
		got := r.DistinctEach(identify.FacetAccount, values, class)
		for i, v := range values {
			if want := r.Distinct(identify.FacetAccount, v, class); got[i] != want {
				t.Errorf("class %q, %s: DistinctEach %d, Distinct %d", class, v, got[i], want)
			}
		}
	}
	if got := r.DistinctEach(identify.FacetAccount, values, "contact"); got[0] != 1 || got[1] != 1 {
		t.Errorf("contact: %v, want alice 1 (s2 masked), bob 1", got)
	}
}
