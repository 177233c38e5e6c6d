package detect

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/ration"
	"github.com/warden-gw/warden/internal/refusal"
	"github.com/warden-gw/warden/internal/shadow"
	"github.com/warden-gw/warden/internal/store"
)

// Store is where bans go.
type Store interface {
	PutBan(ctx context.Context, b store.Ban) error
}

// Allow is an allowlist entry (config allow): its identities are never
// banned by the rules it names (every rule when Rules is empty).
type Allow struct {
	CIDRs, Apps, Accounts, Rules []string
}

// Metrics are the detector's counters, created once per process.
type Metrics struct {
	bans      *prometheus.CounterVec
	errs      prometheus.Counter
	tracked   prometheus.Gauge
	calls     *prometheus.CounterVec
	storeErrs *prometheus.CounterVec
	dropped   prometheus.Counter
}

// NewMetrics registers the detector's metrics on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		bans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_detect_bans_total",
			Help: "Bans the detector wrote, by rule and facet.",
		}, []string{"rule", "facet"}),
		errs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_detect_ban_errors_total",
			Help: "Bans the detector could not write to the store.",
		}),
		tracked: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "warden_detect_tracked",
			Help: "Facet values the detector keeps state for (bounded by detect.max_tracked).",
		}),
	}
	m.calls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_detect_store_calls_total",
		Help: "Calls the detector made to the shared store (Redis), by operation: observe (one per flush of at most 512 observations), offend (one per ban).",
	}, []string{"op"})
	m.storeErrs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_detect_store_errors_total",
		Help: "Shared-store calls of the detector that failed, by operation; it decided on this gateway's own counts meanwhile.",
	}, []string{"op"})
	m.dropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "warden_detect_store_dropped_total",
		Help: "Observations not sent to the shared store because it lagged (more than 4096 waiting); this gateway's own counts still had them.",
	})
	if reg != nil {
		reg.MustRegister(m.bans, m.errs, m.tracked, m.calls, m.storeErrs, m.dropped)
	}
	return m
}

// Detector is a gateway Recorder. Record is called from one goroutine at
// a time (the recording's); Banned and Tracked may be called from others.
type Detector struct {
	cfg   Config
	rules []*rule
	enums int // enumeration rules: a track's tallies, one per
	st    Store
	sh    *shadow.Shadow
	log   *slog.Logger
	m     *Metrics
	ex    exempt
	allow []allowEntry

	mu     sync.Mutex
	tracks map[trackKey]*track
	// The tracks, most recently moved first (the back is dropped past
	// max_tracked); gets counts look-ups (see get).
	front, back *track
	gets        uint64
	// wins is how many windows a track of each facet holds: one per rule
	// of that facet (rule.slot).
	wins     [8]int
	offences map[store.BanKey]*offence
	shadowed map[shadowKey]time.Time // no second shadow line before

	arena exportArena // ExportDetect's copy, reused

	fleet *fleet // nil: counts and histories in this process only (memory store)
	// banMu serialises bans (the recording's and the fleet flusher's), so
	// one offence is never escalated twice while the store is asked.
	banMu sync.Mutex
}

type rule struct {
	Rule
	idx  int
	slot int // its window in a track of its facet (track.wins)
	// allow: the allowlist entries that name this rule (or every rule),
	// found once: most name only rate limits, and comparing names on
	// every Access cost string compares per rule.
	allow  []*allowEntry
	facet  identify.Facet
	shadow prometheus.Counter
	// Enumeration: the rule's tallies in a track (track.enum[enum]), and
	// their buckets' width (store.TallyWidth of Window).
	enum  int
	width int64
	// provs: a cohort's counted provenances (Access.Provenance values);
	// nil: every served answer but a social look-up.
	provs []string
}

// counts says whether a cohort rule counts an Access of provenance prov.
func (r *rule) counts(prov string) bool {
	if r.provs == nil {
		return prov != socialProvenance
	}
	return slices.Contains(r.provs, prov)
}

type exempt struct {
	apps, accounts []string
	cidrs          []netip.Prefix
}

type allowEntry struct {
	exempt
	rules []string
}

func newExempt(apps, accounts, cidrs []string) exempt {
	x := exempt{apps: apps, accounts: accounts}
	for _, c := range cidrs {
		if p, err := parseCIDR(c); err == nil {
			x.cidrs = append(x.cidrs, p)
		}
	}
	return x
}

