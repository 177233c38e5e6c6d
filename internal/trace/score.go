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

// lambdaMax bounds the Chernoff parameter searched.
const lambdaMax = 8.0

// slotU is a term as an innocent's score sees it: the chance p it was
// shown the canary, and the term's value if it was (u1) or not (u0).
type slotU struct{ p, u1, u0 float64 }

func prepare(ts []term) []slotU {
	out := make([]slotU, len(ts))
	for i, t := range ts {
		on, off := t, t
		on.x, off.x = true, false
		out[i] = slotU{t.p, on.u(), off.u()}
	}
	return out
}

// cumulant is K(lambda) = log E[exp(lambda S)] for an innocent (each x a
// coin of bias p) and its first two derivatives, in one pass.
func cumulant(us []slotU, lambda float64) (k, k1, k2 float64) {
	for _, u := range us {
		e1, e0 := u.p*math.Exp(lambda*u.u1), (1-u.p)*math.Exp(lambda*u.u0)
		m := e1 + e0
		d1 := (e1*u.u1 + e0*u.u0) / m
		k += math.Log(m)
		k1 += d1
		k2 += (e1*u.u1*u.u1+e0*u.u0*u.u0)/m - d1*d1
	}
	return k, k1, k2
}

// root finds where an increasing function f of lambda crosses 0 in
// [0, lambdaMax] (lambdaMax when it stays below): Newton steps, kept
// inside the bracket by bisection. f also returns its derivative.
func root(f func(l float64) (v, d float64)) float64 {
	lo, hi := 0.0, lambdaMax
	if v, _ := f(hi); v <= 0 {
		return hi
	}
	l := 1.0
	for range 100 {
		v, d := f(l)
		if v > 0 {
			hi = l
		} else {
			lo = l
		}
		if hi-lo < 1e-9 || math.Abs(v) < 1e-12 {
			break
		}
		next := l - v/d
		if d <= 0 || !(next > lo && next < hi) {
			next = (lo + hi) / 2
		}
		l = next
	}
	return l
}

// tailBound is the Chernoff bound on P(S >= s) for an innocent with these
// slots: min over lambda in [0, lambdaMax] of exp(K(lambda) - lambda s),
// where K'(lambda) = s (K is convex). The score is a martingale in slot
// order (a page's plan ends at its cap, which depends only on slots
// before), so the bound holds.
func tailBound(us []slotU, s float64) float64 {
	if _, k1, _ := cumulant(us, 0); s <= k1 {
		return 1
	}
	l := root(func(l float64) (float64, float64) {
		_, k1, k2 := cumulant(us, l)
		return k1 - s, k2
	})
	k, _, _ := cumulant(us, l)
	return math.Min(1, math.Exp(k-l*s))
}

// threshold is the least score whose bound is at most eps: min over lambda
// of (K(lambda) - ln eps)/lambda, found where its derivative's numerator
// lambda K' - K + ln eps (increasing: its derivative is lambda K2, K2 >= 0) is 0;
// there the threshold is K'. +Inf when no score the slots can make
// reaches it.
func threshold(us []slotU, eps float64) float64 {
	le := math.Log(eps)
	l := root(func(l float64) (float64, float64) {
		k, k1, k2 := cumulant(us, l)
		return l*k1 - k + le, l * k2
	})
	k, k1, _ := cumulant(us, l)
	t := k1
	if l == lambdaMax {
		t = (k - le) / l
	}
	most := 0.0
	for _, u := range us {
		most += math.Max(u.u1, u.u0)
	}
	if t > most {
		return math.Inf(1)
	}
	return t
}

// colluders is how many identities comparing the same lists a code of m
// slots withstands at this error: the symmetric code's length is about
// (pi^2/2) c^2 ln(n/eps).
func colluders(m int, logN float64) int {
	return int(math.Sqrt(2 * float64(m) / (math.Pi * math.Pi * logN)))
}
