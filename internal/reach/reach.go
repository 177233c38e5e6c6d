package reach

import (
	"slices"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

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
	Dose        []Dose     `json:"dose,omitempty"`
	Overlap     *Overlap   `json:"overlap,omitempty"`
	After       *After     `json:"after,omitempty"`
}

// Dose is how many people were reached by at least K of the authors.
type Dose struct {
	K      int `json:"k"`
	People int `json:"people"`
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
	by := q.By
	if by == 0 {
		by = identify.FacetAccount
	}
	r, err := ledger.OpenReader(dir, q.Window)
	if err != nil {
		return nil, err
	}
	res := &Result{Exact: true, By: by.String(), Authors: len(q.Authors)}
	if !q.Window.From.IsZero() {
		res.From = &q.Window.From
	}
	if !q.Window.To.IsZero() {
		res.To = &q.Window.To
	}
	// Overlap needs both sets in one reader's integers.
	all := q.Authors
	if q.Overlap != nil {
		all = append(slices.Clone(q.Authors), q.Overlap...)
	}
	views, impr := r.Viewers(all, by)
	a, n := union(views[:len(q.Authors)], impr[:len(q.Authors)])
	res.Reach, res.Impressions = int(a.GetCardinality()), n
	if q.Dose {
		res.Dose = dose(views[:len(q.Authors)])
	}
	if q.Overlap != nil {
		b, _ := union(views[len(q.Authors):], nil)
		res.Overlap = &Overlap{A: res.Reach, B: int(b.GetCardinality()),
			Both: int(roaring.And(a, b).GetCardinality()), Either: int(roaring.Or(a, b).GetCardinality())}
	}
	if !q.After.IsZero() {
		// One reader over the whole window keeps identities comparable;
		// the two halves are its sub-windows.
		before, err := ledger.OpenReader(dir, ledger.Window{From: q.Window.From, To: q.After.Add(-time.Microsecond)})
		if err != nil {
			return nil, err
		}
		after, err := ledger.OpenReader(dir, ledger.Window{From: q.After, To: q.Window.To})
		if err != nil {
			return nil, err
		}
		bv, _ := before.Viewers(q.Authors, by)
		av, ai := after.Viewers(q.Authors, by)
		res.After = &After{Time: q.After}
		res.After.Reach, res.After.New, res.After.Impressions = afterCounts(before, bv, after, av, ai)
	}
	return res, nil
}

func union(bs []*roaring.Bitmap, impr []uint64) (*roaring.Bitmap, uint64) {
	var n uint64
	for _, v := range impr {
		n += v
	}
	if len(bs) == 0 {
		return roaring.New(), n
	}
	return roaring.FastOr(bs...), n
}

// dose counts, for every k, the people reached by at least k authors.
func dose(bs []*roaring.Bitmap) []Dose {
	count := map[uint32]int{}
	for _, b := range bs {
		it := b.Iterator()
		for it.HasNext() {
			count[it.Next()]++
		}
	}
	maxK := 0
	hist := map[int]int{}
	for _, k := range count {
		hist[k]++
		maxK = max(maxK, k)
	}
	out := make([]Dose, 0, maxK)
	at := 0
	for k := maxK; k >= 1; k-- {
		at += hist[k]
		out = append(out, Dose{K: k, People: at})
	}
	slices.Reverse(out)
	return out
}

// afterCounts compares two readers' viewers by the identities' names
// (their integers differ between readers).
func afterCounts(before *ledger.Reader, bv []*roaring.Bitmap, after *ledger.Reader, av []*roaring.Bitmap, ai []uint64) (int, int, uint64) {
	b, _ := union(bv, nil)
	a, n := union(av, ai)
	seen := map[string]bool{}
	it := b.Iterator()
	for it.HasNext() {
		seen[before.IdentityName(it.Next())] = true
	}
	fresh := 0
	it = a.Iterator()
	for it.HasNext() {
		if !seen[after.IdentityName(it.Next())] {
			fresh++
		}
	}
	return int(a.GetCardinality()), fresh, n
}
