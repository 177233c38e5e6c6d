package ledger

import (
	"runtime"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/warden-gw/warden/internal/identify"
)

// DistinctEach is Distinct for each of values, in one pass over the
// window's Accesses instead of one a value (the dashboard ranks 50
// identities a facet).
func (r *Reader) DistinctEach(by identify.Facet, values []string, class string) []int {
	defer runtime.KeepAlive(r)
	out := make([]int, len(values))
	f := int(by) - 1
	var c uint32
	if class != "" {
		var ok bool
		if c, ok = r.d.id(nsName, class); !ok {
			return out
		}
	}
	sets := map[uint32]*roaring.Bitmap{} // ident+1, as Accesses hold it
	for _, v := range values {
		if ident, ok := r.d.id(nsFacet+f, v); ok {
			sets[ident+1] = roaring.New()
		}
	}
	if len(sets) == 0 {
		return out
	}
	for _, p := range r.parts {
		if !r.cold(p) {
			continue
		}
		for i := range p.entries {
			e := &p.entries[i]
			set := sets[e.facets[f]]
			if set == nil || !r.win.has(e.t) {
				continue
			}
			for _, rc := range e.recs {
				if class == "" || hasClass(e, rc.classes&^rc.masked, c) {
					set.Add(rc.id)
				}
			}
		}
	}
	for i, v := range values {
		if ident, ok := r.d.id(nsFacet+f, v); ok {
			out[i] = int(sets[ident+1].GetCardinality())
		}
	}
	return out
}
