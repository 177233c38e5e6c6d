package store

import (
	"math/rand/v2"
	"testing"
)

// Add's count is its buckets' sum, kept as it goes: against the sum of
// the buckets after every Add of a random walk through time (late events,
// gaps longer than the window, saturated buckets).
func TestTallySum(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const width = 1000
	var tl Tally
	at := int64(5_000_000)
	for i := range 100_000 {
		switch r := rng.IntN(100); {
		case r < 60: // same bucket or the next few
			at += rng.Int64N(3 * width)
		case r < 70: // late: from a gateway whose clock is behind
			at -= rng.Int64N(20 * width)
		case r < 72: // a gap past the window
			at += rng.Int64N(40 * width)
		}
		n := uint32(1 + rng.IntN(3))
		if rng.IntN(1000) == 0 {
			n = ^uint32(0) // saturates its bucket
		}
		got := tl.Add(at, width, n)
		want := 0
		for _, c := range tl.n {
			want += int(c)
		}
		if got != want {
			t.Fatalf("step %d: Add returned %d, buckets hold %d", i, got, want)
		}
	}
}
