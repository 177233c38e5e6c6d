package ledger

import (
	"errors"
	"fmt"
	"math/bits"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/refusal"
)

// WhoTookRow is one identity that was served a subject.
type WhoTookRow struct {
	Value   string    `json:"value"`   // the facet's value; "" for Accesses without it
	Classes []string  `json:"classes"` // classes served unmasked
	Count   int       `json:"count"`   // Accesses that served the subject
	First   time.Time `json:"first"`
	Last    time.Time `json:"last"`
}

// WhoTookResult answers who-took.
type WhoTookResult struct {
	Subject string       `json:"subject"`
	By      string       `json:"by"`
	Class   string       `json:"class,omitempty"`
	Rows    []WhoTookRow `json:"rows"`
	// ClassUnseen: no Access of the window served or masked a class named
	// Class (a misspelling, or a route's or rule's name), so no row
	// could have it; a caller without the route map to judge the name
	// can say so rather than "nobody took it" (a misspelt --class). Not
	// in the JSON.
	ClassUnseen bool `json:"-"`
}

// WhoTook lists the identities, by facet by, that were served subject's
// record; with class, only Accesses that served that class unmasked.
// Partitions the window covers answer from their who-took table; the
// others are scanned. A partition whose table or Accesses do not decode
// is an error naming its file, never an answer without it.
func (r *Reader) WhoTook(subject, class string, by identify.Facet) (*WhoTookResult, error) {
	defer runtime.KeepAlive(r)
	f := int(by) - 1
	res := &WhoTookResult{Subject: subject, By: by.String(), Class: class, Rows: []WhoTookRow{}}
	var cid uint32
	if class != "" {
		var seen bool
		if cid, seen = r.d.id(nsName, class); !seen {
			res.ClassUnseen = true
			return res, nil
		}
	}
	sid, ok := r.d.id(nsID, subject)
	if !ok {
		return res, nil
	}
	// Whether some partition's Accesses served or masked the class: a
	// name the ledger holds may be a route's or a rule's.
	classSeen := class == ""
	type acc struct {
		count       int
		first, last int64
		classes     map[uint32]bool
	}
	rows := map[uint32]*acc{} // ident+1
	add := func(ident uint32, n int, first, last int64, classes func(yield func(uint32))) {
		a := rows[ident]
		if a == nil {
			a = &acc{first: first, last: last, classes: map[uint32]bool{}}
			rows[ident] = a
		}
		a.count += n
		a.first, a.last = min(a.first, first), max(a.last, last)
		classes(func(c uint32) { a.classes[c] = true })
	}
	if err := r.load(); err != nil {
		return nil, err
	}
	for _, p := range r.parts {
		rws, classes, ok, err := r.indexRows(p, sid, f)
		if err != nil {
			return nil, err
		}
		if ok {
			bit := -1
			if class != "" {
				i, ok := slices.BinarySearch(classes, cid)
				if !ok {
					continue
				}
				bit, classSeen = i, true
			}
			for _, rw := range rws {
				if bit >= 0 && rw.set&(1<<bit) == 0 {
					continue
				}
				add(rw.ident, rw.count, rw.first, rw.last, func(yield func(uint32)) {
					for s := rw.set; s != 0; s &= s - 1 {
						if i := bits.TrailingZeros64(s); i < len(classes) {
							yield(classes[i])
						}
					}
				})
			}
			continue
		}
		es, err := r.accesses(p)
		if err != nil {
			return nil, err
		}
		for i := range es {
			e := &es[i]
			if !r.win.has(e.t) {
				continue
			}
			if !classSeen && slices.Contains(e.classes, cid) {
				classSeen = true
			}
			var served uint64
			hit := false
			for _, rc := range e.recs {
				if rc.id != sid {
					continue
				}
				s := rc.classes &^ rc.masked
				if class != "" && !hasClass(e, s, cid) {
					continue
				}
				hit, served = true, served|s
			}
			if !hit {
				continue
			}
			add(e.facets[f], 1, e.t, e.t, func(yield func(uint32)) {
				for s := served; s != 0; s &= s - 1 {
					if i := bits.TrailingZeros64(s); i < len(e.classes) {
						yield(e.classes[i])
					}
				}
			})
		}
	}
	res.ClassUnseen = !classSeen
	for ident, a := range rows {
		row := WhoTookRow{Count: a.count, Classes: []string{}, First: time.UnixMicro(a.first).UTC(), Last: time.UnixMicro(a.last).UTC()}
		if ident != 0 {
			row.Value = r.name(nsFacet+f, ident-1)
		}
		for c := range a.classes {
			row.Classes = append(row.Classes, r.name(nsName, c))
		}
		slices.Sort(row.Classes)
		res.Rows = append(res.Rows, row)
	}
	slices.SortFunc(res.Rows, func(a, b WhoTookRow) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return strings.Compare(a.Value, b.Value)
	})
	return res, nil
}

