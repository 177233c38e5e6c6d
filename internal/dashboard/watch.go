package dashboard

import (
	"sort"
	"sync"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
)

// watched are the facets the identities page ranks.
var watched = []identify.Facet{identify.FacetAccount, identify.FacetApp, identify.FacetIP, identify.FacetNet}

// Watch nominates the identities the identities page shows: per facet,
// the values served the most records, kept in a bounded table (space
// saving, approximate: a new value takes the place of the smallest of a
// few sampled, with its count).
// It is a gateway.Recorder, fed off the request path. It only nominates:
// the figures the page shows are the ledger's.
type Watch struct {
	mu  sync.Mutex
	max int
	m   [len(identify.Facets)]map[string]uint64
}

// evictSample is how many values a full table looks at to choose the one
// a new value replaces.
const evictSample = 8

// NewWatch keeps up to max values per facet (0: 1024).
func NewWatch(max int) *Watch {
	if max <= 0 {
		max = 1024
	}
	w := &Watch{max: max}
	for i := range w.m {
		w.m[i] = map[string]uint64{}
	}
	return w
}

// Record counts the records acc served to each of its facets' values.
func (w *Watch) Record(acc *inspect.Access) {
	n := uint64(0)
	for _, r := range acc.Records {
		if r.Served() != 0 {
			n++
		}
	}
	if n == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, f := range watched {
		v := acc.Identity.Value(f)
		if v == "" {
			continue
		}
		m := w.m[f-1]
		if c, ok := m[v]; ok || len(m) < w.max {
			m[v] = c + n
			continue
		}
		// Full: the smallest of a few values (map order is random) gives
		// its place, so a miss costs a few steps, not a scan of the table:
		// with addresses rotating, nearly every Access misses.
		minV, minC, seen := "", uint64(0), 0
		for k, c := range m {
			if minV == "" || c < minC {
				minV, minC = k, c
			}
			if seen++; seen == evictSample {
				break
			}
		}
		delete(m, minV)
		m[v] = minC + n
	}
}

// Top returns up to n values of facet f, most records first.
func (w *Watch) Top(f identify.Facet, n int) []string {
	if w == nil || f < 1 || int(f) > len(w.m) {
		return nil
	}
	w.mu.Lock()
	type kv struct {
		v string
		c uint64
	}
	all := make([]kv, 0, len(w.m[f-1]))
	for v, c := range w.m[f-1] {
		all = append(all, kv{v, c})
	}
	w.mu.Unlock()
	sort.Slice(all, func(i, j int) bool {
		if all[i].c != all[j].c {
			return all[i].c > all[j].c
		}
		return all[i].v < all[j].v
	})
	out := []string{}
	for i := 0; i < len(all) && i < n; i++ {
		out = append(out, all[i].v)
	}
	return out
}
