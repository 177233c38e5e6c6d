package memory

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestSubjectSet(t *testing.T) {
	var s subjectSet
	want := map[uint64]bool{}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 5000; i++ {
		x := rng.Uint64N(3000) // many repeats, and 0 among them
		if got := s.has(x); got != want[x] {
			t.Fatalf("has(%d) = %v, want %v", x, got, want[x])
		}
		if !want[x] {
			s.add(x)
			want[x] = true
		}
		if s.len() != len(want) {
			t.Fatalf("len = %d, want %d", s.len(), len(want))
		}
	}
	if !want[0] || !s.has(0) {
		t.Fatal("subject 0 not held")
	}
	if (s.len()-1)*4 > len(s.slots)*3 {
		t.Errorf("load above 3/4: %d in %d slots", s.len(), len(s.slots))
	}
	var got []uint64
	s.each(func(x uint64) { got = append(got, x) })
	slices.Sort(got)
	var exp []uint64
	for x := range want {
		exp = append(exp, x)
	}
	slices.Sort(exp)
	if !slices.Equal(got, exp) {
		t.Fatalf("each gave %d subjects, want %d", len(got), len(exp))
	}
	n := len(s.slots)
	s.reset()
	if s.len() != 0 || s.has(0) || s.has(exp[len(exp)-1]) || len(s.slots) != n {
		t.Fatalf("reset: len %d, table %d (was %d)", s.len(), len(s.slots), n)
	}
}
