package ledger

import (
	"runtime"
	"slices"

	"github.com/warden-gw/warden/internal/identify"
)

// RefusedIdentities counts the distinct identities the window's Accesses
// refused by one of rules name: each identity as the refusal named it,
// its facet (the Access's Facet, an identity facet's name) and the
// Access's value of that facet, so that an account refused on two
// addresses is one and an address refused for two accounts is one. A
// refusal whose facet is no identity facet (rule request's reasons,
// rule store's stages) or whose identity lacks it is not counted. One
// pass over the window's Accesses, keeping a bit per identity counted,
// never the Accesses: the transparency page's "harvesting stopped". An
// hour that does not decode is an error naming its file.
func (r *Reader) RefusedIdentities(rules []string) (int, error) {
	defer runtime.KeepAlive(r)
	// The rules' and facets' names as Accesses hold them (name+1).
	var want []uint32
	for _, rule := range rules {
		if id, ok := r.d.id(nsName, rule); ok {
			want = append(want, id+1)
		}
	}
	if len(want) == 0 {
		return 0, nil
	}
	var facetOf = map[uint32]int{} // a facet's name+1 -> its index in Entry.Identity
	for _, f := range identify.Facets {
		if id, ok := r.d.id(nsName, f.String()); ok {
			facetOf[id+1] = int(f) - 1
		}
	}
	if err := r.load(); err != nil {
		return 0, err
	}
	var sets [NumFacets]pagedSet
	for _, p := range r.parts {
		es, err := r.accesses(p)
		if err != nil {
			return 0, err
		}
		for i := range es {
			e := &es[i]
			if e.rule == 0 || !r.win.has(e.t) || !slices.Contains(want, e.rule) {
				continue
			}
			f, ok := facetOf[e.facet]
			if !ok || e.facets[f] == 0 {
				continue
			}
			sets[f].add(e.facets[f] - 1)
		}
	}
	n := 0
	for i := range sets {
		n += sets[i].count()
	}
	return n, nil
}