// indexRows is who-took's rows of subject by facet f (ident +1, 0: the
// Accesses without f) in p's index, and p's class table; ok false when
// the index cannot answer (the window cuts p, or p has more classes than
// rows can name): the Accesses are read then. An error when p's table
// does not decode, naming p's file.
func (r *Reader) indexRows(p *partition, subject uint32, f int) (rws []row, classes []uint32, ok bool, err error) {
	if !r.win.covers(p) {
		return nil, nil, false, nil
	}
	if p.v4 != nil {
		if len(p.v4.classes) > maxRowClasses {
			return nil, nil, false, nil
		}
		rws, err := p.v4.rows4(subject, p.hour*1e6, r.tupleFacet(f), r.dec)
		if err != nil {
			return nil, nil, false, fmt.Errorf("ledger: %s: takers: %w", p.path, err)
		}
		return rws, p.v4.classes, true, nil
	}
	x := r.tables(p)
	if len(x.classes) > maxRowClasses {
		return nil, nil, false, nil
	}
	t, absent := x.rowsFor(f)
	rws, err = t.get(subject, p.hour*1e6)
	if err != nil {
		return nil, nil, false, fmt.Errorf("ledger: %s: who-took table: %w", p.path, err)
	}
	if absent {
		for i := range rws {
			rws[i].ident = 0
		}
	}
	return rws, x.classes, true, nil
}

// hasClass reports whether class c (a name integer) is among the bits of
// set s of e's classes.
func hasClass(e *entry, s uint64, c uint32) bool {
	for i, x := range e.classes {
		if x == c && s&(1<<uint(i)) != 0 {
			return true
		}
	}
	return false
}

// TookByResult answers took-by.
type TookByResult struct {
	Facet    string         `json:"facet"`
	Value    string         `json:"value"`
	Served   map[string]int `json:"served"`   // class -> distinct subjects served it unmasked
	Masked   map[string]int `json:"masked"`   // class -> distinct subjects it was masked on
	Subjects int            `json:"subjects"` // distinct subjects any record of which was served
	Lists    int            `json:"lists"`    // distinct lists fetched (answers, not refusals)
	Accesses int            `json:"accesses"` // Accesses in the window, refusals included
	First    *time.Time     `json:"first"`
	Last     *time.Time     `json:"last"`
}

// TookBy is what one identity took: distinct subjects per class served
// and masked, lists, first and last time, from the window's Accesses
// (decompressed: sealed partitions keep no took-by tables). A partition
// whose Accesses do not decode is an error naming its file.
func (r *Reader) TookBy(by identify.Facet, value string) (*TookByResult, error) {
	defer runtime.KeepAlive(r)
	f := int(by) - 1
	res := &TookByResult{Facet: by.String(), Value: value, Served: map[string]int{}, Masked: map[string]int{}}
	served, masked := map[string]*roaring.Bitmap{}, map[string]*roaring.Bitmap{}
	bm := func(m map[string]*roaring.Bitmap, k string) *roaring.Bitmap {
		b := m[k]
		if b == nil {
			b = roaring.New()
			m[k] = b
		}
		return b
	}
	ident, ok := r.d.id(nsFacet+f, value)
	if !ok {
		return res, nil
	}
	has := r.tupleHas(f, ident)
	any, lists := roaring.New(), roaring.New()
	lo, hi := int64(1<<63-1), int64(-1<<63)
	if err := r.load(); err != nil {
		return nil, err
	}
	for _, p := range r.parts {
		if r.lacks(p, has) {
			continue
		}
		es, err := r.accesses(p)
		if err != nil {
			return nil, err
		}
		for i := range es {
			e := &es[i]
			if e.facets[f] != ident+1 || !r.win.has(e.t) {
				continue
			}
			res.Accesses++
			lo, hi = min(lo, e.t), max(hi, e.t)
			if e.list != 0 && e.status < 400 {
				lists.Add(e.list - 1)
			}
			for _, rc := range e.recs {
				any.Add(rc.id)
				for s := rc.classes; s != 0; s &= s - 1 {
					i := bits.TrailingZeros64(s)
					if i >= len(e.classes) {
						continue
					}
					name := r.name(nsName, e.classes[i])
					if rc.masked&(1<<uint(i)) != 0 {
						bm(masked, name).Add(rc.id)
					} else {
						bm(served, name).Add(rc.id)
					}
				}
			}
		}
	}
	for k, b := range served {
		res.Served[k] = int(b.GetCardinality())
	}
	for k, b := range masked {
		res.Masked[k] = int(b.GetCardinality())
	}
	res.Subjects, res.Lists = int(any.GetCardinality()), int(lists.GetCardinality())
	if lo <= hi {
		a, b := time.UnixMicro(lo).UTC(), time.UnixMicro(hi).UTC()
		res.First, res.Last = &a, &b
	}
	return res, nil
}

