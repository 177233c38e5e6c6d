package dashboard

import (
	"context"
	"math/bits"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/ledger"
)

// watched are the facets the identities page ranks.
var watched = []identify.Facet{identify.FacetAccount, identify.FacetApp, identify.FacetIP, identify.FacetNet}

// Watch nominates the identities the identities page shows: per facet,
// the values served the most records, of any class and of each class
// (records of the class served unmasked), kept in a bounded table (space
// saving, approximate: a new value takes the place of the least of a few
// sampled, with its counts).
// It is a gateway.Recorder, fed off the request path. It only nominates:
// the figures the page shows are the ledger's.
//
// It runs on every Access the gateway records, so it is kept cheap:
// addresses and networks are counted as netip values (the string of one is
// made only when a page asks), each facet's table finds a value with one
// map look-up and counts every class in place (one slot a value, its
// counts side by side), the value an Access repeats from the one before
// (the same client, the same address) is counted without a look-up, and a
// route's classes are mapped to the Watch's once (the route's class list
// is one slice, shared by its Accesses).
type Watch struct {
	mu      sync.Mutex
	max     int
	app     table[string]
	account table[string]
	ip      table[netip.Addr]
	net     table[netip.Prefix]
	// classes are the class names counted, by index-1 of a slot's counts
	// (0: any class), in the order first served; at most watchClasses.
	classes []string
	total   [stride]uint64 // per count, every value's together
	share   [stride]uint64 // 2^40/total: count*share is a value's share of a count, for the eviction
	records uint64         // Accesses counted
	routes  map[*string][]int8
	recent  [4]routeMap // the routes last seen, looked at before the map
	next    int         // the slot of recent the next route takes
}

// routeMap is a route's class list (its first element) and its map.
type routeMap struct {
	key *string
	m   []int8
}

// watchClasses bounds the classes the Watch counts one by one (a route
// map names a few: the lab's contact and profile); a class past it is
// nominated by records of any class (Top says so). Each more costs a
// slot 8 bytes: BenchmarkRecorders/watch measured 7 (64-byte slots) at
// about 1.2x the cost of 3 (32), the slots' cache lines the difference.
const watchClasses = 3

// stride is a slot's counts: any class, then each class.
const stride = 1 + watchClasses

// maxRoutes bounds the routes' class maps kept (one per route of the
// route map; an Access built elsewhere, a test's, brings its own slice).
const maxRoutes = 256

// evictSample is how many values a full table looks at to choose the one
// a new value replaces.
const evictSample = 8

// NewWatch keeps up to max values per facet (0: 1024).
func NewWatch(max int) *Watch {
	if max <= 0 {
		max = 1024
	}
	w := &Watch{max: max, routes: map[*string][]int8{}}
	w.app.init(1)
	w.account.init(2)
	w.ip.init(3)
	w.net.init(4)
	return w
}

// Record counts the records acc served to each of its facets' values: in
// all, and per class served unmasked.
func (w *Watch) Record(acc *inspect.Access) {
	id := &acc.Identity
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.classMap(acc.Classes)
	// n[0] is the records served any class; n[c] those served class c
	// (a class not counted one by one adds to n[0], then overwritten).
	// A page's records mostly share their served classes: each run of
	// one set is counted per class once.
	var n [stride]uint64
	all := uint64(0)
	run, set := uint64(0), inspect.ClassSet(0)
	for _, r := range acc.Records {
		s := r.Served()
		if s == 0 {
			continue
		}
		all++
		if s != set {
			countRun(&n, m, set, run)
			run, set = 0, s
		}
		run++
	}
	if all == 0 {
		return
	}
	countRun(&n, m, set, run)
	n[0] = all
	w.records++
	k := 1 + len(w.classes)
	for c := range k {
		w.total[c] += n[c]
	}
	if w.records%reweigh == 0 || w.records&(w.records-1) == 0 {
		// The shares a full table weighs its values by move slowly: a
		// division per count every reweigh Accesses, not on each (and at
		// each power of two before, while the totals are small).
		for c, t := range w.total {
			if t != 0 {
				w.share[c] = 1 << 40 / t
			}
		}
	}
	if id.App != "" {
		w.app.add(id.App, &n, k, w.max, &w.share)
	}
	if id.Account != "" {
		w.account.add(id.Account, &n, k, w.max, &w.share)
	}
	if id.IP.IsValid() {
		w.ip.add(id.IP, &n, k, w.max, &w.share)
	}
	if id.Net.IsValid() {
		w.net.add(id.Net, &n, k, w.max, &w.share)
	}
}

