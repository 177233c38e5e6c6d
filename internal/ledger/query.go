package ledger

import (
	"math/bits"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/warden-gw/warden/internal/identify"
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
}

// WhoTook lists the identities, by facet by, that were served subject's
// record; with class, only Accesses that served that class unmasked.
// Partitions the window covers answer from their who-took table; the
// others are scanned.
func (r *Reader) WhoTook(subject, class string, by identify.Facet) *WhoTookResult {
	defer runtime.KeepAlive(r)
	f := int(by) - 1
	res := &WhoTookResult{Subject: subject, By: by.String(), Class: class, Rows: []WhoTookRow{}}
	sid, ok := r.d.id(nsID, subject)
	if !ok {
		return res
	}
	var cid uint32
	if class != "" {
		if cid, ok = r.d.id(nsName, class); !ok {
			return res
		}
	}
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
	for _, p := range r.parts {
		if rws, classes, ok := r.indexRows(p, sid, f); ok {
			bit := -1
			if class != "" {
				i, ok := slices.BinarySearch(classes, cid)
				if !ok {
					continue
				}
				bit = i
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
		es := r.accesses(p)
		for i := range es {
			e := &es[i]
			if !r.win.has(e.t) {
				continue
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
	return res
}

// indexRows is who-took's rows of subject by facet f (ident +1, 0: the
// Accesses without f) in p's index, and p's class table; ok false when
// the index cannot answer (the window cuts p, or p has more classes than
// rows can name): the Accesses are read then.
func (r *Reader) indexRows(p *partition, subject uint32, f int) (rws []row, classes []uint32, ok bool) {
	if !r.win.covers(p) {
		return nil, nil, false
	}
	if p.v4 != nil {
		if len(p.v4.classes) > maxRowClasses {
			return nil, nil, false
		}
		return p.v4.rows4(subject, p.hour*1e6, r.tupleFacet(f), r.dec), p.v4.classes, true
	}
	x := r.tables(p)
	if len(x.classes) > maxRowClasses {
		return nil, nil, false
	}
	t, absent := x.rowsFor(f)
	rws = t.get(subject, p.hour*1e6)
	if absent {
		for i := range rws {
			rws[i].ident = 0
		}
	}
	return rws, x.classes, true
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
// (decompressed: sealed partitions keep no took-by tables).
func (r *Reader) TookBy(by identify.Facet, value string) *TookByResult {
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
		return res
	}
	has := r.tupleHas(f, ident)
	any, lists := roaring.New(), roaring.New()
	lo, hi := int64(1<<63-1), int64(-1<<63)
	for _, p := range r.parts {
		if r.lacks(p, has) {
			continue
		}
		es := r.accesses(p)
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
	return res
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
func (r *Reader) Viewers(authors []string, by identify.Facet) ([]*roaring.Bitmap, []uint64) {
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
		return out, impr
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
			secs = append(secs, viewerSec{k: k})
			for _, p := range x.parts {
				rolled[p] = true
			}
		}
	}
	var rest, cut []*partition
	var tf []uint32
	for _, p := range r.parts {
		switch {
		case rolled[p]:
		case r.win.covers(p) && p.v4 != nil:
			if tf == nil {
				tf = r.tupleFacet(f)
			}
			secs = append(secs, viewerSec{k: p.v4.viewers, tf: tf})
		case columnar(p):
			cut = append(cut, p)
		default:
			rest = append(rest, p)
		}
	}
	if len(secs) > 0 {
		r.viewerRuns(secs, sorted, who, r.d.d.t[nsFacet+f].len(), out, impr)
	}
	if len(cut) > 0 {
		r.cutViewers(cut, sorted, who, r.tupleFacet(f), out, impr)
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
		es := r.accesses(p)
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
	return out, impr
}

// cutViewers adds the viewers of authors (sorted; who[k]: the indexes
// of out asking sorted[k]) in sealed hours the window cuts, the hours
// spread over the cores. An hour with an author index (authored.go)
// reads the postings of the authors asked and its time and identity
// columns; one without reads its time, identity, misc and author columns
// (eachAuthored; decoding an hour whole cost 80 ms of CPU at the issue's
// density, most of a week's reach). What an hour adds is applied once it
// has all parsed: a corrupt hour is skipped whole, as when decoded whole
// (an index that does not parse is passed over for the columns).
func (r *Reader) cutViewers(cut []*partition, sorted []uint32, who [][]int, tf []uint32, out []*roaring.Bitmap, impr []uint64) {
	seen := make([][]view, len(cut))
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
			if vs, err := r.authoredViewers(p, x, sorted, who, tf, lo, hi); err == nil {
				seen[u] = vs
				return
			} // else the columns answer
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
		if err == nil {
			seen[u] = vs
		}
	})
	for _, vs := range seen {
		for _, s := range vs {
			impr[s.i]++
			if s.v != 0 {
				out[s.i].Add(s.v - 1)
			}
		}
	}
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
	k  *keyed
	tf []uint32
}

// viewerRuns reads authors sorted (who[k]: the indexes of out asking
// author k) in each of secs (values below limit), and adds them to out
// and impr. Sections are spread over the cores and so are authors when
// the runs are added.
func (r *Reader) viewerRuns(secs []viewerSec, sorted []uint32, who [][]int, limit int, out []*roaring.Bitmap, impr []uint64) {
	runs := make([]viewerRun, len(secs))
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
		sec.k.eachSorted(sorted, r.dec, func(k int, payload []byte) {
			fill(k)
			var n uint64
			if sec.tf != nil {
				run.vals, n = viewers4(payload, sec.tf, run.vals)
			} else {
				// A payload that does not decode keeps what did, as
				// viewers4 does (verify reports it).
				run.vals, n, _ = viewerTuples(payload, limit, run.vals)
			}
			run.impr[k] += n
		})
		fill(len(sorted))
		runs[u] = run
	})
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
// the newest Access is the answer.
func (r *Reader) Find(id string) *Found {
	defer runtime.KeepAlive(r)
	for _, p := range slices.Backward(r.parts) {
		if r.lacksReqID(p, id) {
			continue
		}
		es := r.accesses(p)
		for i := len(es) - 1; i >= 0; i-- {
			if es[i].reqID == id {
				return &Found{Entry: r.entryOf(&es[i]), File: p.path}
			}
		}
	}
	return nil
}

// Distinct counts the distinct subjects of class served unmasked to
// facet value value in the window (class "" counts any record): what a
// budget counting by that facet and class saw.
func (r *Reader) Distinct(by identify.Facet, value, class string) int {
	defer runtime.KeepAlive(r)
	f := int(by) - 1
	set := roaring.New()
	ident, ok := r.d.id(nsFacet+f, value)
	if !ok {
		return 0
	}
	var c uint32
	if class != "" {
		if c, ok = r.d.id(nsName, class); !ok {
			return 0
		}
	}
	has := r.tupleHas(f, ident)
	for _, p := range r.parts {
		if r.lacks(p, has) {
			continue
		}
		es := r.accesses(p)
		for i := range es {
			e := &es[i]
			if e.facets[f] != ident+1 || !r.win.has(e.t) {
				continue
			}
			for _, rc := range e.recs {
				if class == "" || hasClass(e, rc.classes&^rc.masked, c) {
					set.Add(rc.id)
				}
			}
		}
	}
	return int(set.GetCardinality())
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
