package memory

import (
	"math"
	"testing"

	"github.com/axiomhq/hyperloglog"
)

// TestHLLMatchesAxiomhq checks the incremental sketch against the library's
// dense sketch fed the same hashes, and both against the true count.
func TestHLLMatchesAxiomhq(t *testing.T) {
	cases := []struct {
		name string
		n    int
	}{
		{"one", 1},
		{"exact-set size", 1024},
		{"a few thousand", 5000},
		{"around 2.5m", 40_000},
		{"a quarter million", 250_000},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, ref := newHLL(), hyperloglog.NewNoSparse()
			for i := range c.n {
				x := mix64(uint64(i) + 0xabc)
				h.insert(x)
				ref.InsertHash(x)
			}
			if want := int(ref.Estimate()); h.est != want {
				t.Errorf("estimate %d, axiomhq says %d", h.est, want)
			}
			if e := math.Abs(float64(h.est-c.n)) / float64(c.n); e > 0.03 {
				t.Errorf("estimate %d of %d distinct: %.2f%% off, want under 3%%", h.est, c.n, 100*e)
			}
			// Inserting the same subjects again changes nothing.
			for i := range min(c.n, 1000) {
				if h.insert(mix64(uint64(i) + 0xabc)) {
					t.Fatalf("re-inserting subject %d changed the sketch", i)
				}
			}
		})
	}
}