func (x *exempt) has(id *identify.Identity) bool {
	if id.App != "" && slices.Contains(x.apps, id.App) || id.Account != "" && slices.Contains(x.accounts, id.Account) {
		return true
	}
	if id.IP.IsValid() {
		ip := id.IP.Unmap()
		for _, p := range x.cidrs {
			if p.Contains(ip) {
				return true
			}
		}
	}
	return false
}

// offence is a value's ban history: how many bans, and until when the
// last holds (no second ban while one holds).
type offence struct {
	n      int
	until  time.Time
	seen   time.Time
	banned time.Time // when this gateway wrote the latest ban or learnt of it
	// everyone: the latest ban was address_after's, for everyone on the
	// address (a ban for its anonymous traffic spares its accounts).
	everyone bool
}

// liftGrace is how long after writing a ban the detector still expects
// Accesses its value was admitted for: those admitted before the ban took
// effect, recorded after it (a slow upstream, the recording queue).
const liftGrace = 5 * time.Second

// lifted reports that the ban o holds for f's value is no longer in force:
// acc, of that value, was not refused by a ban although it came more than
// liftGrace after this gateway wrote the ban (or learnt of another's). An operator lifted it
// (warden ban rm), or its write was lost; either way the value may be
// banned again, as its next offence.
func lifted(o *offence, acc *inspect.Access, f firing) bool {
	return !o.banned.IsZero() && acc.Rule != refusal.RuleBan && acc.Time.Sub(o.banned) > liftGrace &&
		acc.Identity.Value(f.facet) == f.value
}

// trackKey names a track: a facet value's (the rules counting by it), a
// cohort's, or an address's accounts. A struct, not a joined string, so a
// look-up allocates nothing.
type trackKey struct {
	kind  trackKind
	facet identify.Facet
	value string
}

type trackKind uint8

const (
	trackFacet    trackKind = iota // the rules of facet, by value
	trackCohort                    // a cohort rule's accounts on facet's value
	trackAccounts                  // accounts seen on an address (address_after)
)

// shadowKey is a shadow rule's firing on a facet value: one line per
// window (Detector.shadowed).
type shadowKey struct {
	rule         int
	facet, value string
}

// track is the detector's state for one facet value. What every Access
// of the value touches comes first (the windows, the tallies, the recency
// stamp), in one allocation.
type track struct {
	wins []window // per rule of the facet (rule.slot)
	// Enumeration's ratio, per enumeration rule: look-ups in the window
	// and those of ids never shown (made on first use).
	enum []lookTally
	// When the track last moved to the front of the recency list
	// (Detector.gets), and its neighbours there.
	moved      uint64
	prev, next *track
	// wins and enum live here when they fit (lab.yaml: an account's 4
	// windows, 1 tally pair): the lines an Access touches side by side,
	// where three allocations were apart.
	winBuf  [4]window
	enumBuf [1]lookTally
	key     trackKey
	// Provenance for fanout: the list answer each shown id came from, and
	// per list answer the people opened from it.
	shown    map[uint64]uint32
	nextList uint32
	opened   map[uint64]*window // rule index<<32 | list answer
	// Accounts seen on an address, and which the detector banned.
	accounts map[string]bool
	acctSeen time.Time
}

// lookTally is an enumeration rule's look-ups by one identity within its
// window, all and those of ids never shown, counted in the same buckets:
// 160 bytes however many.
type lookTally struct{ all, unreferenced store.Tally }

const (
	maxShown = 1024
	maxLists = 64
	maxAccts = 16
)

// Option changes how a Detector is built.
type Option func(*Detector)

// New builds a detector for cfg (validated by config) writing bans to st.
func New(cfg Config, allows []Allow, st Store, sh *shadow.Shadow, m *Metrics, log *slog.Logger, opts ...Option) (*Detector, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("detect: %w", err)
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Detector{cfg: cfg, st: st, sh: sh, log: log, m: m,
		ex:     newExempt(cfg.Exempt.Apps, cfg.Exempt.Accounts, cfg.Exempt.CIDRs),
		tracks: map[trackKey]*track{}, offences: map[store.BanKey]*offence{}, shadowed: map[shadowKey]time.Time{}}
	for i, rc := range cfg.Rules {
		f, _ := identify.ParseFacet(rc.Facet)
		r := &rule{Rule: rc, idx: i, facet: f}
		for _, p := range rc.Provenance {
			r.provs = append(r.provs, string(p))
		}
		if int(f) < len(d.wins) {
			r.slot = d.wins[f]
			d.wins[f]++
		}
		if rc.Kind == Enumeration {
			r.enum, r.width = d.enums, store.TallyWidth(rc.Window)
			d.enums++
		}
		if rc.Mode == ration.Shadow {
			r.shadow = sh.Counter(rc.Name, shadow.Ban)
		}
		d.rules = append(d.rules, r)
	}
	d.setAllows(allows)
	for _, o := range opts {
		o(d)
	}
	if d.fleet != nil && !d.fleet.manual {
		go d.fleet.run(d)
	}
	return d, nil
}

