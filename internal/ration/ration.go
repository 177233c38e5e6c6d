package ration

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/refusal"
	"github.com/warden-gw/warden/internal/shadow"
	"github.com/warden-gw/warden/internal/store"
)

// Store is the state rationing needs: one Spend per answer for every budget
// (one more for the unreferenced rule's own), and the link filters for
// unreferenced look-ups.
type Store interface {
	Spend(ctx context.Context, now time.Time, reqs []store.SpendRequest) ([]store.SpendResult, error)
	Link(ctx context.Context, now time.Time, key string, ids []uint64, p store.Provenance, answer uint32, ttl time.Duration) error
	// Linked answers in dst's memory when it has room (store.Store).
	Linked(ctx context.Context, now time.Time, key string, ids []uint64, fan *store.Fanout, dst []store.Provenance) ([]store.Provenance, error)
}

// Route is a request matched to the route map.
type Route = inspect.Match

// Request is what rationing needs of the request.
type Request struct {
	Method   string
	Path     string // without the query
	RawQuery string
	ID       string // the request id named in masks and refusals
}

// Rationer applies one configuration. It is safe for concurrent use.
type Rationer struct {
	budgets []*budget
	scopes  []*scope
	unref   *unref
	fan     *fanCap
	st      Store
	met     *Metrics
	log     *slog.Logger
	work    sync.Pool // *work
	// enumerated counts unreferenced look-ups by route pattern, the
	// counters looked up once, not per request.
	enumerated map[string]prometheus.Counter
	// ageBounds are the budgets' account_age bounds (AgeBounds), against
	// which each Access records its account's AgeRank.
	ageBounds []time.Duration
}

type exempt struct {
	apps, accounts []string
	cidrs          []netip.Prefix
}

func newExempt(e Exempt) exempt {
	x := exempt{apps: e.Apps, accounts: e.Accounts}
	for _, c := range e.CIDRs {
		p, _ := parseCIDR(c)
		x.cidrs = append(x.cidrs, p)
	}
	return x
}

