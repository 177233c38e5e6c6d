package ledger

import (
	"math/bits"
	"runtime"

	"github.com/warden-gw/warden/internal/identify"
)

// DistinctEach is Distinct for each of values, in one pass over the
// window's Accesses instead of one a value (the dashboard ranks 50
// identities a facet).
func (r *Reader) DistinctEach(by identify.Facet, values []string, class string) ([]int, error) {
	out, err := r.DistinctMany([]DistinctQuery{{By: by, Values: values, Class: class}})
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// DistinctQuery is one question of DistinctMany: Distinct of each of
// Values by facet By and class Class.
type DistinctQuery struct {
	By     identify.Facet
	Values []string
	Class  string
}

// DistinctMany answers each query as DistinctEach does, all in one pass
// over the window's Accesses: the dashboard's identities page asks every
// facet it ranks of one window, and a pass over an open hour's Accesses
// costs as much in reading them from memory as in counting. An hour that
// does not decode is an error naming its file.
func (r *Reader) DistinctMany(qs []DistinctQuery) ([][]int, error) {
	defer runtime.KeepAlive(r)
	type question struct {
		f     int
		class bool
		c     uint32
		slot  []int32 // ident+1, as Accesses hold it -> 1 + its set's index
		sets  []*pagedSet
	}
	xs := make([]*question, len(qs)) // nil: nothing to count
	var ask []*question
	for i, q := range qs {
		x := &question{f: int(q.By) - 1, class: q.Class != ""}
		if x.class {
			var ok bool
			if x.c, ok = r.d.id(nsName, q.Class); !ok {
				continue
			}
		}
		for _, v := range q.Values {
			ident, ok := r.d.id(nsFacet+x.f, v)
			if !ok {
				continue
			}
			if x.slot == nil {
				x.slot = make([]int32, r.d.len(nsFacet+x.f)+1)
			}
			if x.slot[ident+1] == 0 {
				x.sets = append(x.sets, &pagedSet{})
				x.slot[ident+1] = int32(len(x.sets))
			}
		}
		if len(x.sets) > 0 {
			xs[i] = x
			ask = append(ask, x)
		}
	}
	// A tuple matters when its value of some question's facet is one of
	// that question's values.
	var tfs [][]uint32 // built by the first sealed partition asked
	has := func(t uint64) bool {
		if tfs == nil {
			tfs = make([][]uint32, len(ask))
			for k, x := range ask {
				tfs[k] = r.tupleFacet(x.f)
			}
		}
		for k, x := range ask {
			if t >= uint64(len(tfs[k])) {
				return true
			}
			if v := tfs[k][t]; int(v) < len(x.slot) && x.slot[v] != 0 {
				return true
			}
		}
		return false
	}
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
			if !r.win.has(e.t) {
				continue
			}
			for _, x := range ask {
				k := x.slot[e.facets[x.f]]
				if k == 0 {
					continue
				}
				set := x.sets[k-1]
				for _, rc := range e.recs {
					if !x.class || hasClass(e, rc.classes&^rc.masked, x.c) {
						set.add(rc.id)
					}
				}
			}
		}
	}
	out := make([][]int, len(qs))
	for i, q := range qs {
		out[i] = make([]int, len(q.Values))
		x := xs[i]
		if x == nil {
			continue
		}
		for j, v := range q.Values {
			if ident, ok := r.d.id(nsFacet+x.f, v); ok && x.slot[ident+1] != 0 {
				out[i][j] = x.sets[x.slot[ident+1]-1].count()
			}
		}
	}
	return out, nil
}

// pagedSet is a set of integers in pages of 4,096 bits, made as they are
// touched: an add sets a bit (and looks the page up when it changes),
// where a roaring bitmap inserts into a sorted array; a page costs 512
// bytes, as dense as a roaring bitmap container.
type pagedSet struct {
	pages map[uint32]*[64]uint64
	key   uint32
	page  *[64]uint64
}

func (s *pagedSet) add(v uint32) {
	if k := v >> 12; s.page == nil || k != s.key {
		p := s.pages[k]
		if p == nil {
			if s.pages == nil {
				s.pages = map[uint32]*[64]uint64{}
			}
			p = new([64]uint64)
			s.pages[k] = p
		}
		s.key, s.page = k, p
	}
	s.page[v>>6&63] |= 1 << (v & 63)
}

func (s *pagedSet) count() int {
	n := 0
	for _, p := range s.pages {
		for _, w := range p {
			n += bits.OnesCount64(w)
		}
	}
	return n
}
