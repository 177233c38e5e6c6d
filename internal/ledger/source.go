package ledger

import (
	"context"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/warden-gw/warden/internal/identify"
)

// Source answers the ledger's queries. The local directory (Dir) and
// ClickHouse (internal/ledger/clickhouse) implement it, and give the same
// answers on the same traffic (internal/ledger/clickhouse's conformance
// test runs both).
type Source interface {
	// WhoTook lists the identities, by facet by, served subject's record
	// in win; with class, only Accesses that served it unmasked.
	WhoTook(ctx context.Context, win Window, subject, class string, by identify.Facet) (*WhoTookResult, error)
	// TookBy is what one identity took in win.
	TookBy(ctx context.Context, win Window, by identify.Facet, value string) (*TookByResult, error)
	// Find returns the Access of a request id, nil when win holds none.
	Find(ctx context.Context, win Window, requestID string) (*Found, error)
	// Distinct counts the distinct subjects of class ("" any) served
	// unmasked to facet value value in win, by identities that also have
	// every facet value of also (a budget identified: own counts an
	// address's accounts apart: [ip, account]).
	Distinct(ctx context.Context, win Window, by identify.Facet, value, class string, also ...FacetValue) (int, error)
	// Requests counts, per route, the Accesses in win whose identity has
	// every facet value of want (none: every Access).
	Requests(ctx context.Context, win Window, want []FacetValue) (map[string]int, error)
	// Reach counts the people of a reach question, cell by cell.
	Reach(ctx context.Context, q ReachQuery) (*ReachCounts, error)
	// String says where it reads (a directory, ClickHouse at an address).
	String() string
}

// ReachQuery is what Reach counts: the people (by facet By) served content
// by Authors in Window; with Overlap, whether the other set reached them;
// with After, whether the authors reached them before the time, from it,
// or both.
type ReachQuery struct {
	Authors []string
	Overlap []string // nil: no second set
	By      identify.Facet
	Window  Window
	After   time.Time // zero: none
}

// ReachCell is how many people share one signature: K authors of the set
// reached them, InB whether the other set did, When (with After) 1 before
// it only, 2 from it only, 3 both, 0 when K is 0.
type ReachCell struct {
	K, InB, When int
	People       int64
}

// ReachCounts is a reach question's histogram: every person reached by
// either set sits in exactly one cell (empty cells are left out), and the
// impressions of the authors in the window and from After on.
type ReachCounts struct {
	Cells            []ReachCell
	Impressions      uint64
	AfterImpressions uint64
}

// Dir is the ledger directory dir as a Source; opts are given to every
// reader it opens (WithCache: a server asking many queries).
func Dir(dir string, opts ...ReaderOption) Source { return dirSource{dir, opts} }

type dirSource struct {
	dir  string
	opts []ReaderOption
}

func (d dirSource) String() string { return d.dir }

func (d dirSource) open(win Window) (*Reader, error) { return OpenReader(d.dir, win, d.opts...) }

func (d dirSource) WhoTook(_ context.Context, win Window, subject, class string, by identify.Facet) (*WhoTookResult, error) {
	r, err := d.open(win)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.WhoTook(subject, class, by)
}

func (d dirSource) TookBy(_ context.Context, win Window, by identify.Facet, value string) (*TookByResult, error) {
	r, err := d.open(win)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.TookBy(by, value)
}

func (d dirSource) Find(_ context.Context, win Window, id string) (*Found, error) {
	r, err := d.open(win)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Find(id)
}

func (d dirSource) Distinct(_ context.Context, win Window, by identify.Facet, value, class string, also ...FacetValue) (int, error) {
	r, err := d.open(win)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	return r.Distinct(by, value, class, also...)
}

// DistinctSplit is Reader.DistinctSplit over win: warden explain's
// shadow budget counts before its request and with it in one pass.
func (d dirSource) DistinctSplit(_ context.Context, win Window, cut time.Time, by identify.Facet, value, class string, also ...FacetValue) (before, all int, err error) {
	r, err := d.open(win)
	if err != nil {
		return 0, 0, err
	}
	defer r.Close()
	return r.DistinctSplit(by, value, class, cut, also...)
}

func (d dirSource) Requests(_ context.Context, win Window, want []FacetValue) (map[string]int, error) {
	r, err := d.open(win)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Requests(want)
}