// window holds the distinct keys seen within a sliding window, oldest
// first, at most limit+1 of them. It is a ring that grows to limit+1 slots:
// the expired and, past the bound, the oldest leave from the head and a key
// joins at the tail, nothing moved and nothing allocated once grown (a key
// seen again moves to the tail, shifting only the slots after it). Every
// Access adds to a few windows on the recording goroutine, whose CPU the
// request path shares.
type window struct {
	ring    []slot
	head, n int
	// quiet: a rule in shadow mode fired on this window's value until
	// then (Unix ns), and its line is written (see Detector.fires).
	quiet int64
}

// slot is a key and when it was last seen, Unix ns: 16 bytes, compared as
// integers (a time.Time is 24 and its Sub checks monotonic readings).
type slot struct {
	key uint64
	at  int64
}

// slot returns the i-th oldest slot.
func (w *window) slot(i int) *slot {
	i += w.head
	if i >= len(w.ring) {
		i -= len(w.ring)
	}
	return &w.ring[i]
}

// expire drops the keys last seen more than span before now.
func (w *window) expire(now, span int64) {
	for w.n > 0 && now-w.ring[w.head].at > span {
		w.pop()
	}
}

func (w *window) pop() {
	if w.head++; w.head == len(w.ring) {
		w.head = 0
	}
	w.n--
}

// push appends key at the tail, dropping the oldest past limit+1 keys.
func (w *window) push(key uint64, now int64, limit int) {
	bound := max(limit, 0) + 1
	if w.n >= bound {
		w.pop()
	}
	if w.n == len(w.ring) {
		ring := make([]slot, min(max(4, 2*len(w.ring)), bound))
		for i := range w.n {
			ring[i] = *w.slot(i)
		}
		w.ring, w.head = ring, 0
	}
	*w.slot(w.n) = slot{key: key, at: now}
	w.n++
}

// add notes key at now (Unix ns) and returns how many distinct keys the
// window holds; a key seen again moves to now.
func (w *window) add(key uint64, now, span int64, limit int) int {
	w.expire(now, span)
	if i := w.index(key); i >= 0 {
		for ; i+1 < w.n; i++ {
			*w.slot(i) = *w.slot(i + 1)
		}
		*w.slot(w.n - 1) = slot{key: key, at: now}
		return w.n
	}
	w.push(key, now, limit)
	return w.n
}

// tick notes an event at now (one never seen before, so nothing is looked
// up) and returns how many the window holds, at most limit+1.
func (w *window) tick(now, span int64, limit int) int {
	w.expire(now, span)
	w.push(0, now, limit)
	return w.n
}

// within reports whether the window holds key, seen within span before
// now (Unix ns).
func (w *window) within(key uint64, now, span int64) bool {
	if w.n == 0 {
		return false
	}
	i := w.index(key)
	return i >= 0 && now-w.slot(i).at <= span
}

// index is the position of key from the oldest, -1 when absent: the ring
// scanned as its two runs.
func (w *window) index(key uint64) int {
	first := w.ring[w.head:min(w.head+w.n, len(w.ring))]
	for i := range first {
		if first[i].key == key {
			return i
		}
	}
	rest := w.ring[:w.n-len(first)]
	for i := range rest {
		if rest[i].key == key {
			return len(first) + i
		}
	}
	return -1
}

