package reach

import (
	"context"
	"encoding/json"
	"time"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/privacy"
)

// Private asks for a differentially private answer (privacy.Request).
type Private = privacy.Request

// PrivateResult is a private answer: every figure noisy, with its
// interval; no impressions (one person's impressions are unbounded, so
// they have no finite sensitivity).
type PrivateResult struct {
	Reach    int64            `json:"reach"`
	Interval privacy.Interval `json:"interval"`
	Exact    bool             `json:"exact"`
	By       string           `json:"by"`
	Authors  int              `json:"authors"`
	From     *time.Time       `json:"from"`
	To       *time.Time       `json:"to"`
	Dose     []PrivateDose    `json:"dose,omitempty"`
	Overlap  *PrivateOverlap  `json:"overlap,omitempty"`
	After    *PrivateAfter    `json:"after,omitempty"`
	Privacy  privacy.Note     `json:"privacy"`
	Budget   privacy.Account  `json:"budget"`
	// RemainingBudget repeats Budget.Remaining (zCDP rho) at the top.
	RemainingBudget string `json:"remaining_budget"`
}

// PrivateDose is the noisy number of people reached by at least K authors.
type PrivateDose struct {
	K        int              `json:"k"`
	People   int64            `json:"people"`
	Interval privacy.Interval `json:"interval"`
}

// PrivateOverlap is Overlap, noisy, each figure with its interval.
type PrivateOverlap struct {
	A, B, Both, Either int64
	Intervals          map[string]privacy.Interval
}

// MarshalJSON keeps Overlap's field names.
func (o PrivateOverlap) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]any{"a": o.A, "b": o.B, "both": o.Both, "either": o.Either, "intervals": o.Intervals})
}