// Viewers returns, for each author, the identities (by facet by, as
// integers that hold within this reader) served their content in the
// window, and the pieces of their content served (impressions).
//
// Whole days read their rollup (rollup.go), the other format 4 hours
// their viewers section; these keyed sections are read in parallel, one
// goroutine per core (GOMAXPROCS), each author's viewers of a section
// kept as one run, and the runs are added to the authors' bitmaps, again
// an author range per core. Format 4 hours the window cuts read their
// author index and two columns of their Accesses, or without an index
// four columns (cutViewers), in parallel too; format 3 hours and open
// logs are read as before, on the calling goroutine.
//
// An hour whose sections or Accesses do not decode is an error naming its
// file. A day's rollup that does not decode is passed over (warn) and the
// question asked again of its hours, whose answer is the same.
func (r *Reader) Viewers(authors []string, by identify.Facet) ([]*roaring.Bitmap, []uint64, error) {
	for {
		out, impr, err := r.viewers(authors, by)
		var bad *derivedError
		if errors.As(err, &bad) && bad.rollup != nil {
			r.warn(bad)
			r.rollups = slices.DeleteFunc(r.rollups, func(x *rollup) bool { return x == bad.rollup })
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		return out, impr, nil
	}
}

// derivedError is a derived file (a day's rollup) that did not decode
// where a query read it: the hours it was made from answer instead.
type derivedError struct {
	rollup *rollup
	err    error
}

func (e *derivedError) Error() string {
	return fmt.Sprintf("ledger: %s: day rollup does not decode, its hours answer (warden ledger verify): %v", e.rollup.path, e.err)
}

func (e *derivedError) Unwrap() error { return e.err }

// viewers is one attempt of Viewers.
func (r *Reader) viewers(authors []string, by identify.Facet) ([]*roaring.Bitmap, []uint64, error) {
	defer runtime.KeepAlive(r)
	f := int(by) - 1
	r.viewNS = nsFacet + f
	out := make([]*roaring.Bitmap, len(authors))
	impr := make([]uint64, len(authors))
	for i := range out {
		out[i] = roaring.New()
	}
	ids := map[uint32][]int{} // an author named twice is answered twice
	for i, a := range authors {
		if v, ok := r.d.id(nsID, a); ok {
			ids[v] = append(ids[v], i)
		}
	}
	if len(ids) == 0 {
		return out, impr, nil
	}
	sorted := make([]uint32, 0, len(ids))
	for v := range ids {
		sorted = append(sorted, v)
	}
	slices.Sort(sorted)
	who := make([][]int, len(sorted))
	for k, a := range sorted {
		who[k] = ids[a]
	}
	var secs []viewerSec
	rolled := map[*partition]bool{}
	for _, x := range r.rollups {
		if k := x.section(f); k != nil {
			secs = append(secs, viewerSec{k: k, roll: x})
			for _, p := range x.parts {
				rolled[p] = true
			}
		}
	}
	var rest, cut []*partition
	var tf []uint32
	for _, p := range r.parts {
		if rolled[p] {
			continue
		}
		if err := r.loadLazy(p); err != nil {
			return nil, nil, err
		}
		switch {
		case r.win.covers(p) && p.v4 != nil:
			if tf == nil {
				tf = r.tupleFacet(f)
			}
			secs = append(secs, viewerSec{k: p.v4.viewers, tf: tf, path: p.path})
		case columnar(p):
			cut = append(cut, p)
		default:
			rest = append(rest, p)
		}
	}
	if len(secs) > 0 {
		if err := r.viewerRuns(secs, sorted, who, r.d.d.t[nsFacet+f].len(), out, impr); err != nil {
			return nil, nil, err
		}
	}
	if len(cut) > 0 {
		if err := r.cutViewers(cut, sorted, who, r.tupleFacet(f), out, impr); err != nil {
			return nil, nil, err
		}
	}
	for _, p := range rest {
		if r.win.covers(p) {
			x := r.tables(p)
			for _, a := range sorted {
				vs := x.viewers[f].get(uint64(a))
				n := x.impr.get(uint64(a))
				for _, i := range ids[a] {
					out[i].AddMany(vs)
					if len(n) == 1 {
						impr[i] += uint64(n[0])
					}
				}
			}
			continue
		}
		es, err := r.accesses(p)
		if err != nil {
			return nil, nil, err
		}
		for k := range es {
			e := &es[k]
			if len(e.authors) == 0 || !r.win.has(e.t) {
				continue
			}
			for _, a := range e.authors {
				for _, i := range ids[a] {
					impr[i]++
					if v := e.facets[f]; v != 0 {
						out[i].Add(v - 1)
					}
				}
			}
		}
	}
	return out, impr, nil
}

// cutViewers adds the viewers of authors (sorted; who[k]: the indexes
// of out asking sorted[k]) in sealed hours the window cuts, the hours
// spread over the cores. An hour with an author index (authored.go)
// reads the postings of the authors asked and its time and identity
// columns; one without reads its time, identity, misc and author columns
// (eachAuthored; decoding an hour whole cost 80 ms of CPU at the issue's
// density, most of a week's reach). What the hours add is applied once
// all have parsed: a corrupt hour is an error naming its file; an index
// that does not parse or decode is passed over for the columns (warn).
func (r *Reader) cutViewers(cut []*partition, sorted []uint32, who [][]int, tf []uint32, out []*roaring.Bitmap, impr []uint64) error {
	seen := make([][]view, len(cut))
	errs := make([]error, len(cut))    // the hour's
	skipped := make([]error, len(cut)) // its author index's
	idx := make([]*authored, len(cut))
	for u, p := range cut {
		idx[u] = r.authoredIndex(p)
	}
	// A bit per author asked, tested before the map: most authors of an
	// hour's Accesses are not asked about.
	want := make([]uint64, sorted[len(sorted)-1]/64+1)
	ids := make(map[uint32][]int, len(sorted))
	for k, a := range sorted {
		want[a/64] |= 1 << (a % 64)
		ids[a] = who[k]
	}
	lo, hi := r.win.lo(), r.win.hi()
	parallel(len(cut), func(u int) {
		p := cut[u]
		if x := idx[u]; x != nil {
			vs, err := r.authoredViewers(p, x, sorted, who, tf, lo, hi)
			if err == nil {
				seen[u] = vs
				return
			}
			skipped[u] = err // the columns answer
		}
		var vs []view
		_, err := eachAuthored(p.cold, p.hour, r.dec, func(_ uint32, t int64, tuple uint64, authors []uint32) {
			// The authors first: tf is read at random (a cache miss), and
			// most Accesses serve no author asked about.
			for _, a := range authors {
				if a/64 >= uint32(len(want)) || want[a/64]&(1<<(a%64)) == 0 || t < lo || t > hi {
					continue
				}
				v := uint32(0)
				if tuple < uint64(len(tf)) {
					v = tf[tuple]
				}
				for _, i := range ids[a] {
					vs = append(vs, view{uint32(i), v})
				}
			}
		})
		if err != nil {
			errs[u] = fmt.Errorf("ledger: %s: Accesses: %w", p.path, err)
			return
		}
		seen[u] = vs
	})
	for u, err := range errs {
		if err != nil {
			return err
		}
		if skipped[u] != nil {
			r.warn(fmt.Errorf("ledger: author index of %s not used, its columns answered: %w", cut[u].path, skipped[u]))
		}
	}
	for _, vs := range seen {
		for _, s := range vs {
			impr[s.i]++
			if s.v != 0 {
				out[s.i].Add(s.v - 1)
			}
		}
	}
	return nil
}

// viewerRun is one keyed section's answer: author k's identities are
// vals[off[k]:off[k+1]], in the order of the section's tuples.
type viewerRun struct {
	off  []uint32
	vals []uint32
	impr []uint64
}

// viewerSec is a keyed section of author -> viewers: an hour's, whose
// tuples tf maps to facet values (+1), or a rollup's (tf nil), whose
// values are the facet's.
type viewerSec struct {
	k    *keyed
	tf   []uint32
	path string  // an hour's file
	roll *rollup // or the day's rollup
}

// viewerRuns reads authors sorted (who[k]: the indexes of out asking
// author k) in each of secs (values below limit), and adds them to out
// and impr. Sections are spread over the cores and so are authors when
// the runs are added. A section that does not decode is an error, out and
// impr untouched: a *derivedError for a rollup's.
func (r *Reader) viewerRuns(secs []viewerSec, sorted []uint32, who [][]int, limit int, out []*roaring.Bitmap, impr []uint64) error {
	runs := make([]viewerRun, len(secs))
	errs := make([]error, len(secs))
	defer func() {
		for _, run := range runs {
			r.runBufs.Put(&run.vals)
		}
	}()
	parallel(len(secs), func(u int) {
		run := viewerRun{off: make([]uint32, len(sorted)+1), impr: make([]uint64, len(sorted))}
		// The runs' memory is kept between queries: growing them was a
		// sixth of a warm reach's time.
		if b, ok := r.runBufs.Get().(*[]uint32); ok {
			run.vals = (*b)[:0]
		}
		filled := 0
		fill := func(upto int) {
			for ; filled < upto; filled++ {
				run.off[filled+1] = uint32(len(run.vals))
			}
		}
		sec := secs[u]
		var perr error
		err := sec.k.eachSorted(sorted, r.dec, func(k int, payload []byte) {
			if perr != nil {
				return
			}
			fill(k)
			var n uint64
			if sec.tf != nil {
				run.vals, n, perr = viewers4(payload, sec.tf, run.vals)
			} else {
				run.vals, n, perr = viewerTuples(payload, limit, run.vals)
			}
			if perr != nil {
				perr = fmt.Errorf("author %d: %w", sorted[k], perr)
			}
			run.impr[k] += n
		})
		if err == nil {
			err = perr
		}
		fill(len(sorted))
		runs[u] = run
		switch {
		case err == nil:
		case sec.roll != nil:
			errs[u] = &derivedError{rollup: sec.roll, err: err}
		default:
			errs[u] = fmt.Errorf("ledger: %s: viewers: %w", sec.path, err)
		}
	})
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	for k := range sorted {
		for u := range runs {
			for _, i := range who[k] {
				impr[i] += runs[u].impr[k]
			}
		}
	}
	const chunk = 64
	parallel((len(sorted)+chunk-1)/chunk, func(c int) {
		for k := c * chunk; k < min(len(sorted), (c+1)*chunk); k++ {
			for u := range runs {
				vs := runs[u].vals[runs[u].off[k]:runs[u].off[k+1]]
				if len(vs) == 0 {
					continue
				}
				if !slices.IsSorted(vs) {
					slices.Sort(vs)
				}
				for _, i := range who[k] {
					out[i].AddMany(vs)
				}
			}
		}
	})
	return nil
}

// parallel calls fn(0..n-1) on min(n, GOMAXPROCS) goroutines, the
// calling one among them, and returns when all are done.
func parallel(n int, fn func(i int)) {
	workers := min(n, runtime.GOMAXPROCS(0))
	var next atomic.Int64
	work := func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			fn(i)
		}
	}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work()
	wg.Wait()
}