// get returns the track of key, made (and the least recent one dropped
// past max_tracked) when absent. Called with mu held.
//
// A track found moves to the front of the recency list only when it has
// not moved within the last max_tracked/4 look-ups: moving writes its
// neighbours' links, cache lines the Access has no other use for, and a
// track that moved that recently is within the front quarter of the list
// (each look-up moves at most one track ahead of it), so it is never the
// one dropped. Past that the order is by last move, not last use.
func (d *Detector) get(key trackKey) *track {
	d.gets++
	if t, ok := d.tracks[key]; ok {
		if d.gets-t.moved > uint64(d.cfg.MaxTracked/4) {
			d.unlink(t)
			d.pushFront(t)
		}
		return t
	}
	// The value may share memory with the whole Access (a token's
	// claims): a track keeps a copy of its own.
	key.value = strings.Clone(key.value)
	n := 0
	if key.kind != trackAccounts && int(key.facet) < len(d.wins) {
		n = d.wins[key.facet]
	}
	t := &track{key: key}
	if n <= len(t.winBuf) {
		t.wins = t.winBuf[:n:n]
	} else {
		t.wins = make([]window, n)
	}
	d.tracks[key] = t
	d.pushFront(t)
	for len(d.tracks) > d.cfg.MaxTracked {
		old := d.back
		d.unlink(old)
		delete(d.tracks, old.key)
	}
	d.m.tracked.Set(float64(len(d.tracks)))
	return t
}

// pushFront puts t at the front of the recency list.
func (d *Detector) pushFront(t *track) {
	t.prev, t.next, t.moved = nil, d.front, d.gets
	if d.front != nil {
		d.front.prev = t
	}
	d.front = t
	if d.back == nil {
		d.back = t
	}
}

// unlink takes t out of the recency list.
func (d *Detector) unlink(t *track) {
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		d.front = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	} else {
		d.back = t.prev
	}
	t.prev, t.next = nil, nil
}

// Tracked is how many facet values the detector keeps state for.
func (d *Detector) Tracked() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.tracks)
}

// hash maps an id (or a username) to a key: ration's subject mapping.
func hash(s string) uint64 { return ration.Subject([]byte(s)) }

// subject is the identity a rule counts by for acc: the account for
// account rules; for ip and net rules only anonymous requests (accounts
// are judged by their own rules: no account pays for its neighbours).
func subject(r *rule, id *identify.Identity) (facet identify.Facet, value string) {
	if r.facet != identify.FacetAccount && r.facet != identify.FacetApp && id.Account != "" && r.Kind != Cohort {
		return 0, ""
	}
	return r.facet, id.Value(r.facet)
}

// Transient reports that Record keeps nothing of an Access past the call
// (gateway.Transient: the gateway may reuse its memory): true on the
// memory store, where every count is made in Record and a track keeps
// copies (hashes of ids, its own copy of the value); false with a shared
// store, whose queued observations keep their Access until flushed.
func (d *Detector) Transient() bool { return d.fleet == nil }

