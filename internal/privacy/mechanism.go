package privacy

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
)

// Mechanism is the noise one answer gets: a discrete Laplace for pure
// epsilon-DP, or a discrete Gaussian for rho-zCDP. Every released figure
// of an answer is a sum of cells of a histogram in which one person
// (every Access of one account, or of one ip) sits in at most one cell:
// adding or removing a person changes one cell by one, so the histogram's
// L1 and L2 sensitivity are both 1, and each cell gets independent noise
// calibrated to 1.
type Mechanism struct {
	Epsilon *big.Rat // pure DP: discrete Laplace of scale 1/Epsilon
	Rho     *big.Rat // zCDP: discrete Gaussian of variance 1/(2 Rho)
}

// The smallest parameters accepted: they bound how many answers a budget
// holds (and so the budget file's size).
var (
	minEpsilon = big.NewRat(1, 100)
	minRho     = big.NewRat(1, 20000)
	maxParam   = big.NewRat(100, 1)
)

// ParseMechanism reads --dp-epsilon or --dp-rho (exactly one) as exact
// decimals: "0.5" is 1/2, never a float.
func ParseMechanism(epsilon, rho string) (Mechanism, error) {
	if (epsilon == "") == (rho == "") {
		return Mechanism{}, errors.New("give exactly one of dp-epsilon and dp-rho")
	}
	name, s, min := "dp-epsilon", epsilon, minEpsilon
	if rho != "" {
		name, s, min = "dp-rho", rho, minRho
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok || r.Cmp(min) < 0 || r.Cmp(maxParam) > 0 {
		// Bounds as decimals without trailing zeros: 0.01, 0.00005.
		low := strings.TrimRight(min.FloatString(5), "0")
		return Mechanism{}, fmt.Errorf("%s: %q is not a number from %s to %s", name, s, low, maxParam.FloatString(0))
	}
	if rho != "" {
		return Mechanism{Rho: r}, nil
	}
	return Mechanism{Epsilon: r}, nil
}

// Name is the noise's name.
func (m Mechanism) Name() string {
	if m.Rho != nil {
		return "discrete Gaussian"
	}
	return "discrete Laplace"
}

// Param is "epsilon=..." or "rho=...", the parameter as given.
func (m Mechanism) Param() string {
	if m.Rho != nil {
		return "rho=" + ratString(m.Rho)
	}
	return "epsilon=" + ratString(m.Epsilon)
}

// Charge is what an answer costs in zCDP: rho, or epsilon^2/2.
func (m Mechanism) Charge() *big.Rat {
	if m.Rho != nil {
		return new(big.Rat).Set(m.Rho)
	}
	c := new(big.Rat).Mul(m.Epsilon, m.Epsilon)
	return c.Quo(c, big.NewRat(2, 1))
}

// Scale is the discrete Laplace's scale (1/epsilon); Sigma2 the discrete
// Gaussian's variance parameter (1/(2 rho)).
func (m Mechanism) scale() *big.Rat { return new(big.Rat).Inv(m.Epsilon) }
func (m Mechanism) sigma2() *big.Rat {
	return new(big.Rat).Inv(new(big.Rat).Mul(m.Rho, big.NewRat(2, 1)))
}

// Noise draws one cell's noise.
func (m Mechanism) Noise(src Source) (int64, error) {
	var x *big.Int
	var err error
	if m.Rho != nil {
		x, err = DiscreteGaussian(src, m.sigma2())
	} else {
		x, err = DiscreteLaplace(src, m.scale())
	}
	if err != nil {
		return 0, err
	}
	if !x.IsInt64() {
		return 0, errors.New("privacy: noise beyond int64")
	}
	return x.Int64(), nil
}

// Confidence is the level of every interval stated.
const Confidence = 0.95

// HalfWidth is w such that a sum of cells noisy cells is within w of the
// exact sum with probability at least Confidence. One cell: the exact
// quantile of the noise's pmf. Several: a Chernoff bound, from the
// discrete Laplace's moment generating function, or from the discrete
// Gaussian being subgaussian with its sigma (Canonne, Kamath and Steinke
// 2020, Corollary 9). Floats here describe the noise; none draws it.
func (m Mechanism) HalfWidth(cells int) int64 {
	alpha := 1 - Confidence
	if cells < 1 {
		return 0
	}
	if m.Rho != nil {
		s2, _ := m.sigma2().Float64()
		if cells == 1 {
			return quantile(gaussPMFf(s2), alpha)
		}
		return int64(math.Ceil(math.Sqrt(2 * float64(cells) * s2 * math.Log(2/alpha))))
	}
	b, _ := m.scale().Float64()
	p := math.Exp(-1 / b)
	if cells == 1 {
		return quantile(func(x int64) float64 { return (1 - p) / (1 + p) * math.Pow(p, math.Abs(float64(x))) }, alpha)
	}
	// P(|S| >= w) <= 2 min over l of exp(-l w) M(l)^cells,
	// M(l) = (1-p)^2 / ((1-p e^l)(1-p e^-l)) for 0 < l < -ln p, on a grid
	// of 399 l. The grid's log M(l) do not depend on w: computed once, and
	// the least exponent taken before the one exp (exp is increasing), so
	// a bound costs 399 multiply-adds, not 399 exps and logs: a --dose of
	// K authors asks K widths, and 100,000 took 5 minutes.
	const grid = 400
	top := -math.Log(p)
	var ls, lms [grid - 1]float64
	for i := 1; i < grid; i++ {
		l := top * float64(i) / grid
		ls[i-1] = l
		lms[i-1] = float64(cells) * (2*math.Log(1-p) - math.Log(1-p*math.Exp(l)) - math.Log(1-p*math.Exp(-l)))
	}
	bound := func(w float64) float64 {
		least := math.Inf(1)
		for i, l := range ls {
			least = min(least, -l*w+lms[i])
		}
		return min(1, 2*math.Exp(least))
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

// quantile is the least w with P(|X| <= w) >= 1-alpha for a symmetric pmf.
func quantile(pmf func(int64) float64, alpha float64) int64 {
	in := pmf(0)
	w := int64(0)
	for in < 1-alpha && w < 1<<30 {
		w++
		in += 2 * pmf(w)
	}
	return w
}

func gaussPMFf(s2 float64) func(int64) float64 {
	lim := int64(40*math.Sqrt(s2)) + 40
	z := 0.0
	for x := -lim; x <= lim; x++ {
		z += math.Exp(-float64(x*x) / (2 * s2))
	}
	return func(x int64) float64 { return math.Exp(-float64(x*x)/(2*s2)) / z }
}

// Delta is the delta at which a zCDP total is also stated as
// (epsilon, delta)-DP.
const Delta = 1e-6

// EpsilonAt is the epsilon of rho-zCDP at Delta: rho + 2 sqrt(rho ln(1/delta))
// (Bun and Steinke 2016, Proposition 1.3).
func EpsilonAt(rho *big.Rat) float64 {
	r, _ := rho.Float64()
	return r + 2*math.Sqrt(r*math.Log(1/Delta))
}

// Data names what an answer was counted from, as its guarantee says it:
// where a person is (Name) and what of theirs is there (Of).
type Data struct{ Name, Of string }

// Ledger is the data of an answer from the ledger alone.
var Ledger = Data{Name: "the ledger", Of: "every Access"}

// Guarantee says, in plain words, what this answer promises.
func (m Mechanism) Guarantee(person string, d Data) string {
	if m.Rho != nil {
		return fmt.Sprintf("%s-zCDP at the level of one %s (%s of that %s, added or removed, moves any figure's cell by at most one): "+
			"this answer alone is (%.3g, %g)-DP, so it changes the probability of any outcome by at most a factor e^%.3g, except with probability %g",
			m.Param(), person, d.Of, person, EpsilonAt(m.Rho), Delta, EpsilonAt(m.Rho), Delta)
	}
	e, _ := m.Epsilon.Float64()
	return fmt.Sprintf("%s-DP (pure) at the level of one %s: whether or not any one %s is in %s, with %s of theirs, "+
		"changes the probability of any answer by at most a factor e^%g = %.4g", m.Param(), person, person, d.Name, d.Of, e, math.Exp(e))
}

// ratString prints a rational as a short decimal when it is one, else a/b.
func ratString(r *big.Rat) string {
	for prec := 0; prec <= 12; prec++ {
		s := r.FloatString(prec)
		if back, ok := new(big.Rat).SetString(s); ok && back.Cmp(r) == 0 {
			return s
		}
	}
	return r.RatString()
}