// Found is an Access found by its request id, with the file it is in.
type Found struct {
	Entry *Entry
	File  string
}

// Find returns the Access of request id, nil when the window holds none.
// It searches the newest partitions first (an id asked about is usually
// recent) and decodes whole only a sealed hour whose request id column
// holds the id (hours that cannot tell, format 3's, are decoded and
// scanned as before). Request ids are unique; were one recorded twice,
// the newest Access is the answer. An hour that must be read and does not
// decode is an error naming its file.
func (r *Reader) Find(id string) (*Found, error) {
	defer runtime.KeepAlive(r)
	if err := r.load(); err != nil {
		return nil, err
	}
	for _, p := range slices.Backward(r.parts) {
		if r.lacksReqID(p, id) {
			continue
		}
		es, err := r.accesses(p)
		if err != nil {
			return nil, err
		}
		for i := len(es) - 1; i >= 0; i-- {
			// An hour the window cuts holds Accesses outside it.
			if es[i].reqID == id && r.win.has(es[i].t) {
				return &Found{Entry: r.entryOf(&es[i]), File: p.path}, nil
			}
		}
	}
	return nil, nil
}

// FacetValue is one facet's value of an identity.
type FacetValue struct {
	By    identify.Facet
	Value string
}

// Unlimited are the rules whose refusals no rate limit saw: refused
// before admission asked any limit (request: at the gateway's edge;
// identity: credentials warden could not verify, or two of one), or by a
// ban, under which the store evaluates no limit (store.AdmitResult). A
// refusal by a rate limit was seen by every limit asked with it. The
// state store's (store) depend on the stage that failed, its facet
// (UnlimitedFacets).
func Unlimited() []string {
	return []string{refusal.RuleRequest, refusal.RuleIdentity, refusal.RuleBan}
}