// Record watches one Access. It never blocks on anything but the store's
// PutBan when a rule fires. It allocates nothing for an Access that makes
// no new track and fires no rule (bench row e-prov's cost: every Access
// goes through here on the recording goroutine).
func (d *Detector) Record(acc *inspect.Access) {
	if acc == nil {
		return
	}
	id := &acc.Identity
	if d.ex.has(id) {
		return
	}
	now := acc.Time
	ns := now.UnixNano()
	var servedBuf [8]uint64
	served := d.served(acc, servedBuf[:0])
	// Warden's refusals only: an upstream's own 403 or 429, passed on,
	// carries no rule (a platform forbidding a private profile is no
	// limit the client ignored).
	refused := acc.Rule != "" && (acc.Status == 429 || acc.Status == 403)
	var fireBuf [4]firing
	fire := fireBuf[:0]
	var share []observed // for the shared store: nil without one
	// The rules of one facet share its value's track: looked up once.
	var tracks [8]*track
	get := func(f identify.Facet, v string) *track {
		if int(f) >= len(tracks) {
			return d.get(trackKey{facet: f, value: v})
		}
		if tracks[f] == nil {
			tracks[f] = d.get(trackKey{facet: f, value: v})
		}
		return tracks[f]
	}
	d.mu.Lock()
	for _, r := range d.rules {
		if r.allowed(id) {
			continue
		}
		span := int64(r.Window)
		switch r.Kind {
		case Velocity:
			f, v := subject(r, id)
			if v == "" || len(served) == 0 {
				continue
			}
			t := get(f, v)
			n := 0
			for _, s := range served {
				n = t.wins[r.slot].add(s, ns, span, r.Limit)
				if d.fleet != nil {
					share = append(share, observed{Observation: store.Observation{Key: r.key("people", f, v), Member: s, At: now, Window: r.Window, Limit: r.Limit},
						r: r, facet: f, value: v, acc: acc})
				}
			}
			if n > r.Limit {
				fire = d.fires(fire, &t.wins[r.slot], ns, firing{r: r, facet: f, value: v, n: n})
			}
		case Persistence:
			f, v := subject(r, id)
			if v == "" || !refused || acc.Rule == refusal.RuleBan {
				continue
			}
			t := get(f, v)
			if d.fleet != nil {
				share = append(share, observed{Observation: store.Observation{Key: r.key("refused", f, v), Member: d.fleet.event(), At: now, Window: r.Window, Limit: r.Limit},
					r: r, facet: f, value: v, acc: acc})
			}
			if n := t.wins[r.slot].tick(ns, span, r.Limit); n > r.Limit {
				fire = d.fires(fire, &t.wins[r.slot], ns, firing{r: r, facet: f, value: v, n: n, refusal: acc.Rule})
			}
		case Enumeration:
			f, v := subject(r, id)
			if v == "" || acc.Lookup == "" || refused {
				continue
			}
			t := get(f, v)
			// The ratio is of every look-up in the window, counted in
			// bucketed tallies (bounded however many); the distinct
			// never-shown ids need only be known past the limit: the
			// window ring, capped at limit+1. (A count capped on either
			// side of the ratio makes it meaningless: issue 22.)
			if t.enum == nil {
				if d.enums <= len(t.enumBuf) {
					t.enum = t.enumBuf[:d.enums:d.enums]
				} else {
					t.enum = make([]lookTally, d.enums)
				}
			}
			lt := &t.enum[r.enum]
			looks := lt.all.Add(ns, r.width, 1)
			if d.fleet != nil {
				lk := r.key("tally-lookups", f, v)
				share = append(share, observed{Observation: store.Observation{Key: lk, At: now, Window: r.Window, Tally: true}, r: r, tally: true})
				if acc.Unreferenced {
					uk := r.key("tally-unreferenced", f, v)
					share = append(share,
						observed{Observation: store.Observation{Key: uk, At: now, Window: r.Window, Tally: true}, r: r, tally: true},
						observed{Observation: store.Observation{Key: r.key("unreferenced", f, v), Member: hash(acc.Lookup), At: now, Window: r.Window, Limit: r.Limit},
							r: r, facet: f, value: v, acc: acc, looksKey: lk, unrefKey: uk})
				}
			}
			if !acc.Unreferenced {
				continue
			}
			unref := lt.unreferenced.Add(ns, r.width, 1)
			if n := t.wins[r.slot].add(hash(acc.Lookup), ns, span, r.Limit); n > r.Limit && float64(unref) >= r.Ratio*float64(looks) {
				fire = d.fires(fire, &t.wins[r.slot], ns, firing{r: r, facet: f, value: v, n: n, looks: looks, unref: unref})
			}
		case Fanout:
			f, v := subject(r, id)
			if v == "" {
				continue
			}
			t := get(f, v)
			if acc.Lookup == "" && len(acc.Links) > 1 {
				t.noteList(acc.Links)
				continue
			}
			// A person opening its own feed and network (social, as the
			// link memory knows it) is no fan-out over a list: the per-answer
			// cap never counts it either.
			if acc.Lookup == "" || len(served) == 0 || t.shown == nil || acc.Provenance == socialProvenance {
				continue
			}
			list, ok := t.shown[hash(acc.Lookup)]
			if !ok {
				continue
			}
			k := uint64(r.idx)<<32 | uint64(list)
			w := t.opened[k]
			if w == nil {
				if len(t.opened) >= maxLists {
					clear(t.opened)
				}
				w = &window{}
				t.opened[k] = w
			}
			if n := w.add(served[0], ns, span, r.Limit); n > r.Limit {
				fire = append(fire, firing{r: r, facet: f, value: v, n: n})
			}
		case Cohort:
			v := id.Value(r.facet)
			age, known := id.AccountAge(now)
			// A new user opening people from its own feed and network
			// (social) is no sign-up going for strangers' contact data:
			// honest new users behind one NAT or /24 are not a cohort
			// (nor, with provenance [list, unreferenced], those who
			// search for the people they know).
			if v == "" || id.Account == "" || !known || age >= r.Young || len(served) == 0 || !r.counts(acc.Provenance) {
				continue
			}
			t := d.get(trackKey{kind: trackCohort, facet: r.facet, value: v})
			if t.accounts == nil {
				t.accounts = map[string]bool{}
			}
			if len(t.accounts) < 4*r.Limit+4 {
				t.accounts[id.Account] = true
			}
			if d.fleet != nil {
				share = append(share, observed{Observation: store.Observation{Key: r.key("young", r.facet, v), Member: hash(id.Account), At: now, Window: r.Window, Limit: r.Limit},
					r: r, facet: r.facet, value: v, acc: acc})
			}
			if n := t.wins[r.slot].add(hash(id.Account), ns, span, r.Limit); n > r.Limit {
				fire = append(fire, d.cohort(r, v, n, id.Account, ns)...)
			}
		}
	}
	// Accounts seen on the address, for an address ban when all of them
	// misbehave.
	if id.Account != "" && id.IP.IsValid() && d.cfg.AddressAfter > 0 {
		t := d.get(trackKey{kind: trackAccounts, facet: identify.FacetIP, value: id.Value(identify.FacetIP)})
		if t.accounts == nil || now.Sub(t.acctSeen) > time.Hour {
			t.accounts = map[string]bool{}
		}
		t.acctSeen = now
		if _, ok := t.accounts[id.Account]; !ok && len(t.accounts) < maxAccts {
			t.accounts[id.Account] = false
		}
	}
	d.mu.Unlock()
	for _, f := range fire {
		d.ban(acc, f)
	}
	// After the local bans: the fleet's count then finds them written
	// and bans nothing twice.
	if d.fleet != nil {
		d.fleet.add(d, share)
	}
}

