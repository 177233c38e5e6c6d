package reach

import (
	"fmt"
	"math"
	"time"

	"github.com/axiomhq/hyperloglog"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/ledger"
)

// approxPrecision is the sketches' precision: 2^14 registers, a relative
// standard error of 1.04/sqrt(2^14) = 0.81% past the sparse range (below
// about 12,000 people the sparse representation is close to exact).
const approxPrecision = 14

// ApproxResult is an approximate reach: HyperLogLog++ sketches of each
// author's viewers (axiomhq/hyperloglog), merged; impressions are exact.
type ApproxResult struct {
	Reach       int        `json:"reach"`
	Impressions uint64     `json:"impressions"`
	Exact       bool       `json:"exact"` // false
	ErrorBound  ErrorBound `json:"error_bound"`
	By          string     `json:"by"`
	Authors     int        `json:"authors"`
	From        *time.Time `json:"from"` // the window, as the exact answer's
	To          *time.Time `json:"to"`
	Sketch      string     `json:"sketch"`
}

// ErrorBound is the estimate's error: its relative standard error and the
// interval of about 95% (1.96 standard errors) around the estimate.
type ErrorBound struct {
	RelativeStandardError float64 `json:"relative_standard_error"`
	Confidence            float64 `json:"confidence"`
	Low                   int     `json:"low"`
	High                  int     `json:"high"`
}

// RunApprox answers q's reach approximately. Today the sketches are built
// at query time from the local ledger's author -> viewers index (one
// sketch per author, keyed by the identity's name, so it merges across
// partitions and sources); the ledger keeps no sketches, so --approx is
// not faster than the exact answer here. Dose, overlap and after are not
// answered approximately. The reader is opened with opts (WithWarnings:
// a damaged day rollup or author index is passed over for the hours and
// said; WithCache).
func RunApprox(dir string, q Query, opts ...ledger.ReaderOption) (*ApproxResult, error) {
	if q.Dose || q.Overlap != nil || !q.After.IsZero() {
		return nil, fmt.Errorf("reach: --approx answers reach and impressions only (not dose, overlap or after)")
	}
	by := q.By
	if by == 0 {
		by = identify.FacetAccount
	}
	r, err := ledger.OpenReader(dir, q.Window, opts...)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	views, impr, err := r.Viewers(q.Authors, by)
	if err != nil {
		return nil, err
	}
	all, err := hyperloglog.NewSketch(approxPrecision, true)
	if err != nil {
		return nil, err
	}
	res := &ApproxResult{By: by.String(), Authors: len(q.Authors),
		Sketch: fmt.Sprintf("HyperLogLog++ (axiomhq/hyperloglog), precision %d, one sketch per author, merged", approxPrecision)}
	if !q.Window.From.IsZero() {
		res.From = &q.Window.From
	}
	if !q.Window.To.IsZero() {
		res.To = &q.Window.To
	}
	for i, v := range views {
		sk, _ := hyperloglog.NewSketch(approxPrecision, true)
		it := v.Iterator()
		for it.HasNext() {
			sk.Insert([]byte(r.IdentityName(it.Next())))
		}
		if err := all.Merge(sk); err != nil {
			return nil, fmt.Errorf("reach: merge the sketch of author %s: %w", q.Authors[i], err)
		}
		res.Impressions += impr[i]
	}
	est := all.Estimate()
	res.Reach = int(est)
	se := 1.04 / math.Sqrt(float64(uint64(1)<<approxPrecision))
	res.ErrorBound = ErrorBound{RelativeStandardError: math.Round(se*1e4) / 1e4, Confidence: 0.95,
		Low: int(math.Floor(float64(est) * (1 - 1.96*se))), High: int(math.Ceil(float64(est) * (1 + 1.96*se)))}
	return res, nil
}