// RuleFacet is a refusal's rule and facet.
type RuleFacet struct{ Rule, Facet string }

// UnlimitedFacets are the refusals no rate limit saw though others of
// their rule were seen: the state store failing at admission
// (refusal.StoreAdmit), where no limit was decided or spent, and the
// second Access of a request that panicked after its first was recorded
// (refusal.InternalAnswering), counted with the first. One failing
// at rationing (refusal.StoreRation) came after every limit admitted the
// request, and one a ledger recorded before the stage was (no facet) may
// have: those stay counted.
func UnlimitedFacets() []RuleFacet {
	return []RuleFacet{{refusal.RuleStore, refusal.StoreAdmit}, {refusal.RuleInternal, refusal.InternalAnswering}}
}

// LimitsSaw reports whether the rate limits saw a request recorded with
// rule and facet (Unlimited, UnlimitedFacets).
func LimitsSaw(rule, facet string) bool {
	return !slices.Contains(Unlimited(), rule) && !slices.Contains(UnlimitedFacets(), RuleFacet{rule, facet})
}

// Requests counts, per route, the Accesses of the window whose identity
// has every facet value of want (none: every Access), admitted or
// refused by a limit: what a rate limit keyed on those values saw
// (explain). Requests refused by the rules no rate limit saw (Unlimited),
// or with a rule and facet none saw (UnlimitedFacets), are not counted. It skips the sealed hours whose identities lack want's
// first value.
func (r *Reader) Requests(want []FacetValue) (map[string]int, error) {
	defer runtime.KeepAlive(r)
	out := map[string]int{}
	var unseen []uint32 // those rules' names+1, of those ever recorded
	for _, rule := range Unlimited() {
		if id, ok := r.d.id(nsName, rule); ok {
			unseen = append(unseen, id+1)
		}
	}
	var unseenFacets [][2]uint32 // UnlimitedFacets' rule and facet names+1, of those ever recorded
	for _, rf := range UnlimitedFacets() {
		rule, ok := r.d.id(nsName, rf.Rule)
		facet, ok2 := r.d.id(nsName, rf.Facet)
		if ok && ok2 {
			unseenFacets = append(unseenFacets, [2]uint32{rule + 1, facet + 1})
		}
	}
	var ids [NumFacets]uint32 // id+1 asked per facet; 0: any
	for _, w := range want {
		if w.By < 1 || int(w.By) > NumFacets {
			return nil, fmt.Errorf("ledger: requests: facet %d", w.By)
		}
		id, ok := r.d.id(nsFacet+int(w.By)-1, w.Value)
		if !ok {
			return out, nil // never recorded
		}
		if ids[w.By-1] != 0 && ids[w.By-1] != id+1 {
			return out, nil // two values of one facet: none has both
		}
		ids[w.By-1] = id + 1
	}
	var has func(t uint64) bool
	if len(want) > 0 {
		has = r.tupleHas(int(want[0].By)-1, ids[want[0].By-1]-1)
	}
	if err := r.load(); err != nil {
		return nil, err
	}
	for _, p := range r.parts {
		if has != nil && r.lacks(p, has) {
			continue
		}
		es, err := r.accesses(p)
		if err != nil {
			return nil, err
		}
	next:
		for i := range es {
			e := &es[i]
			if !r.win.has(e.t) || slices.Contains(unseen, e.rule) || e.rule != 0 && slices.Contains(unseenFacets, [2]uint32{e.rule, e.facet}) {
				continue
			}
			for f, id := range ids {
				if id != 0 && e.facets[f] != id {
					continue next
				}
			}
			route := ""
			if e.route != 0 {
				route = r.name(nsName, e.route-1)
			}
			out[route]++
		}
	}
	return out, nil
}