// fires appends f, of a rule counting in w, unless its rule is in shadow
// mode and fired on w's value within the window: its line is written, and
// ban would only find that in d.shadowed (two locks and a map look-up by
// string, per Access of an identity that keeps going: since issue 22 the
// lab's enumeration rule, in shadow mode in bench row e-prov, fires on
// every look-up of a harvester). Called with mu held.
func (d *Detector) fires(fire []firing, w *window, ns int64, f firing) []firing {
	if f.r.shadow != nil {
		if ns < w.quiet {
			return fire
		}
		w.quiet = ns + int64(f.r.Window)
	}
	return append(fire, f)
}

// cohort is the firings of cohort rule r on value v past its limit (n
// young accounts) at ns: a ban of each young account seen there within the
// rule's window (an account served there before the window, young still,
// is no part of this cohort, and is forgotten). On a fleet this gateway
// knows only the accounts it saw; the others are banned by the gateways
// that see them. Called with mu held.
func (d *Detector) cohort(r *rule, v string, n int, account string, ns int64) []firing {
	why := fmt.Sprintf("one of %d accounts younger than %v served %s from %s %s within %v (limit %d)", n, r.Young, d.cfg.Class, r.facet, v, r.Window, r.Limit)
	var out []firing
	seen := false
	if t, ok := d.tracks[trackKey{kind: trackCohort, facet: r.facet, value: v}]; ok {
		w := &t.wins[r.slot]
		for a := range t.accounts {
			if !w.within(hash(a), ns, int64(r.Window)) {
				delete(t.accounts, a)
				continue
			}
			out = append(out, firing{r: r, facet: identify.FacetAccount, value: a, why: why})
			seen = seen || a == account
		}
	}
	if !seen && account != "" {
		out = append(out, firing{r: r, facet: identify.FacetAccount, value: account, why: why})
	}
	return out
}

// firing is a rule that fired on a facet value, with its figures. The
// evidence is written from them only when a ban or a shadow line needs it:
// a rule in shadow mode fires on every Access past its limit, and a line
// is written once per value and window.
type firing struct {
	r       *rule
	facet   identify.Facet
	value   string
	n       int
	looks   int // enumeration: look-ups in the window, and of ids never shown
	unref   int
	refusal string
	why     string // set: the evidence as it is
	fleet   bool   // counted in the shared store: on every gateway
	// everyone: an address banned because every account seen on it was
	// (address_after), so the ban refuses accounts on it too.
	everyone bool
}

// evidence is the firing's reason in words, for class (the detector's).
func (f *firing) evidence(class string) string {
	e := f.words(class)
	if f.fleet {
		e += ", counted on every gateway"
	}
	return e
}

func (f *firing) words(class string) string {
	if f.why != "" {
		return f.why
	}
	r := f.r
	switch r.Kind {
	case Velocity:
		return fmt.Sprintf("%s of %d distinct people within %v (limit %d)", class, f.n, r.Window, r.Limit)
	case Persistence:
		return fmt.Sprintf("%d refused requests (%s) within %v (limit %d): full speed after a refusal", f.n, f.refusal, r.Window, r.Limit)
	case Enumeration:
		return fmt.Sprintf("%d of %d look-ups within %v were of ids never shown, more than %d distinct (limit %d, ratio %.2f)", f.unref, f.looks, r.Window, r.Limit, r.Limit, r.Ratio)
	case Fanout:
		return fmt.Sprintf("%s of %d distinct people opened from one list answer within %v (limit %d)", class, f.n, r.Window, r.Limit)
	}
	return fmt.Sprintf("%s past its limit %d within %v", r.Kind, r.Limit, r.Window)
}

