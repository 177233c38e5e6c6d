package privacy

import (
	"errors"
	"math/big"
	"math/bits"
)

// Source is a stream of uniform 64-bit words: math/rand/v2's ChaCha8,
// seeded by a keyed hash, in every answer.
type Source interface{ Uint64() uint64 }

// maxTries bounds every rejection loop. Each loop ends with probability at
// least about 1/3 per round, so reaching the bound has probability below
// 2^-500; it is there so that no loop is unbounded.
const maxTries = 1 << 12

var errTries = errors.New("privacy: sampler made no draw within its bound of tries")

var (
	ratOne  = big.NewRat(1, 1)
	ratHalf = big.NewRat(1, 2)
)

// uniform draws an integer uniformly from [0, n), n > 0, by rejection
// on n's bit length.
func uniform(src Source, n *big.Int) (*big.Int, error) {
	if n.IsUint64() {
		return new(big.Int).SetUint64(uniform64(src, n.Uint64())), nil
	}
	k := n.BitLen()
	words := make([]big.Word, (k+bits.UintSize-1)/bits.UintSize)
	x := new(big.Int)
	for range maxTries {
		for i := range words {
			words[i] = big.Word(src.Uint64())
		}
		if r := k % bits.UintSize; r != 0 {
			words[len(words)-1] &= 1<<r - 1
		}
		x.SetBits(words)
		if x.Cmp(n) < 0 {
			return new(big.Int).Set(x), nil
		}
	}
	return nil, errTries
}

// uniform64 draws uniformly from [0, n), n > 0 (Lemire's method, exact).
func uniform64(src Source, n uint64) uint64 {
	hi, lo := bits.Mul64(src.Uint64(), n)
	if lo < n {
		thresh := -n % n
		// Each round rejects with probability below n/2^64.
		for i := 0; lo < thresh && i < maxTries; i++ {
			hi, lo = bits.Mul64(src.Uint64(), n)
		}
	}
	return hi
}

// bernoulli is true with probability p, 0 <= p <= 1.
func bernoulli(src Source, p *big.Rat) (bool, error) {
	u, err := uniform(src, p.Denom())
	if err != nil {
		return false, err
	}
	return u.Cmp(p.Num()) < 0, nil
}

// bernoulliExp is true with probability exp(-gamma), gamma >= 0
// (Canonne, Kamath and Steinke 2020, Algorithm 1).
func bernoulliExp(src Source, gamma *big.Rat) (bool, error) {
	if gamma.Sign() < 0 {
		return false, errors.New("privacy: bernoulliExp of a negative gamma")
	}
	if gamma.Cmp(ratOne) > 0 {
		// exp(-gamma) = exp(-1)^floor(gamma) * exp(-(gamma-floor(gamma))).
		whole := new(big.Int).Quo(gamma.Num(), gamma.Denom())
		if !whole.IsInt64() || whole.Int64() > 1<<20 {
			return false, nil // exp(-2^20) is 0 in any run
		}
		for range whole.Int64() {
			ok, err := bernoulliExp01(src, ratOne)
			if err != nil || !ok {
				return false, err
			}
		}
		frac := new(big.Rat).Sub(gamma, new(big.Rat).SetInt(whole))
		return bernoulliExp01(src, frac)
	}
	return bernoulliExp01(src, gamma)
}

// bernoulliExp01 is bernoulliExp for 0 <= gamma <= 1: K counts the
// successes of Bernoulli(gamma/K) draws, and exp(-gamma) is the chance K
// ends odd.
func bernoulliExp01(src Source, gamma *big.Rat) (bool, error) {
	k := int64(1)
	p := new(big.Rat)
	for range maxTries {
		p.Quo(gamma, big.NewRat(k, 1))
		a, err := bernoulli(src, p)
		if err != nil {
			return false, err
		}
		if !a {
			return k%2 == 1, nil
		}
		k++
	}
	return false, errTries
}

// DiscreteLaplace draws x with probability proportional to
// exp(-|x|/scale), scale > 0 (Algorithm 2: scale = t/s).
func DiscreteLaplace(src Source, scale *big.Rat) (*big.Int, error) {
	if scale.Sign() <= 0 {
		return nil, errors.New("privacy: discrete Laplace needs a positive scale")
	}
	t, s := scale.Num(), scale.Denom()
	uOverT := new(big.Rat)
	for range maxTries {
		u, err := uniform(src, t)
		if err != nil {
			return nil, err
		}
		d, err := bernoulliExp(src, uOverT.SetFrac(u, t))
		if err != nil {
			return nil, err
		}
		if !d {
			continue
		}
		// V is geometric: how many Bernoulli(exp(-1)) succeed in a row.
		v := int64(0)
		for range maxTries {
			a, err := bernoulliExp01(src, ratOne)
			if err != nil {
				return nil, err
			}
			if !a {
				break
			}
			v++
		}
		x := new(big.Int).Mul(t, big.NewInt(v))
		x.Add(x, u)
		y := x.Quo(x, s)
		b, err := bernoulli(src, ratHalf)
		if err != nil {
			return nil, err
		}
		if b && y.Sign() == 0 {
			continue
		}
		if b {
			y.Neg(y)
		}
		return y, nil
	}
	return nil, errTries
}

// DiscreteGaussian draws x with probability proportional to
// exp(-x^2/(2 sigma2)), sigma2 > 0 (Algorithm 3: discrete Laplace
// proposals of scale floor(sigma)+1, accepted with probability
// exp(-(|y| - sigma2/t)^2 / (2 sigma2))).
func DiscreteGaussian(src Source, sigma2 *big.Rat) (*big.Int, error) {
	if sigma2.Sign() <= 0 {
		return nil, errors.New("privacy: discrete Gaussian needs a positive variance")
	}
	// floor(sigma) = isqrt(floor(sigma2)), in integers.
	fl := new(big.Int).Quo(sigma2.Num(), sigma2.Denom())
	t := new(big.Int).Sqrt(fl)
	t.Add(t, big.NewInt(1))
	scale := new(big.Rat).SetInt(t)
	shift := new(big.Rat).Quo(sigma2, scale)
	twoS2 := new(big.Rat).Mul(sigma2, big.NewRat(2, 1))
	g := new(big.Rat)
	for range maxTries {
		y, err := DiscreteLaplace(src, scale)
		if err != nil {
			return nil, err
		}
		g.SetInt(new(big.Int).Abs(y))
		g.Sub(g, shift)
		g.Mul(g, g)
		g.Quo(g, twoS2)
		ok, err := bernoulliExp(src, g)
		if err != nil {
			return nil, err
		}
		if ok {
			return y, nil
		}
	}
	return nil, errTries
}