func (d dirSource) Reach(_ context.Context, q ReachQuery) (*ReachCounts, error) {
	if !q.After.IsZero() && q.Window.To.IsZero() {
		// The after part is read by two more readers, opened after this
		// one: with the end open, on a live gateway they would count
		// Accesses newer than this reader saw. One instant ends all three.
		q.Window.To = time.Now()
	}
	r, err := d.open(q.Window)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	nA := len(q.Authors)
	views, impr, err := r.Viewers(append(append([]string{}, q.Authors...), q.Overlap...), q.By)
	if err != nil {
		return nil, err
	}
	out := &ReachCounts{}
	for _, n := range impr[:nA] {
		out.Impressions += n
	}
	a, b := Union(views[:nA]), Union(views[nA:])
	// k per person: counted only when some person was reached by two or
	// more authors' sets that overlap; else every person of a has k = 1.
	// k counts, per person, the authors that reached them: in an array
	// indexed by identity (4 bytes an integer up to the largest reached)
	// when that is at most 16 times the people reached, else in a map
	// (the map cost a fifth of a cold reach of 1,000 authors).
	var k []int32
	var km map[uint32]int32
	var sum uint64
	for _, v := range views[:nA] {
		sum += v.GetCardinality()
	}
	if n := a.GetCardinality(); sum != n {
		if uint64(a.Maximum()) < 16*n+1<<16 {
			k = make([]int32, a.Maximum()+1)
		} else {
			km = map[uint32]int32{}
		}
		var buf [256]uint32
		for _, v := range views[:nA] {
			it := v.ManyIterator()
			for n := it.NextMany(buf[:]); n > 0; n = it.NextMany(buf[:]) {
				for _, id := range buf[:n] {
					if k != nil {
						k[id]++
					} else {
						km[id]++
					}
				}
			}
		}
	}
	var before, after map[string]bool
	if !q.After.IsZero() {
		var ai uint64
		if before, _, err = viewerNames(d, Window{From: q.Window.From, To: q.After.Add(-time.Microsecond)}, q.Authors, q.By); err != nil {
			return nil, err
		}
		// From the later of After and the window's start: an After before
		// the window counts what the window holds, never impressions
		// served before it (ClickHouse's Reach counts within the window).
		from := q.After
		if q.Window.From.After(from) {
			from = q.Window.From
		}
		if after, ai, err = viewerNames(d, Window{From: from, To: q.Window.To}, q.Authors, q.By); err != nil {
			return nil, err
		}
		out.AfterImpressions = ai
		// IdentityName reads the last Viewers' facet.
		if _, _, err := r.Viewers(q.Authors, q.By); err != nil {
			return nil, err
		}
	}
	type sig struct{ k, inB, when int }
	hist := map[sig]int64{}
	it := a.Iterator()
	for it.HasNext() {
		id := it.Next()
		s := sig{k: 1}
		switch {
		case k != nil:
			s.k = int(k[id])
		case km != nil:
			s.k = int(km[id])
		}
		if b.Contains(id) {
			s.inB = 1
		}
		if before != nil {
			name := r.IdentityName(id)
			switch {
			case before[name] && after[name]:
				s.when = 3
			case after[name]:
				s.when = 2
			default:
				s.when = 1
			}
		}
		hist[s]++
	}
	if n := roaring.AndNot(b, a).GetCardinality(); n > 0 {
		hist[sig{inB: 1}] = int64(n)
	}
	for s, n := range hist {
		out.Cells = append(out.Cells, ReachCell{K: s.k, InB: s.inB, When: s.when, People: n})
	}
	SortCells(out.Cells)
	return out, nil
}

// SortCells orders cells by K, InB, When, so that equal histograms compare
// equal.
func SortCells(c []ReachCell) {
	for i := 1; i < len(c); i++ {
		for j := i; j > 0 && cellLess(c[j], c[j-1]); j-- {
			c[j], c[j-1] = c[j-1], c[j]
		}
	}
}

func cellLess(a, b ReachCell) bool {
	if a.K != b.K {
		return a.K < b.K
	}
	if a.InB != b.InB {
		return a.InB < b.InB
	}
	return a.When < b.When
}

// viewerNames is the names of the people authors reached in win, and the
// impressions.
func viewerNames(d dirSource, win Window, authors []string, by identify.Facet) (map[string]bool, uint64, error) {
	r, err := d.open(win)
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	views, impr, err := r.Viewers(authors, by)
	if err != nil {
		return nil, 0, err
	}
	out := map[string]bool{}
	var n uint64
	for i, b := range views {
		n += impr[i]
		it := b.Iterator()
		for it.HasNext() {
			out[r.IdentityName(it.Next())] = true
		}
	}
	return out, n, nil
}