// UnmarshalJSON reads what MarshalJSON wrote (a repeat's stored answer).
func (o *PrivateOverlap) UnmarshalJSON(b []byte) error {
	var v struct {
		A, B, Both, Either int64
		Intervals          map[string]privacy.Interval
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*o = PrivateOverlap(v)
	return nil
}

// PrivateAfter is After, noisy.
type PrivateAfter struct {
	Time          time.Time        `json:"time"`
	Reach         int64            `json:"reach"`
	ReachInterval privacy.Interval `json:"reach_interval"`
	New           int64            `json:"new"`
	NewInterval   privacy.Interval `json:"new_interval"`
}

// cells lays out a private answer's histogram: a person's cell is
// (k, inB, when), where k is how many of the authors reached them (with
// --dose 0..K, else 0 or 1 for "at least one"), inB whether the other set
// reached them (--overlap), and when whether the authors reached them
// before the time only (1), from it only (2) or both (3) (--after; 0 when
// k is 0). The layout depends on the question alone, never on the data,
// so a cell that is empty is noised like any other.
type cells struct {
	kMax, nB, nWhen int
	after           bool
}

func newCells(q Query) cells {
	c := cells{kMax: 1, nB: 1, nWhen: 1}
	if q.Dose {
		c.kMax = len(q.Authors)
	}
	if q.Overlap != nil {
		c.nB = 2
	}
	if !q.After.IsZero() {
		c.nWhen, c.after = 4, true
	}
	return c
}

func (c cells) index(k, inB, when int) int { return (k*c.nB+inB)*c.nWhen + when }
func (c cells) size() int                  { return (c.kMax + 1) * c.nB * c.nWhen }
func (c cells) of(i int) (k, inB, when int) {
	return i / (c.nB * c.nWhen), (i / c.nWhen) % c.nB, i % c.nWhen
}

// valid says whether a cell can hold anyone: not the empty signature, and
// when is set exactly when k is.
func (c cells) valid(i int) bool {
	k, inB, when := c.of(i)
	if k == 0 && inB == 0 {
		return false
	}
	if c.after {
		return (k == 0) == (when == 0)
	}
	return true
}

// RunPrivate answers q over the ledger in dir with differential privacy
// (see Private).
func RunPrivate(dir string, q Query, p Private) (*PrivateResult, error) {
	return RunPrivateOn(context.Background(), ledger.Dir(dir), q, p)
}

// RunPrivateOn answers q from src with differential privacy.
func RunPrivateOn(ctx context.Context, src ledger.Source, q Query, p Private) (*PrivateResult, error) {
	by := q.By
	if by == 0 {
		by = identify.FacetAccount
	}
	// A repeat never reads the ledger: the answer given before is returned.
	res, acct, err := privacy.Answer(ctx, p, func(noise privacy.Source) (*PrivateResult, error) {
		exact, layout, err := privateCells(ctx, src, q)
		if err != nil {
			return nil, err
		}
		h, err := p.Mechanism.Release(noise, exact)
		if err != nil {
			return nil, err
		}
		return privateFigures(q, by, layout, h), nil
	})
	if err != nil {
		return nil, err
	}
	res.Budget, res.RemainingBudget = acct, acct.Remaining
	return res, nil
}

// privateCells counts the people in each cell, exactly: the source's
// histogram, with k capped at the layout's (1 without --dose).
func privateCells(ctx context.Context, src ledger.Source, q Query) ([]int64, cells, error) {
	c := newCells(q)
	rc, _, err := counts(ctx, src, q)
	if err != nil {
		return nil, c, err
	}
	exact := make([]int64, c.size())
	for _, cell := range rc.Cells {
		exact[c.index(min(cell.K, c.kMax), cell.InB, cell.When)] += cell.People
	}
	for i := range exact {
		if !c.valid(i) {
			exact[i] = 0 // never populated; kept out of every figure
		}
	}
	return exact, c, nil
}

// privateFigures sums the noisy cells into the answer's figures.
func privateFigures(q Query, by identify.Facet, c cells, h *privacy.Histogram) *PrivateResult {
	sel := func(f func(k, inB, when int) bool) func(int) bool {
		return func(i int) bool {
			if !c.valid(i) {
				return false
			}
			k, b, w := c.of(i)
			return f(k, b, w)
		}
	}
	res := &PrivateResult{By: by.String(), Authors: len(q.Authors), Privacy: h.Note(by.String(), privacy.Ledger)}
	res.Privacy.Cells = 0
	for i := range c.size() {
		if c.valid(i) {
			res.Privacy.Cells++
		}
	}
	if !q.Window.From.IsZero() {
		res.From = &q.Window.From
	}
	if !q.Window.To.IsZero() {
		res.To = &q.Window.To
	}
	res.Reach, res.Interval = h.Figure(sel(func(k, _, _ int) bool { return k >= 1 }))
	res.Dose, res.Overlap = PrivateDoseOverlap(h, func(i int) (k, inB int, ok bool) {
		k, inB, _ = c.of(i)
		return k, inB, c.valid(i)
	}, c.kMax, q.Dose, q.Overlap != nil)
	if c.after {
		a := &PrivateAfter{Time: q.After}
		a.Reach, a.ReachInterval = h.Figure(sel(func(_, _, w int) bool { return w >= 2 }))
		a.New, a.NewInterval = h.Figure(sel(func(_, _, w int) bool { return w == 2 }))
		res.After = a
	}
	return res
}

// PrivateDoseOverlap are the figures reach's and audience's private
// answers share, from the noisy histogram h whose cell i holds the people
// reached by k of the set and, inB 1, by the other set too (cell says
// which; ok false for a cell no one can sit in): with dose, the people
// reached by at least k, for k from 1 to kMax; with overlap, the overlap.
func PrivateDoseOverlap(h *privacy.Histogram, cell func(i int) (k, inB int, ok bool), kMax int, dose, overlap bool) ([]PrivateDose, *PrivateOverlap) {
	sel := func(f func(k, inB int) bool) func(int) bool {
		return func(i int) bool {
			k, inB, ok := cell(i)
			return ok && f(k, inB)
		}
	}
	var ds []PrivateDose
	if dose {
		vals, ivs := h.AtLeast(func(i int) (int, bool) {
			k, _, ok := cell(i)
			return k, ok
		}, kMax)
		for kk := 1; kk <= kMax; kk++ {
			ds = append(ds, PrivateDose{K: kk, People: vals[kk-1], Interval: ivs[kk-1]})
		}
	}
	if !overlap {
		return ds, nil
	}
	o := &PrivateOverlap{Intervals: map[string]privacy.Interval{}}
	for _, f := range []struct {
		name string
		n    *int64
		in   func(k, inB int) bool
	}{
		{"a", &o.A, func(k, _ int) bool { return k >= 1 }},
		{"b", &o.B, func(_, inB int) bool { return inB == 1 }},
		{"both", &o.Both, func(k, inB int) bool { return k >= 1 && inB == 1 }},
		{"either", &o.Either, func(k, inB int) bool { return k >= 1 || inB == 1 }},
	} {
		*f.n, o.Intervals[f.name] = h.Figure(sel(f.in))
	}
	return ds, o
}