// socialProvenance is Access.Provenance of a look-up of the caller's own
// feed and network.
var socialProvenance = store.Social.String()

// noteList remembers which list answer showed each id.
func (t *track) noteList(links []string) {
	if t.shown == nil {
		t.shown, t.opened = map[uint64]uint32{}, map[uint64]*window{}
	}
	if len(t.shown)+len(links) > maxShown {
		clear(t.shown)
	}
	t.nextList++
	for _, l := range links {
		t.shown[hash(l)] = t.nextList
	}
}

// served appends to out the keys (hash) of the records whose class went
// out to the caller in acc, the caller's own record excepted.
func (d *Detector) served(acc *inspect.Access, out []uint64) []uint64 {
	c := slices.Index(acc.Classes, d.cfg.Class)
	if c < 0 || acc.Status != 0 && acc.Status >= 300 {
		return out
	}
	for i := range acc.Records {
		rec := &acc.Records[i]
		if rec.Served().Has(c) && rec.ID != acc.Identity.Account {
			out = append(out, hash(rec.ID))
		}
	}
	return out
}

// SetAllows replaces the allowlist entries (config allow) the rules
// read, from the next Access on: allow is reloadable, and an entry a
// reload adds (README's remedy for a value banned in error) must spare
// its identities the detector's bans as it spares them the rate limits.
func (d *Detector) SetAllows(allows []Allow) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.setAllows(allows)
}

// setAllows sets d.allow and each rule's entries (under d.mu once the
// detector runs).
func (d *Detector) setAllows(allows []Allow) {
	d.allow = make([]allowEntry, 0, len(allows))
	for _, a := range allows {
		d.allow = append(d.allow, allowEntry{exempt: newExempt(a.Apps, a.Accounts, a.CIDRs), rules: a.Rules})
	}
	for _, r := range d.rules {
		r.allow = nil
		for j := range d.allow {
			if a := &d.allow[j]; len(a.rules) == 0 || slices.Contains(a.rules, r.Name) {
				r.allow = append(r.allow, a)
			}
		}
	}
}

// allowed reports whether an allowlist exempts id from r.
func (r *rule) allowed(id *identify.Identity) bool {
	for _, a := range r.allow {
		if a.has(id) {
			return true
		}
	}
	return false
}

// ban writes (or, in shadow mode, logs) the ban of f, escalating by the
// value's history (the shared store's when there is one), and then the
// address's ban when every account seen on it is banned.
func (d *Detector) ban(acc *inspect.Access, f firing) {
	d.banMu.Lock()
	defer d.banMu.Unlock()
	d.banLocked(acc, f)
}

