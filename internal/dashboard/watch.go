package dashboard

import (
	"net/netip"
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
//
// It runs on every Access the gateway records, so it is kept cheap:
// addresses and networks are counted as netip values (the string of one is
// made only when a page asks), each facet's table finds a value with one
// map look-up and counts in place, and the value an Access repeats from
// the one before (the same client, the same address) is counted without a
// look-up.
type Watch struct {
	mu      sync.Mutex
	max     int
	app     table[string]
	account table[string]
	ip      table[netip.Addr]
	net     table[netip.Prefix]
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
	w.app.init(1)
	w.account.init(2)
	w.ip.init(3)
	w.net.init(4)
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
	id := &acc.Identity
	w.mu.Lock()
	defer w.mu.Unlock()
	if id.App != "" {
		w.app.add(id.App, n, w.max)
	}
	if id.Account != "" {
		w.account.add(id.Account, n, w.max)
	}
	if id.IP.IsValid() {
		w.ip.add(id.IP, n, w.max)
	}
	if id.Net.IsValid() {
		w.net.add(id.Net, n, w.max)
	}
}

// Transient reports true: the Watch keeps of an Access only its
// Identity's values (app and account as map keys, addresses as netip
// values), so the gateway may reuse an Access's memory once it is counted
// (gateway.Transient).
func (w *Watch) Transient() bool { return true }

// Top returns up to n values of facet f, most records first.
func (w *Watch) Top(f identify.Facet, n int) []string {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	var all []counted
	switch f {
	case identify.FacetApp:
		all = w.app.all(func(s string) string { return s })
	case identify.FacetAccount:
		all = w.account.all(func(s string) string { return s })
	case identify.FacetIP:
		all = w.ip.all(netip.Addr.String)
	case identify.FacetNet:
		all = w.net.all(netip.Prefix.String)
	case identify.FacetFingerprint: // not watched
	default:
		w.mu.Unlock()
		return nil
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

// counted is a value, as a string, with its count.
type counted struct {
	v string
	c uint64
}

// table is one facet's bounded count: its values in slots, a map from a
// value to its slot, and the slot of the last value counted.
type table[K comparable] struct {
	idx   map[K]int32
	keys  []K
	count []uint64
	last  int32  // -1: none
	rng   uint64 // xorshift state of the eviction's sample
}

func (t *table[K]) init(seed uint64) {
	t.idx, t.last, t.rng = map[K]int32{}, -1, 0x9e3779b97f4a7c15*seed
}

// add counts n for k in a table of at most max values.
func (t *table[K]) add(k K, n uint64, max int) {
	if t.last >= 0 && t.keys[t.last] == k {
		t.count[t.last] += n
		return
	}
	if i, ok := t.idx[k]; ok {
		t.count[i] += n
		t.last = i
		return
	}
	if len(t.keys) < max {
		t.idx[k] = int32(len(t.keys))
		t.last = int32(len(t.keys))
		t.keys, t.count = append(t.keys, k), append(t.count, n)
		return
	}
	// Full: the smallest of a few slots drawn at random gives its place,
	// with its count, so a miss costs a few steps, not a scan of the
	// table: with addresses rotating, nearly every Access misses.
	j := -1
	for range evictSample {
		t.rng ^= t.rng << 13
		t.rng ^= t.rng >> 7
		t.rng ^= t.rng << 17
		if s := int(t.rng % uint64(len(t.keys))); j < 0 || t.count[s] < t.count[j] {
			j = s
		}
	}
	delete(t.idx, t.keys[j])
	t.idx[k] = int32(j)
	t.keys[j] = k
	t.count[j] += n
	t.last = int32(j)
}

// all is every value counted, as str spells it.
func (t *table[K]) all(str func(K) string) []counted {
	out := make([]counted, len(t.keys))
	for i, k := range t.keys {
		out[i] = counted{str(k), t.count[i]}
	}
	return out
}