// Seed counts the Accesses the ledger directory dir holds in win as
// Record counts the gateway's. A Watch is memory only: warden serve seeds
// a new one with the 24 hours before it started, the hours the identities
// page ranks, since without that a restart made the page forget every
// identity it had not seen since (a deploy hid the day's harvester). It
// reads one partition decoded at a time and stops when ctx ends; it
// returns the Accesses read.
func (w *Watch) Seed(ctx context.Context, dir string, win ledger.Window) (int, error) {
	rd, err := ledger.OpenReader(dir, win)
	if err != nil {
		return 0, err
	}
	defer rd.Close()
	n := 0
	var acc inspect.Access
	// The gateway's Accesses of a route share its class list, which
	// classMap keys by; the ledger's entries each bring their own.
	lists := map[string][]string{}
	rd.Each(func(e *ledger.Entry) bool {
		if ctx.Err() != nil {
			return false
		}
		key := strings.Join(e.Classes, "\x00")
		cl, ok := lists[key]
		if !ok {
			if len(lists) >= maxRoutes {
				clear(lists)
			}
			cl = e.Classes
			lists[key] = cl
		}
		acc.Identity, acc.Classes, acc.Records = e.Who(), cl, acc.Records[:0]
		for _, r := range e.Records {
			acc.Records = append(acc.Records, inspect.Record{ID: r.ID, Classes: inspect.ClassSet(r.Classes), Masked: inspect.ClassSet(r.Masked)})
		}
		w.Record(&acc)
		n++
		return true
	})
	if err := rd.Err(); err != nil {
		return n, err
	}
	return n, ctx.Err()
}

// countRun adds run records served set to n, by the route's class map m.
func countRun(n *[stride]uint64, m []int8, set inspect.ClassSet, run uint64) {
	for ; set != 0; set &= set - 1 {
		if b := bits.TrailingZeros64(uint64(set)); b < len(m) {
			n[m[b]] += run
		}
	}
}

// reweigh is how many Accesses pass between two updates of the shares.
const reweigh = 64

// classMap is, for a route's class list, each class's count index (0: not
// counted one by one), made on the route's first Access. w.mu is held.
func (w *Watch) classMap(classes []string) []int8 {
	if len(classes) == 0 {
		return nil
	}
	key := &classes[0]
	for _, r := range w.recent {
		if r.key == key {
			return r.m
		}
	}
	m, ok := w.routes[key]
	if !ok {
		if len(w.routes) >= maxRoutes {
			clear(w.routes)
		}
		m = make([]int8, len(classes))
		for b, name := range classes {
			i := slices.Index(w.classes, name)
			if i < 0 && len(w.classes) < watchClasses {
				w.classes = append(w.classes, name)
				i = len(w.classes) - 1
			}
			m[b] = int8(i + 1) // 0 when not counted
		}
		w.routes[key] = m
	}
	w.recent[w.next] = routeMap{key, m}
	w.next = (w.next + 1) % len(w.recent)
	return m
}

// Transient reports true: the Watch keeps of an Access only its
// Identity's values (app and account as map keys, addresses as netip
// values) and its route's class list (the route map's, not the
// Access's), so the gateway may reuse an Access's memory once it is
// counted (gateway.Transient).
func (w *Watch) Transient() bool { return true }