// banLocked is ban with banMu held.
func (d *Detector) banLocked(acc *inspect.Access, f firing) {
	key := store.BanKey{Facet: f.facet.String(), Value: f.value}
	now := acc.Time
	d.mu.Lock()
	if f.r.shadow != nil {
		// Shadow: one line per rule, value and window; no history.
		sk := shadowKey{rule: f.r.idx, facet: key.Facet, value: key.Value}
		if until, ok := d.shadowed[sk]; ok && now.Before(until) {
			d.mu.Unlock()
			return
		}
		if len(d.shadowed) >= d.cfg.MaxTracked {
			clear(d.shadowed)
		}
		sk.value = strings.Clone(sk.value) // kept past the Access
		d.shadowed[sk] = now.Add(f.r.Window)
		d.mu.Unlock()
		d.sh.Would(context.Background(), d.log, f.r.shadow, f.r.Name, shadow.Ban, acc.RequestID,
			slog.String("facet", key.Facet), slog.String("value", key.Value), slog.String("evidence", f.evidence(d.cfg.Class)))
		return
	}
	o := d.offences[key]
	if o != nil && now.Before(o.until) && f.everyone && !o.everyone {
		// The address is banned for its anonymous traffic, and now every
		// account on it was banned too (address_after): the same offence,
		// to its end, now for everyone on the address.
		o.everyone = true
		until := o.until
		d.mu.Unlock()
		reason := fmt.Sprintf("detector %s (%s): %s; offence %d, banned until %s", f.r.Name, f.r.Kind, f.evidence(d.cfg.Class), o.n, until.UTC().Format(time.RFC3339))
		d.put(acc, f.r.Name, store.Ban{Facet: key.Facet, Value: key.Value, Reason: reason, By: "detector", Created: now, Until: until})
		return
	}
	if o != nil && now.Before(o.until) {
		if !lifted(o, acc, f) {
			d.mu.Unlock()
			return // banned already
		}
		o.until = time.Time{} // lifted: a new offence, escalated
	}
	if o == nil {
		if len(d.offences) >= d.cfg.MaxTracked {
			d.dropOffences(now)
		}
		o = &offence{}
		d.offences[key] = o
	}
	off := store.OffenceAt(o.n, o.until, now, d.cfg.BanDurations)
	d.mu.Unlock()
	if d.fleet != nil {
		// The fleet's history: another gateway may have banned the value
		// already, or a restart forgotten its earlier offences. When the
		// store fails, this gateway's history decides.
		if shared, err := d.fleet.offend(d, now, key); err == nil {
			off = shared
		}
	}
	d.mu.Lock()
	o.n, o.until, o.seen, o.banned, o.everyone = off.N, off.Until, now, now, f.everyone
	if !off.New {
		d.mu.Unlock()
		return // banned already, by another gateway
	}
	dur := d.cfg.BanDurations[min(off.N, len(d.cfg.BanDurations))-1]
	var addrBan bool
	var ipKey string
	if f.facet == identify.FacetAccount && d.cfg.AddressAfter > 0 && acc.Identity.IP.IsValid() {
		ipKey = acc.Identity.Value(identify.FacetIP)
		if t, ok := d.tracks[trackKey{kind: trackAccounts, facet: identify.FacetIP, value: ipKey}]; ok {
			if _, seen := t.accounts[f.value]; seen {
				t.accounts[f.value] = true
			}
			all := len(t.accounts) >= d.cfg.AddressAfter
			for _, banned := range t.accounts {
				all = all && banned
			}
			addrBan = all
		}
	}
	d.mu.Unlock()
	reason := fmt.Sprintf("detector %s (%s): %s; offence %d, banned %v", f.r.Name, f.r.Kind, f.evidence(d.cfg.Class), off.N, dur)
	// A rule on an address (or a fingerprint) counts only anonymous
	// traffic (subject): its ban refuses only that traffic, and no account
	// behind the address pays for what its anonymous neighbours did.
	anon := f.facet != identify.FacetAccount && f.facet != identify.FacetApp && !f.everyone
	if anon {
		reason += "; anonymous requests only"
	}
	d.put(acc, f.r.Name, store.Ban{Facet: key.Facet, Value: key.Value, Reason: reason, By: "detector", Created: now, Until: now.Add(dur), Anonymous: anon})
	if addrBan {
		d.banLocked(acc, firing{r: f.r, facet: identify.FacetIP, value: ipKey, everyone: true,
			why: "every account seen on the address within an hour (at least " + strconv.Itoa(d.cfg.AddressAfter) + ") was banned"})
	}
}

func (d *Detector) put(acc *inspect.Access, rule string, b store.Ban) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := d.st.PutBan(ctx, b); err != nil {
		d.m.errs.Inc()
		d.log.Error("detect: ban not written", slog.String("facet", b.Facet), slog.String("rule", rule), slog.Any("err", err))
		return
	}
	d.m.bans.WithLabelValues(rule, b.Facet).Inc()
	d.log.Info("banned", slog.String("by", "detector"), slog.String("rule", rule), slog.String("facet", b.Facet), slog.String("value", b.Value),
		slog.String("request_id", acc.RequestID), slog.Time("until", b.Until), slog.String("reason", b.Reason))
}

// dropOffences forgets histories whose last ban is over a week past, then,
// if still full, the oldest half. Called with mu held.
func (d *Detector) dropOffences(now time.Time) {
	for k, o := range d.offences {
		if now.Sub(o.until) > 7*24*time.Hour {
			delete(d.offences, k)
		}
	}
	if len(d.offences) < d.cfg.MaxTracked {
		return
	}
	var times []time.Time
	for _, o := range d.offences {
		times = append(times, o.seen)
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	mid := times[len(times)/2]
	for k, o := range d.offences {
		if !o.seen.After(mid) {
			delete(d.offences, k)
		}
	}
}
