package privacy

import (
	"math"
	"math/rand/v2"
	"testing"
)

// halfWidthDirect is HalfWidth's Chernoff bound as first written: every
// grid point's exp and logs for every w tried. The fast one must give the
// same widths (the answers stated before it must not move).
func halfWidthDirect(m Mechanism, cells int) int64 {
	alpha := 1 - Confidence
	b, _ := m.scale().Float64()
	p := math.Exp(-1 / b)
	bound := func(w float64) float64 {
		best := 1.0
		top := -math.Log(p)
		for i := 1; i < 400; i++ {
			l := top * float64(i) / 400
			lm := 2*math.Log(1-p) - math.Log(1-p*math.Exp(l)) - math.Log(1-p*math.Exp(-l))
			best = min(best, 2*math.Exp(-l*w+float64(cells)*lm))
		}
		return best
	}
	lo, hi := int64(0), int64(1)
	for bound(float64(hi)) > alpha && hi < 1<<40 {
		hi *= 2
	}
	for lo < hi {
		mid := (lo + hi) / 2
		if bound(float64(mid)) <= alpha {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

func TestHalfWidthAsDirect(t *testing.T) {
	for _, eps := range []string{"0.01", "0.1", "1/3", "1", "2.5", "100"} {
		m, err := ParseMechanism(eps, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, cells := range []int{2, 3, 5, 20, 101, 1000, 65537} {
			if got, want := m.HalfWidth(cells), halfWidthDirect(m, cells); got != want {
				t.Errorf("epsilon %s, %d cells: half width %d, the direct bound's %d", eps, cells, got, want)
			}
		}
	}
}

// AtLeast's figures are Figure's over "key at least k", for every k.
func TestAtLeastIsFigure(t *testing.T) {
	m, err := ParseMechanism("0.5", "")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	exact := make([]int64, 300)
	keys := make([]int, len(exact))
	for i := range exact {
		exact[i] = rng.Int64N(50)
		keys[i] = rng.IntN(12) // 0: in no figure; 11: past kMax, counted in every one
	}
	h, err := m.Release(rng, exact)
	if err != nil {
		t.Fatal(err)
	}
	const kMax = 10
	key := func(i int) (int, bool) { return keys[i], i%7 != 3 } // some cells invalid
	vals, ivs := h.AtLeast(key, kMax)
	if len(vals) != kMax || len(ivs) != kMax {
		t.Fatalf("%d figures, %d intervals, want %d", len(vals), len(ivs), kMax)
	}
	for k := 1; k <= kMax; k++ {
		v, iv := h.Figure(func(i int) bool { k2, ok := key(i); return ok && k2 >= k })
		if vals[k-1] != v || ivs[k-1] != iv {
			t.Errorf("k %d: AtLeast %d %v, Figure %d %v", k, vals[k-1], ivs[k-1], v, iv)
		}
	}
}

// The widths a --dose of K authors asks: one per distinct number of
// cells summed, K of them. direct is the bound as first written.
func BenchmarkDoseWidths(b *testing.B) {
	m, err := ParseMechanism("0.1", "")
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		hw   func(Mechanism, int) int64
	}{{"fast", Mechanism.HalfWidth}, {"direct", halfWidthDirect}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				for cells := 2; cells < 202; cells++ {
					c.hw(m, cells)
				}
			}
		})
	}
}