// Distinct counts the distinct subjects of class served unmasked to
// facet value value in the window (class "" counts any record), by
// identities that also have every facet value of also: what a budget
// counting by that facet and class saw (also: the account, for a budget
// identified: own). An hour that does not decode is an error naming its
// file.
func (r *Reader) Distinct(by identify.Facet, value, class string, also ...FacetValue) (int, error) {
	_, n, err := r.distinct(by, value, class, nil, also)
	return n, err
}

// DistinctSplit is Distinct, and in the same pass the same count over the
// window's Accesses before cut (warden explain's shadow budget: its count
// before the request, and with it).
func (r *Reader) DistinctSplit(by identify.Facet, value, class string, cut time.Time, also ...FacetValue) (before, all int, err error) {
	c := cut.UnixMicro()
	return r.distinct(by, value, class, &c, also)
}

// distinct counts as Distinct does, all of the window's Accesses and,
// when cut is given (unix microseconds), those before it.
func (r *Reader) distinct(by identify.Facet, value, class string, cut *int64, also []FacetValue) (before, all int, err error) {
	defer runtime.KeepAlive(r)
	f := int(by) - 1
	set := roaring.New()
	var early *roaring.Bitmap
	if cut != nil {
		early = roaring.New()
	}
	ident, ok := r.d.id(nsFacet+f, value)
	if !ok {
		return 0, 0, nil
	}
	var more [NumFacets]uint32 // id+1 asked per facet of also; 0: any
	for _, w := range also {
		if w.By < 1 || int(w.By) > NumFacets {
			return 0, 0, fmt.Errorf("ledger: distinct: facet %d", w.By)
		}
		id, ok := r.d.id(nsFacet+int(w.By)-1, w.Value)
		if !ok || more[w.By-1] != 0 && more[w.By-1] != id+1 {
			return 0, 0, nil // never recorded, or two values of one facet
		}
		more[w.By-1] = id + 1
	}
	var c uint32
	if class != "" {
		if c, ok = r.d.id(nsName, class); !ok {
			return 0, 0, nil
		}
	}
	has := r.tupleHas(f, ident)
	if err := r.load(); err != nil {
		return 0, 0, err
	}
	for _, p := range r.parts {
		if r.lacks(p, has) {
			continue
		}
		es, err := r.accesses(p)
		if err != nil {
			return 0, 0, err
		}
	next:
		for i := range es {
			e := &es[i]
			if e.facets[f] != ident+1 || !r.win.has(e.t) {
				continue
			}
			for g, id := range more {
				if id != 0 && e.facets[g] != id {
					continue next
				}
			}
			for _, rc := range e.recs {
				if class == "" || hasClass(e, rc.classes&^rc.masked, c) {
					set.Add(rc.id)
					if early != nil && e.t < *cut {
						early.Add(rc.id)
					}
				}
			}
		}
	}
	if early == nil {
		return 0, int(set.GetCardinality()), nil
	}
	return int(early.GetCardinality()), int(set.GetCardinality()), nil
}

