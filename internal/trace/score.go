package trace

import "math"

// The symmetric Tardos score (Skoric, Katzenbeisser, Celik 2008): a slot
// of bias p adds sqrt((1-p)/p) when the identity was shown the canary and
// the copy has it, sqrt(p/(1-p)) when neither, and the negatives of the
// other when they disagree. For an identity that did not take the copy,
// whether it was shown a canary is a keyed coin of bias p independent of
// the copy, so each term has mean 0 and variance 1.

func (t term) u() float64 {
	a, b := math.Sqrt((1-t.p)/t.p), math.Sqrt(t.p/(1-t.p))
	switch {
	case t.y && t.x:
		return a
	case t.y:
		return -b
	case t.x:
		return -a
	}
	return b
}

func score(ts []term) float64 {
	s := 0.0
	for _, t := range ts {
		s += t.u()
	}
	return s
}

// logMGF is log E[exp(lambda S)] for an innocent: each x a coin of bias p.
func logMGF(ts []term, lambda float64) float64 {
	s := 0.0
	for _, t := range ts {
		on, off := t, t
		on.x, off.x = true, false
		s += math.Log(t.p*math.Exp(lambda*on.u()) + (1-t.p)*math.Exp(lambda*off.u()))
	}
	return s
}

// tailBound is the Chernoff bound on P(S >= s) for an innocent with these
// slots: min over lambda >= 0 of exp(logMGF(lambda) - lambda s). The score
// is a martingale in slot order (a page's plan ends at its cap, which
// depends only on slots before), so the bound holds.
func tailBound(ts []term, s float64) float64 {
	f := func(l float64) float64 { return logMGF(ts, l) - l*s }
	lo, hi := 0.0, 8.0
	for range 80 { // convex: ternary search
		a, b := lo+(hi-lo)/3, hi-(hi-lo)/3
		if f(a) < f(b) {
			hi = b
		} else {
			lo = a
		}
	}
	return math.Min(1, math.Exp(f((lo+hi)/2)))
}

// threshold is the least score whose bound is at most eps.
func threshold(ts []term, eps float64) float64 {
	lo, hi := 0.0, 0.0
	for _, t := range ts {
		hi += math.Max(math.Sqrt((1-t.p)/t.p), math.Sqrt(t.p/(1-t.p)))
	}
	if tailBound(ts, hi) > eps {
		return math.Inf(1)
	}
	for range 60 {
		m := (lo + hi) / 2
		if tailBound(ts, m) <= eps {
			hi = m
		} else {
			lo = m
		}
	}
	return hi
}

// colluders is how many identities comparing the same lists a code of m
// slots withstands at this error: the symmetric code's length is about
// (pi^2/2) c^2 ln(n/eps).
func colluders(m int, logN float64) int {
	return int(math.Sqrt(2 * float64(m) / (math.Pi * math.Pi * logN)))
}
