package privacy

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// The samplers are checked against their exact pmf by a chi-square test
// with a fixed seed (so a run is repeatable) and a bounded sample count.
// Floats appear only here, describing the distribution, never drawing it.

const draws = 20000

func seeded(n byte) Source { return rand.NewChaCha8([32]byte{n, 'w', 'a', 'r', 'd', 'e', 'n'}) }

func rat(s string) *big.Rat {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		panic(s)
	}
	return r
}

// laplacePMF is P[x] = (1-p)/(1+p) p^|x|, p = exp(-1/scale).
func laplacePMF(scale float64) func(int64) float64 {
	p := math.Exp(-1 / scale)
	return func(x int64) float64 { return (1 - p) / (1 + p) * math.Pow(p, math.Abs(float64(x))) }
}

// gaussPMF is exp(-x^2/(2 s2)) normalised over a range holding all but a
// negligible mass.
func gaussPMF(s2 float64) func(int64) float64 {
	lim := int64(40*math.Sqrt(s2)) + 40
	z := 0.0
	for x := -lim; x <= lim; x++ {
		z += math.Exp(-float64(x*x) / (2 * s2))
	}
	return func(x int64) float64 { return math.Exp(-float64(x*x)/(2*s2)) / z }
}

// chiSquare bins the draws by value, merging the tails until every bin
// expects at least 5, and returns the statistic and its degrees of
// freedom.
func chiSquare(t *testing.T, got map[int64]int, n int, pmf func(int64) float64) (float64, int) {
	t.Helper()
	// The central range: values whose own expected count is at least 5.
	lo, hi := int64(0), int64(0)
	for pmf(lo-1)*float64(n) >= 5 {
		lo--
	}
	for pmf(hi+1)*float64(n) >= 5 {
		hi++
	}
	stat, bins := 0.0, 0
	add := func(obs int, exp float64) {
		stat += (float64(obs) - exp) * (float64(obs) - exp) / exp
		bins++
	}
	inner := 0.0
	for x := lo; x <= hi; x++ {
		add(got[x], pmf(x)*float64(n))
		inner += pmf(x)
	}
	tails := 0
	for x, c := range got {
		if x < lo || x > hi {
			tails += c
		}
	}
	if e := (1 - inner) * float64(n); e >= 5 {
		add(tails, e)
	} else if tails > 20 {
		t.Errorf("%d draws outside [%d, %d], where %.2f were expected", tails, lo, hi, e)
	}
	return stat, bins - 1
}

// critical is the chi-square quantile at 1-0.001 (Wilson-Hilferty).
func critical(df int) float64 {
	k := float64(df)
	z := 3.0902 // the standard normal's 0.999 quantile
	a := 2 / (9 * k)
	return k * math.Pow(1-a+z*math.Sqrt(a), 3)
}

func drawMany(t *testing.T, seed byte, draw func(Source) (*big.Int, error)) map[int64]int {
	t.Helper()
	src := seeded(seed)
	got := map[int64]int{}
	for range draws {
		x, err := draw(src)
		if err != nil {
			t.Fatal(err)
		}
		got[x.Int64()]++
	}
	return got
}

func TestBernoulliExp(t *testing.T) {
	for _, g := range []string{"0", "1/3", "1", "5/2", "7"} {
		t.Run(g, func(t *testing.T) {
			src := seeded(1)
			yes := 0
			for range draws {
				ok, err := bernoulliExp(src, rat(g))
				if err != nil {
					t.Fatal(err)
				}
				if ok {
					yes++
				}
			}
			gf, _ := rat(g).Float64()
			p := math.Exp(-gf)
			sd := math.Sqrt(draws * p * (1 - p))
			if d := math.Abs(float64(yes) - draws*p); d > 4.5*sd+1e-9 {
				t.Errorf("Bernoulli(exp(-%s)): %d of %d, want %.1f +- %.1f", g, yes, draws, draws*p, 4.5*sd)
			}
		})
	}
}

func TestDiscreteLaplaceMatchesPMF(t *testing.T) {
	for i, s := range []string{"1/2", "1", "7/3", "10"} {
		t.Run(s, func(t *testing.T) {
			got := drawMany(t, byte(10+i), func(src Source) (*big.Int, error) { return DiscreteLaplace(src, rat(s)) })
			sf, _ := rat(s).Float64()
			stat, df := chiSquare(t, got, draws, laplacePMF(sf))
			if stat > critical(df) {
				t.Errorf("chi-square %.1f over %d degrees of freedom, above %.1f (p < 0.001)", stat, df, critical(df))
			}
			t.Logf("scale %s: chi-square %.1f, df %d, critical %.1f", s, stat, df, critical(df))
		})
	}
}

func TestDiscreteGaussianMatchesPMF(t *testing.T) {
	for i, s := range []string{"1/2", "1", "4", "25/2", "100"} {
		t.Run(s, func(t *testing.T) {
			got := drawMany(t, byte(20+i), func(src Source) (*big.Int, error) { return DiscreteGaussian(src, rat(s)) })
			sf, _ := rat(s).Float64()
			stat, df := chiSquare(t, got, draws, gaussPMF(sf))
			if stat > critical(df) {
				t.Errorf("chi-square %.1f over %d degrees of freedom, above %.1f (p < 0.001)", stat, df, critical(df))
			}
			t.Logf("sigma^2 %s: chi-square %.1f, df %d, critical %.1f", s, stat, df, critical(df))
		})
	}
}

// The test can fail: the same draws against a pmf a little off (a fifth
// wider) are rejected.
func TestChiSquareRejectsAWrongPMF(t *testing.T) {
	got := drawMany(t, 30, func(src Source) (*big.Int, error) { return DiscreteLaplace(src, rat("2")) })
	if stat, df := chiSquare(t, got, draws, laplacePMF(2.4)); stat <= critical(df) {
		t.Errorf("Laplace scale 2 passed as scale 2.4: chi-square %.1f <= %.1f", stat, critical(df))
	}
	got = drawMany(t, 31, func(src Source) (*big.Int, error) { return DiscreteGaussian(src, rat("4")) })
	if stat, df := chiSquare(t, got, draws, gaussPMF(4.8)); stat <= critical(df) {
		t.Errorf("Gaussian sigma^2 4 passed as 4.8: chi-square %.1f <= %.1f", stat, critical(df))
	}
}

func TestUniformBig(t *testing.T) {
	// A modulus above 2^64, where the word-wise path runs: the draws'
	// residues mod 3 are uniform when 3 divides n.
	n := new(big.Int).Lsh(big.NewInt(3), 70)
	src := seeded(40)
	var c [3]int
	for range 3000 {
		u, err := uniform(src, n)
		if err != nil {
			t.Fatal(err)
		}
		if u.Sign() < 0 || u.Cmp(n) >= 0 {
			t.Fatalf("%v outside [0, %v)", u, n)
		}
		c[new(big.Int).Mod(u, big.NewInt(3)).Int64()]++
	}
	for i, v := range c {
		if v < 850 || v > 1150 {
			t.Errorf("residue %d: %d of 3000", i, v)
		}
	}
}
