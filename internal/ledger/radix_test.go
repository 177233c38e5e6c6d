package ledger

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestRadixSort: the radix sort gives slices.Sort's order, for keys whose
// high digits all agree (skipped passes), keys over every digit, short
// inputs and duplicates.
func TestRadixSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, c := range []struct {
		n    int
		mask uint64
	}{{10, 1<<64 - 1}, {5000, 1<<64 - 1}, {5000, 0xfffff}, {70000, 0x1fffff00000fffff}, {3000, 7}} {
		a := make([]uint64, c.n)
		for i := range a {
			a[i] = rng.Uint64() & c.mask
		}
		want := slices.Clone(a)
		slices.Sort(want)
		got, _ := radixSort(a, nil)
		if !slices.Equal(got, want) {
			t.Fatalf("n %d mask %x: radix order differs from slices.Sort", c.n, c.mask)
		}
	}
}

// TestSortTakings: takings end in compareTakings's order, by radix (keys
// that fit 64 bits, with repeats of a subject and tuple whose classes and
// times differ) and by comparison (keys that do not fit).
func TestSortTakings(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, c := range []struct {
		n              int
		subjects, tups uint32
	}{{20000, 1 << 20, 1 << 20}, {20000, 50, 40}, {20000, 1 << 31, 1 << 31}, {100, 10, 10}} {
		ts := make([]taking, c.n)
		for i := range ts {
			ts[i] = taking{subject: rng.Uint32N(c.subjects), ident: rng.Uint32N(c.tups), set: rng.Uint64N(4), t: rng.Int64N(100)}
		}
		want := slices.Clone(ts)
		slices.SortFunc(want, compareTakings)
		got, _, _, _ := sortTakings(ts, nil, nil, nil)
		if !slices.Equal(got, want) {
			t.Fatalf("%+v: order differs from compareTakings", c)
		}
	}
}
