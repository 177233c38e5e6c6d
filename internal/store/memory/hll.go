package memory

import (
	"math"
	"math/bits"
)

// hllP is the sketch's precision: 2^14 registers, a relative standard error
// of 1.04/√16384 ≈ 0.81%, like Redis's PFCOUNT.
const (
	hllP = 14
	hllM = 1 << hllP
)

// hllAlpha is HyperLogLog's bias constant for m = 2^14.
var hllAlpha = 0.7213 / (1 + 1.079/float64(hllM))

// hllPow is 2^-r for every register value r (at most 64-hllP+1).
var hllPow = func() (t [66]float64) {
	for r := range t {
		t[r] = math.Ldexp(1, -r)
	}
	return t
}()

// hll is a dense HyperLogLog sketch that keeps the estimator's sum and zero
// count up to date on each insertion, so an estimate costs O(1) instead of a
// pass over 16,384 registers (axiomhq/hyperloglog's Estimate takes about
// 100 µs, too slow for a decision on every request). The estimator is
// LogLog-Beta (Qin et al., 2016) with the constants axiomhq/hyperloglog uses,
// and the register layout is the same, so the two agree exactly
// (TestHLLMatchesAxiomhq).
type hll struct {
	regs  [hllM]uint8
	sum   float64 // Σ 2^-reg
	zeros int     // registers still 0
	est   int
}

func newHLL() *hll {
	return &hll{sum: hllM, zeros: hllM}
}

// insert adds a uniformly distributed hash and reports whether the sketch
// changed (a subject it held already never changes it).
func (h *hll) insert(x uint64) bool {
	i := x >> (64 - hllP)
	r := uint8(bits.LeadingZeros64(x<<hllP|1<<(hllP-1))) + 1
	old := h.regs[i]
	if r <= old {
		return false
	}
	h.regs[i] = r
	h.sum += hllPow[r] - hllPow[old]
	if old == 0 {
		h.zeros--
	}
	ez := float64(h.zeros)
	h.est = int(hllAlpha*hllM*(hllM-ez)/(h.sum+beta14(ez)) + 0.5)
	return true
}

// beta14 is LogLog-Beta's correction for p = 14.
func beta14(ez float64) float64 {
	zl := math.Log(ez + 1)
	return -0.371009760230692*ez +
		zl*(0.00978811941207509+
			zl*(0.185796293324165+
				zl*(0.203015527328432+
					zl*(-0.116710521803686+
						zl*(0.0431106699492820+
							zl*(-0.00599583540511831+
								zl*0.000449704299509437))))))
}
