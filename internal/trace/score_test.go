package trace

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestBounds: the Newton search finds the Chernoff bound a fine grid of
// lambda finds (never a larger one, nor one smaller than the grid's by
// more than rounding), and the threshold is the score where that bound
// crosses eps.
func TestBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 20 {
		n := 5 + rng.IntN(400)
		ts := make([]term, n)
		for i := range ts {
			th := 0.14 + (math.Pi/2-0.28)*rng.Float64()
			ts[i] = term{p: math.Sin(th) * math.Sin(th), x: rng.IntN(3) == 0, y: rng.IntN(2) == 0}
		}
		us := prepare(ts)
		s := score(ts) + float64(trial%5)*3
		grid := 1.0
		for l := 0.0; l <= lambdaMax; l += lambdaMax / 2000 {
			k, _, _ := cumulant(us, l)
			grid = math.Min(grid, math.Exp(k-l*s))
		}
		got := tailBound(us, s)
		if got > grid*(1+1e-6)+1e-300 || got < grid*(1-1e-2) {
			t.Fatalf("trial %d (%d slots, score %.3f): bound %g, grid %g", trial, n, s, got, grid)
		}
		for _, eps := range []float64{1e-3, 1e-6} {
			th := threshold(us, eps)
			if math.IsInf(th, 1) {
				continue
			}
			if b := tailBound(us, th); math.Abs(math.Log(b/eps)) > 1e-6 {
				t.Fatalf("trial %d: bound at the threshold %.4f is %g, want %g", trial, th, b, eps)
			}
			if b := tailBound(us, th*0.98); b <= eps {
				t.Fatalf("trial %d: bound below the threshold is already %g <= %g", trial, b, eps)
			}
		}
	}
}