func (x *exempt) has(id *identify.Identity) bool {
	if id.App != "" && slices.Contains(x.apps, id.App) {
		return true
	}
	if id.Account != "" && slices.Contains(x.accounts, id.Account) {
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

type budget struct {
	cfg    BudgetConfig
	facet  identify.Facet
	block  bool
	tiers  []AgeTier // by younger_than, ascending
	ex     exempt
	prefix string // store key prefix
	// tierPrefix[i] is tiers[i]'s key prefix on a facet several accounts
	// share (see tier); nil on account, where the key is the account's.
	tierPrefix []string
	own        bool               // an address facet counts verified accounts on [value, account]
	provs      uint8              // provenances counted, bit per store.Provenance; 0: all
	shadow     prometheus.Counter // nil: enforced
	served     prometheus.Counter
	masked     prometheus.Counter
	blocked    prometheus.Counter
}

// tier is the budget's limit for id at now, account age applied, and the
// prefix of the key it counts on. On a value several accounts share (ip,
// net, fingerprint identified: shared; app), a young account counts with
// the accounts of its own tier only: a tier's limit is for what young
// accounts on the value took, and older accounts (who do not meet it)
// never spend it. A sign-up fleet on one value is one tier's count.
func (b *budget) tier(id *identify.Identity, now time.Time) (int, string) {
	if len(b.tiers) == 0 {
		return b.cfg.Limit, b.prefix
	}
	if age, ok := id.AccountAge(now); ok {
		for i, t := range b.tiers {
			if age < t.YoungerThan {
				if b.tierPrefix == nil || b.own {
					return min(t.Limit, b.cfg.Limit), b.prefix
				}
				return min(t.Limit, b.cfg.Limit), b.tierPrefix[i]
			}
		}
	}
	return b.cfg.Limit, b.prefix
}

type scope struct {
	cfg    ScopeConfig
	masked prometheus.Counter
}

type unref struct {
	cfg     Unreferenced
	facet   identify.Facet
	block   bool
	ex      exempt
	prefix  string             // link filter key prefix
	bprefix string             // budget key prefix
	own     bool               // an address facet keeps a verified account's memory and allowance on [value, account]
	shadow  prometheus.Counter // nil: enforced
	masked  prometheus.Counter
	blocked prometheus.Counter
}

type fanCap struct {
	cfg    FanoutCap
	ex     exempt
	provs  uint8              // bit per store.Provenance capped
	shadow prometheus.Counter // nil: enforced
	masked prometheus.Counter
}

// New builds a Rationer for one configuration load on the compiled route
// map imap, whose classes its rules name.
func New(cfg Config, imap *inspect.Map, st Store, m *Metrics, log *slog.Logger) (*Rationer, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ration: %w", err)
	}
	icfg := imap.Config()
	if m == nil {
		m = NewMetrics(nil)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mapped := icfg.ClassNames()
	var errs []error
	r := &Rationer{st: st, met: m, log: log}
	for i, bc := range cfg.Budgets {
		if !slices.Contains(mapped, bc.Class) {
			errs = append(errs, fmt.Errorf("budgets[%d].class: no route maps class %q", i, bc.Class))
		}
		f, _ := identify.ParseFacet(bc.Facet)
		b := &budget{cfg: bc, facet: f, block: bc.Action == Block, ex: newExempt(bc.Exempt),
			tiers:  slices.Clone(bc.AccountAge),
			prefix: "budget:" + bc.Name + ":",
			served: m.served.WithLabelValues(bc.Name), masked: m.masked.WithLabelValues(bc.Name),
			blocked: m.blocked.WithLabelValues(bc.Name)}
		slices.SortFunc(b.tiers, func(a, b AgeTier) int { return int(a.YoungerThan - b.YoungerThan) })
		if f != identify.FacetAccount {
			// "@" is no budget name's: no other budget's key.
			for _, t := range b.tiers {
				b.tierPrefix = append(b.tierPrefix, b.prefix[:len(b.prefix)-1]+"@"+t.YoungerThan.String()+":")
			}
		}
		for _, p := range bc.Provenance {
			b.provs |= 1 << storeProvenance(p)
		}
		b.own = countsOwn(bc.Identified, f)
		if bc.Mode == Shadow {
			b.shadow = m.Shadow().Counter(bc.Name, shadowAction(b.block))
		}
		r.budgets = append(r.budgets, b)
	}
	r.ageBounds = AgeBounds(cfg.Budgets)
	for i, sc := range cfg.Scopes {
		if !slices.Contains(mapped, sc.Class) {
			errs = append(errs, fmt.Errorf("scopes[%d].class: no route maps class %q", i, sc.Class))
		}
		r.scopes = append(r.scopes, &scope{cfg: sc, masked: m.masked.WithLabelValues(sc.Name)})
	}
	if u := cfg.Unreferenced; u != nil {
		f, _ := identify.ParseFacet(u.Facet)
		r.unref = &unref{cfg: *u, facet: f, block: u.Action == Block, ex: newExempt(u.Exempt),
			prefix: "link:" + u.Facet + ":", bprefix: "budget:" + u.Name + ":",
			masked: m.masked.WithLabelValues(u.Name), blocked: m.blocked.WithLabelValues(u.Name)}
		r.unref.own = countsOwn(u.Identified, f)
		if u.Mode == Shadow {
			r.unref.shadow = m.Shadow().Counter(u.Name, shadowAction(r.unref.block))
		}
	}
	if f := cfg.FanoutCap; f != nil {
		r.fan = &fanCap{cfg: *f, ex: newExempt(f.Exempt), masked: m.masked.WithLabelValues(f.Name)}
		for _, p := range f.Provenance {
			r.fan.provs |= 1 << storeProvenance(p)
		}
		if f.Mode == Shadow {
			r.fan.shadow = m.Shadow().Counter(f.Name, shadow.Mask)
		}
		for i, c := range f.Classes {
			if !slices.Contains(mapped, c) {
				errs = append(errs, fmt.Errorf("fanout_cap.classes[%d]: no route maps class %q", i, c))
			}
		}
	}
	if u := cfg.Unreferenced; u != nil {
		r.enumerated = map[string]prometheus.Counter{}
		for _, rc := range icfg.Routes {
			if rc.Lookup != "" {
				r.enumerated[rc.Route] = m.enumerated.WithLabelValues(rc.Route)
			}
		}
		for i, c := range u.Classes {
			if !slices.Contains(mapped, c) {
				errs = append(errs, fmt.Errorf("unreferenced.classes[%d]: no route maps class %q", i, c))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("ration: %w", err)
	}
	return r, nil
}

// work is per-decision scratch memory, pooled.
type work struct {
	storeFailed bool // a store call with w's buffers failed: see Decide
	reqs        []store.SpendRequest
	subjects    []uint64
	owners      []spendOwner
	recIdx      []int32
	order       []int
	keys        store.KeyBuf        // the decision's store keys
	look        [1]uint64           // the looked-up id, for Linked
	prov        [1]store.Provenance // Linked's answer: no allocation per look-up
	person      [1]uint64           // who the look-up's answer is about, for the fan-out cap
	fan         store.Fanout        // the fan-out cap's request to Linked
	counts      []count             // served and masked counts, added once the answer goes out
}

// count is a counter increment held until the decision is final: a refused
// answer served and masked nothing.
type count struct {
	c prometheus.Counter
	n int
}

// count holds n for c; zeros are dropped.
func (w *work) count(c prometheus.Counter, n int) {
	if n > 0 {
		w.counts = append(w.counts, count{c, n})
	}
}

// spendOwner says what a SpendRequest was for: budget b, class c, and which
// records its subjects came from (recIdx[from:to]).
type spendOwner struct {
	b        *budget
	c        int
	limit    int
	from, to int
}

// Decide rations one inspected answer: scopes, the unreferenced rule and
// the budgets, masking in res, with one Spend on the store for the budgets
// (and one before it for an unreferenced look-up). It returns a refusal
// when a block rule fired. On a store error it returns the error with the
// masks of the rules that need no store (scopes) already made in res: the
// caller applies its fail mode (open: send those masks; closed: refuse).
// It never decodes, rewrites or encodes: the answer stage does.
func (r *Rationer) Decide(ctx context.Context, now time.Time, id *identify.Identity, req Request, route Route, res *inspect.Result, acc *inspect.Access) (*refusal.Refusal, error) {
	if route.Route == nil {
		return nil, nil
	}
	w, _ := r.work.Get().(*work)
	if w == nil {
		w = new(work)
	}
	defer func() {
		// A store that gave up waiting (a timeout) may still read the keys
		// and subjects of a failed call, which live in w: w is then left
		// to the collector, not reused.
		if !w.storeFailed {
			r.work.Put(w)
		}
	}()
	block, err := r.decide(ctx, now, id, req, route, res, w, acc)
	if err != nil {
		r.met.storeErrs.Inc()
		r.log.LogAttrs(ctx, slog.LevelError, "ration: store failed", slog.String("request_id", req.ID), slog.String("route", route.Route.Pattern), slog.Any("err", err))
		return nil, fmt.Errorf("ration: %w", err)
	}
	return block, nil
}

// decide runs scopes, the unreferenced check and the budgets, masking in
// w.res; it returns a refusal when a block rule fired.
func (r *Rationer) decide(ctx context.Context, now time.Time, id *identify.Identity, req Request, route Route, res *inspect.Result, w *work, acc *inspect.Access) (*refusal.Refusal, error) {
	rt := route.Route
	n := res.Len()
	w.counts = w.counts[:0]
	// Which age tier each budget applies, for the ledger: warden explain
	// tells the limit that applied from it.
	acc.AgeRank = AgeRank(r.ageBounds, id, now)
	// Scopes: a reserved class is masked for identities without the scope,
	// and never offered to budgets.
	for _, s := range r.scopes {
		if id.HasScope(s.cfg.Scope) {
			continue
		}
		c := rt.Class(s.cfg.Class)
		if c < 0 {
			continue
		}
		k := 0
		for i := 0; i < n; i++ {
			if res.Mask(i, c, s.cfg.Name) {
				k++
			}
		}
		w.count(s.masked, k)
	}

	w.reqs, w.subjects, w.owners, w.recIdx = w.reqs[:0], w.subjects[:0], w.owners[:0], w.recIdx[:0]
	w.keys.Reset()
	// Unreferenced look-up, decided before the budgets: the classes it masks
	// are not served, so they are not offered to the budgets either.
	linkKey, prov, block, err := r.unreferenced(ctx, now, id, req, route, res, w, acc)
	if err != nil || block != nil {
		return block, err
	}
	// Budgets: subjects of each budget's class not masked already.
	for _, b := range r.budgets {
		c := rt.Class(b.cfg.Class)
		if c < 0 {
			continue
		}
		v := id.Value(b.facet)
		if v == "" || b.ex.has(id) {
			continue
		}
		from := len(w.subjects)
		for i := 0; i < n; i++ {
			if !res.Classes(i).Has(c) || res.Masked(i).Has(c) {
				continue
			}
			rid := res.ID(i)
			if rid == nil {
				continue // nothing to count it by
			}
			if id.Account != "" && string(rid) == id.Account {
				continue // the caller's own record: its own data, no one it was served
			}
			if b.provs != 0 && b.provs&(1<<prov) == 0 {
				continue
			}
			w.subjects = append(w.subjects, Subject(rid))
			w.recIdx = append(w.recIdx, int32(i))
		}
		if len(w.subjects) == from {
			continue
		}
		limit, prefix := b.tier(id, now)
		w.owners = append(w.owners, spendOwner{b: b, c: c, limit: limit, from: from, to: len(w.subjects)})
		w.reqs = append(w.reqs, store.SpendRequest{Key: ownKey(&w.keys, b.own, prefix, v, id), Window: b.cfg.Window, Limit: limit})
	}
	var results []store.SpendResult
	if len(w.reqs) > 0 {
		// Subjects are sliced once all are appended: an append may have
		// moved w.subjects.
		for i := range w.reqs {
			o := &w.owners[i]
			w.reqs[i].Subjects = w.subjects[o.from:o.to]
		}
		results, err = r.st.Spend(ctx, now, w.reqs)
		if err != nil {
			w.storeFailed = true
			return nil, fmt.Errorf("spend: %w", err)
		}
		if len(results) != len(w.reqs) {
			return nil, fmt.Errorf("spend: %d results for %d budgets", len(results), len(w.reqs))
		}
	}
	// Smallest limit first: the tightest rule is the one named.
	order := w.order[:0]
	for i := range w.owners {
		order = append(order, i)
	}
	w.order = order
	slices.SortStableFunc(order, func(a, b int) int { return w.owners[a].limit - w.owners[b].limit })
	for _, k := range order {
		o := &w.owners[k]
		allowed := results[k].Allowed
		ok := 0
		masked := 0
		would := 0
		for j, a := range allowed {
			if a {
				ok++
				continue
			}
			if o.b.shadow != nil {
				would++
				ok++ // served: the rule only watches
				continue
			}
			i := int(w.recIdx[o.from+j])
			if o.b.block {
				if block == nil {
					block = refuse(429, "budget exceeded", o.b.cfg.Name, o.b.cfg.Facet, retryAfter(now, o.b.cfg.Window))
					o.b.blocked.Inc()
				}
				continue
			}
			if !res.Masked(i).Has(o.c) && res.Mask(i, o.c, o.b.cfg.Name) {
				masked++
			}
		}
		w.count(o.b.served, ok)
		w.count(o.b.masked, masked)
		if would > 0 {
			r.would(ctx, o.b.shadow, o.b.cfg.Name, o.b.block, req.ID, o.b.cfg.Facet, would)
		}
	}
	if block != nil {
		return block, nil
	}
	// The answer goes out: what it served and masked counts now. A zero is
	// never written: counters are shared by every request, and each write
	// moves their cache line between cores.
	for _, c := range w.counts {
		c.c.Add(float64(c.n))
	}
	// Remember what this answer showed, for later look-ups.
	if linkKey != "" && res.NumLinks() > 0 {
		ids := w.subjects[len(w.subjects):]
		for i := 0; i < res.NumLinks(); i++ {
			ids = append(ids, Subject(res.Link(i)))
		}
		w.subjects = ids[:0]
		shown := storeProvenance(route.Shown(id.Account))
		// Each answer fetched is its own to the fan-out cap: a person who
		// comes back to a list and opens one more is not a harvester
		// opening the whole list, and asking again costs a harvester a
		// request per cap just as a new question does.
		tag := store.AnswerTag(req.ID, req.Path)
		if err := r.st.Link(ctx, now, linkKey, ids, shown, tag, r.unref.cfg.TTL); err != nil {
			w.storeFailed = true
			// Not fatal: a missed link only makes later look-ups count as
			// unreferenced.
			r.met.storeErrs.Inc()
			r.log.LogAttrs(ctx, slog.LevelWarn, "ration: link failed", slog.String("request_id", req.ID), slog.Any("err", err))
		}
	}
	return nil, nil
}

// unreferenced applies the unreferenced rule: it returns the identity's link
// memory key ("" when the rule does not apply to it) and the answer's
// provenance (see answerProvenance), and, for a direct look-up of an id the
// identity was never shown, counts it and spends the rule's own budget,
// masking the rule's classes or refusing past it. Its Spend is a call of
// its own, made before the budgets', so that what it masks is never
// counted as served.
func (r *Rationer) unreferenced(ctx context.Context, now time.Time, id *identify.Identity, req Request, route Route, res *inspect.Result, w *work, acc *inspect.Access) (string, store.Provenance, *refusal.Refusal, error) {
	look := route.Lookup()
	if look != "" && id.Account != "" && res.Len() == 1 && string(res.ID(0)) == id.Account {
		// The caller's own record looked up by another key (its username)
		// is its own, as by its id: not a look-up of someone never shown.
		look = id.Account
	}
	prov := answerProvenance(id, route, look)
	u := r.unref
	if u == nil {
		return "", prov, nil, nil
	}
	v := id.Value(u.facet)
	if v == "" || u.ex.has(id) {
		return "", prov, nil, nil
	}
	linkKey := u.key(&w.keys, u.prefix, v, id)
	if look == "" || look == id.Account {
		return linkKey, prov, nil, nil
	}
	w.look[0] = Subject([]byte(look))
	var fan *store.Fanout
	if f := r.fan; f != nil && !f.ex.has(id) {
		fan = &w.fan
		fan.Limit, fan.Window, fan.Hold, fan.Provenances = f.cfg.Limit, f.cfg.Window, f.cfg.Hold, f.provs
		// Opening one person by id and then by username is one open: the
		// cap counts the record the answer is about when it names one.
		fan.Subjects = nil
		if res.Len() == 1 && res.ID(0) != nil {
			w.person[0] = Subject(res.ID(0))
			fan.Subjects = w.person[:]
		}
	}
	got, err := r.st.Linked(ctx, now, linkKey, w.look[:], fan, w.prov[:0])
	if err != nil {
		w.storeFailed = true
		return "", prov, nil, fmt.Errorf("linked: %w", err)
	}
	if len(got) != 1 {
		return "", prov, nil, fmt.Errorf("linked: %d answers for 1 id", len(got))
	}
	prov = got[0]
	acc.Provenance = prov.String()
	if fan != nil && len(fan.Capped) == 1 && fan.Capped[0] {
		// Opened past the cap from the answer that showed it: masked
		// before the budgets, which then do not count it as served.
		f := r.fan
		if f.shadow != nil {
			r.would(ctx, f.shadow, f.cfg.Name, false, req.ID, u.cfg.Facet, 1)
		} else {
			w.count(f.masked, maskClasses(res, route.Route, f.cfg.Classes, f.cfg.Name))
		}
	}
	if prov != store.Unreferenced {
		return linkKey, prov, nil, nil
	}
	acc.Unreferenced = true
	rt := route.Route
	c := r.enumerated[rt.Pattern]
	if c == nil {
		c = r.met.enumerated.WithLabelValues(rt.Pattern)
	}
	c.Inc()
	if u.cfg.Window <= 0 {
		return linkKey, prov, nil, nil // counted, not limited
	}
	w.reqs = append(w.reqs[:0], store.SpendRequest{Key: u.key(&w.keys, u.bprefix, v, id), Window: u.cfg.Window, Limit: u.cfg.Limit, Subjects: w.look[:]})
	results, err := r.st.Spend(ctx, now, w.reqs)
	w.reqs = w.reqs[:0]
	if err != nil {
		w.storeFailed = true
		return "", prov, nil, fmt.Errorf("spend: %w", err)
	}
	if len(results) != 1 || len(results[0].Allowed) != 1 {
		return "", prov, nil, fmt.Errorf("spend: %d results for 1 budget", len(results))
	}
	if results[0].Allowed[0] {
		return linkKey, prov, nil, nil
	}
	if u.shadow != nil {
		r.would(ctx, u.shadow, u.cfg.Name, u.block, req.ID, u.cfg.Facet, 1)
		return linkKey, prov, nil, nil
	}
	if u.block {
		u.blocked.Inc()
		return linkKey, prov, refuse(429, "too many look-ups of ids never shown", u.cfg.Name, u.cfg.Facet, retryAfter(now, u.cfg.Window)), nil
	}
	w.count(u.masked, maskClasses(res, rt, u.cfg.Classes, u.cfg.Name))
	return linkKey, prov, nil, nil
}

// key is the store key of the rule's link memory (prefix u.prefix) or
// allowance (u.bprefix) for facet value v of id, counted as budgets are
// (ownKey).
func (u *unref) key(kb *store.KeyBuf, prefix, v string, id *identify.Identity) string {
	return ownKey(kb, u.own, prefix, v, id)
}

// countsOwn says a rule on facet f with identified counts a verified
// account on [value, account]: identified own on an address facet.
func countsOwn(identified Identified, f identify.Facet) bool {
	return identified == Own && (f == identify.FacetIP || f == identify.FacetNet || f == identify.FacetFingerprint)
}

// ownKey is the store key under prefix for facet value v of id: with own,
// a request with a verified account has its own behind the address (no
// account loses its allowance, or its memory, to a neighbour's).
func ownKey(kb *store.KeyBuf, own bool, prefix, v string, id *identify.Identity) string {
	if own && id.Account != "" {
		return kb.Composite(prefix, v, id.Account)
	}
	return kb.Key(prefix, v)
}

// maskClasses masks classes (every class of the route when empty) in every
// record of res for rule, and returns how many records it masked.
func maskClasses(res *inspect.Result, rt *inspect.Route, classes []string, rule string) int {
	m := 0
	for i := 0; i < res.Len(); i++ {
		hit := false
		for c, name := range rt.Classes() {
			if len(classes) > 0 && !slices.Contains(classes, name) {
				continue
			}
			hit = res.Mask(i, c, rule) || hit
		}
		if hit {
			m++
		}
	}
	return m
}

// answerProvenance is where the records of an answer came from before any
// link memory is read: a look-up of the caller's own id is social; any
// other look-up unreferenced until the link memory says otherwise; a list
// answer has the provenance its route shows ids with (its own list:
// own_provenance); any other answer is unreferenced (the caller's own
// record in it is counted as social by the budgets).
func answerProvenance(id *identify.Identity, route Route, look string) store.Provenance {
	switch {
	case look != "" && look == id.Account:
		return store.Social
	case look != "":
		return store.Unreferenced
	case len(route.Route.Config().Links) > 0:
		return storeProvenance(route.Shown(id.Account))
	}
	return store.Unreferenced
}

// storeProvenance maps the route map's provenance names to the store's.
func storeProvenance(p inspect.Provenance) store.Provenance {
	switch p {
	case inspect.Social:
		return store.Social
	case inspect.Search:
		return store.Search
	case inspect.List:
		return store.List
	}
	return store.Unreferenced
}

// shadowAction is what a rule that blocks (or masks) would have done.
func shadowAction(block bool) string {
	if block {
		return shadow.Refuse
	}
	return shadow.Mask
}

// would counts and logs what a rule in shadow mode would have done to this
// answer: refused it, or masked n records.
func (r *Rationer) would(ctx context.Context, c prometheus.Counter, rule string, block bool, reqID, facet string, n int) {
	if block {
		r.met.Shadow().Would(ctx, r.log, c, rule, shadow.Refuse, reqID, slog.String("facet", facet))
		return
	}
	c.Add(float64(n - 1))
	r.met.Shadow().Would(ctx, r.log, c, rule, shadow.Mask, reqID, slog.String("facet", facet), slog.Int("records", n))
}

func retryAfter(now time.Time, window time.Duration) time.Duration {
	if window <= 0 {
		return 0
	}
	ns := now.UnixNano()
	m := ns % int64(window)
	if m < 0 {
		m += int64(window)
	}
	return time.Duration(int64(window) - m)
}

// refuse is the refusal of rule on facet: a block.
func refuse(status int, msg, rule, facet string, after time.Duration) *refusal.Refusal {
	return &refusal.Refusal{Status: status, Error: msg, Rule: rule, Facet: facet, RetryAfter: after}
}

// Subject maps an id to the budget's subject: a decimal id is its own
// number; any other id is hashed (FNV-1a) with the top bit set, so the two
// never collide.
func Subject(id []byte) uint64 {
	if len(id) > 0 && len(id) <= 18 {
		var v uint64
		ok := true
		for _, c := range id {
			if c < '0' || c > '9' {
				ok = false
				break
			}
			v = v*10 + uint64(c-'0')
		}
		if ok {
			return v
		}
	}
	h := uint64(14695981039346656037)
	for _, c := range id {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h | 1<<63
}
