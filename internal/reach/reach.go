package reach

import (
	"context"
	"time"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/ledger"
)

// Query is one reach question.
type Query struct {
	Authors []string
	By      identify.Facet // who counts as a person: account (default) or ip
	Window  ledger.Window
	Dose    bool
	Overlap []string  // a second set of authors
	After   time.Time // zero: none
}

// Result is the answer; its JSON is the admin API's and --json's.
type Result struct {
	Reach       int        `json:"reach"`       // distinct people served content by any of the authors
	Impressions uint64     `json:"impressions"` // pieces of their content served
	Exact       bool       `json:"exact"`
	By          string     `json:"by"`
	Authors     int        `json:"authors"`
	From        *time.Time `json:"from"`
	To          *time.Time `json:"to"`
	Dose        []Dose     `json:"dose,omitzero"` // k from 1 to the number of authors, when asked
	Overlap     *Overlap   `json:"overlap,omitempty"`
	After       *After     `json:"after,omitempty"`
}

// Dose is how many people were reached by at least K of the authors.
type Dose struct {
	K      int `json:"k"`
	People int `json:"people"`
}

// DoseOf is the dose of a set of n: for every k from 1 to n (as a DP
// answer's, whose rows cannot stop where the people do), the people
// atLeast(k) reached by at least k of the set. Past the largest k anyone
// was reached by, the rows say 0 rather than end: "nobody was reached by
// all 5" is an answer, not a missing row.
func DoseOf(n int, atLeast func(k int) int) []Dose {
	ds := make([]Dose, 0, n)
	for k := 1; k <= n; k++ {
		p := 0
		if k == 1 || ds[k-2].People > 0 {
			p = atLeast(k)
		}
		ds = append(ds, Dose{K: k, People: p})
	}
	return ds
}

// Overlap compares the reach of the authors (A) with another set (B).
type Overlap struct {
	A      int `json:"a"`
	B      int `json:"b"`
	Both   int `json:"both"`
	Either int `json:"either"`
}

// After is what was served from a time on: people reached then, and how
// many of them had not been reached before it.
type After struct {
	Time        time.Time `json:"time"`
	Reach       int       `json:"reach"`
	New         int       `json:"new"`
	Impressions uint64    `json:"impressions"`
}

// Run answers q over the ledger in dir.
func Run(dir string, q Query) (*Result, error) {
	return RunOn(context.Background(), ledger.Dir(dir), q)
}

// counts asks src for q's histogram, one cell per person.
func counts(ctx context.Context, src ledger.Source, q Query) (*ledger.ReachCounts, identify.Facet, error) {
	by := q.By
	if by == 0 {
		by = identify.FacetAccount
	}
	rc, err := src.Reach(ctx, ledger.ReachQuery{Authors: q.Authors, Overlap: q.Overlap, By: by, Window: q.Window, After: q.After})
	return rc, by, err
}

// RunOn answers q from src: every figure is a sum of the histogram's
// cells, which hold the people exactly.
func RunOn(ctx context.Context, src ledger.Source, q Query) (*Result, error) {
	rc, by, err := counts(ctx, src, q)
	if err != nil {
		return nil, err
	}
	res := &Result{Exact: true, By: by.String(), Authors: len(q.Authors), Impressions: rc.Impressions}
	if !q.Window.From.IsZero() {
		res.From = &q.Window.From
	}
	if !q.Window.To.IsZero() {
		res.To = &q.Window.To
	}
	sum := func(in func(c ledger.ReachCell) bool) int {
		n := int64(0)
		for _, c := range rc.Cells {
			if in(c) {
				n += c.People
			}
		}
		return int(n)
	}
	res.Reach = sum(func(c ledger.ReachCell) bool { return c.K >= 1 })
	if q.Dose {
		res.Dose = DoseOf(len(q.Authors), func(k int) int {
			return sum(func(c ledger.ReachCell) bool { return c.K >= k })
		})
	}
	if q.Overlap != nil {
		res.Overlap = &Overlap{A: res.Reach, B: sum(func(c ledger.ReachCell) bool { return c.InB == 1 }),
			Both:   sum(func(c ledger.ReachCell) bool { return c.K >= 1 && c.InB == 1 }),
			Either: sum(func(ledger.ReachCell) bool { return true })}
	}
	if !q.After.IsZero() {
		res.After = &After{Time: q.After, Impressions: rc.AfterImpressions,
			Reach: sum(func(c ledger.ReachCell) bool { return c.When >= 2 }),
			New:   sum(func(c ledger.ReachCell) bool { return c.When == 2 })}
	}
	return res, nil
}