// IdentityName is the value behind an identity integer Viewers returned.
func (r *Reader) IdentityName(v uint32) string { return r.name(r.viewNS, v) }

// Union is the union of views (Viewers' bitmaps). For a thousand authors'
// bitmaps, each a few identities in each of many containers, setting the
// bits of one dense array and converting it once costs less than
// roaring.FastOr, which merges the array containers pair by pair (a
// quarter of a warm reach's CPU at 100,000,000 Accesses). Views whose
// largest identity is far past their count are unioned by FastOr: the
// array would be mostly empty.
func Union(views []*roaring.Bitmap) *roaring.Bitmap {
	var top uint32
	var n uint64
	for _, v := range views {
		if !v.IsEmpty() {
			top, n = max(top, v.Maximum()), n+v.GetCardinality()
		}
	}
	if n == 0 {
		return roaring.New()
	}
	if uint64(top) > 64*n+1<<16 {
		return roaring.FastOr(views...)
	}
	words := make([]uint64, top/64+1)
	var buf [256]uint32
	for _, v := range views {
		it := v.ManyIterator()
		for k := it.NextMany(buf[:]); k > 0; k = it.NextMany(buf[:]) {
			for _, id := range buf[:k] {
				words[id>>6] |= 1 << (id & 63)
			}
		}
	}
	return roaring.FromDense(words, false)
}