// Top returns up to n values of facet f, most records of class served
// first ("": of any class), those never served it left out. ok is false
// when the Watch does not count class one by one (it counts the first
// watchClasses classes served): the values are then ranked by records of
// any class.
func (w *Watch) Top(f identify.Facet, class string, n int) (top []string, ok bool) {
	if w == nil {
		return nil, true
	}
	w.mu.Lock()
	c := 0
	if class != "" {
		c = slices.Index(w.classes, class) + 1
	}
	var all []counted
	switch f {
	case identify.FacetApp:
		all = w.app.all(c, func(s string) string { return s })
	case identify.FacetAccount:
		all = w.account.all(c, func(s string) string { return s })
	case identify.FacetIP:
		all = w.ip.all(c, netip.Addr.String)
	case identify.FacetNet:
		all = w.net.all(c, netip.Prefix.String)
	case identify.FacetFingerprint: // not watched
	default:
		w.mu.Unlock()
		return nil, true
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
	return out, class == "" || c > 0
}

// counted is a value, as a string, with its count.
type counted struct {
	v string
	c uint64
}

// table is one facet's bounded count: its values in slots, each slot's
// counts (stride of them: any class, then each class) side by side, a map
// from a value to its slot, and the slot of the last value counted.
type table[K comparable] struct {
	idx   map[K]int32
	keys  []K
	count []uint64 // stride per slot
	last  int32    // -1: none
	rng   uint64   // xorshift state of the eviction's sample
}

func (t *table[K]) init(seed uint64) {
	t.idx, t.last, t.rng = map[K]int32{}, -1, 0x9e3779b97f4a7c15*seed
}

// add counts n for k in a table of at most max values; share is 2^40
// over each count's total, what a full table weighs its values by, the
// first used of them (any class, then the classes counted so far).
func (t *table[K]) add(k K, n *[stride]uint64, used, max int, share *[stride]uint64) {
	i := t.last
	switch {
	case i >= 0 && t.keys[i] == k:
	case len(t.idx) > 0 && t.has(k, &i):
	case len(t.keys) < max:
		i = int32(len(t.keys))
		t.idx[k] = i
		t.keys = append(t.keys, k)
		t.count = append(t.count, make([]uint64, stride)...)
	default:
		i = t.evict(k, used, share)
	}
	t.last = i
	c := (*[stride]uint64)(t.count[int(i)*stride:])
	for j := range c {
		c[j] += n[j]
	}
}

func (t *table[K]) has(k K, i *int32) bool {
	j, ok := t.idx[k]
	if ok {
		*i = j
	}
	return ok
}

// evict gives k the place of the least of a few slots drawn at random,
// with its counts, so a miss costs a few steps, not a scan of the table:
// with addresses rotating, nearly every Access misses. A slot weighs its
// largest share of any count's total: a value high in one class's ranking
// (contact details, say) is kept however few records of other classes it
// took, where its records of all classes together would rank it low.
func (t *table[K]) evict(k K, used int, share *[stride]uint64) int32 {
	j, least := -1, uint64(0)
	for range evictSample {
		t.rng ^= t.rng << 13
		t.rng ^= t.rng >> 7
		t.rng ^= t.rng << 17
		s := int(t.rng % uint64(len(t.keys)))
		c := t.count[s*stride : s*stride+used]
		wt := uint64(0)
		for x, v := range c {
			// A count is at most its total (then 2^40): no overflow
			// below 2^24 times the total (stale shares, reweigh).
			wt = max(wt, v*share[x])
		}
		if j < 0 || wt < least {
			j, least = s, wt
		}
	}
	delete(t.idx, t.keys[j])
	t.idx[k] = int32(j)
	t.keys[j] = k
	return int32(j)
}

// all is every value counted in count c (0: any class) with a count, as
// str spells it.
func (t *table[K]) all(c int, str func(K) string) []counted {
	out := make([]counted, 0, len(t.keys))
	for i, k := range t.keys {
		if n := t.count[i*stride+c]; n > 0 {
			out = append(out, counted{str(k), n})
		}
	}
	return out
}
