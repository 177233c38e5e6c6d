package ration

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/refusal"
	"github.com/warden-gw/warden/internal/store"
)

// Store is the state rationing needs: one Spend per answer for every budget
// (one more for the unreferenced rule's own), and the link filters for
// unreferenced look-ups.
type Store interface {
	Spend(ctx context.Context, now time.Time, reqs []store.SpendRequest) ([]store.SpendResult, error)
	Link(ctx context.Context, now time.Time, key string, ids []uint64, ttl time.Duration) error
	Linked(ctx context.Context, now time.Time, key string, ids []uint64) ([]bool, error)
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

// Response is the upstream's answer, body fully read.
type Response struct {
	Status          int
	ContentType     string
	ContentEncoding string
	Body            []byte
	// Dst, when not nil, is memory the rewritten body may be built in (the
	// outcome's Body then shares it); it must not overlap Body.
	Dst []byte
}

// Outcome is the decision on one answer.
type Outcome struct {
	// Body is the rewritten answer, encoded as the upstream's was; nil means
	// send the upstream's answer unchanged, byte for byte.
	Body          []byte
	ContentLength int
	// Block, when set, replaces the answer entirely.
	Block *refusal.Refusal
	// Masked is the number of records with a class masked.
	Masked int
	Access inspect.Access
	Header []Header
}

// Header is a response header field to add.
type Header struct{ Name, Value string }

// MaskedHeader is the header on an answer warden masked:
// "Warden-Masked: 3; rules=contact-account,scope-contact".
const MaskedHeader = "Warden-Masked"

// Rationer applies one configuration. It is safe for concurrent use.
type Rationer struct {
	imap    *inspect.Map
	budgets []*budget
	scopes  []*scope
	unref   *unref
	st      Store
	met     *Metrics
	log     *slog.Logger
	work    sync.Pool // *work
	onOver  bool      // refuse oversize answers
	onBad   bool      // refuse malformed answers
	onOther bool      // refuse answers that are not JSON
	// enumerated counts unreferenced look-ups by route pattern, the
	// counters looked up once, not per request.
	enumerated map[string]prometheus.Counter
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
	cfg     BudgetConfig
	facet   identify.Facet
	block   bool
	tiers   []AgeTier // by younger_than, ascending
	ex      exempt
	prefix  string // store key prefix
	served  prometheus.Counter
	masked  prometheus.Counter
	blocked prometheus.Counter
}

// limit is the budget's limit for id at now, account age applied.
func (b *budget) limit(id *identify.Identity, now time.Time) int {
	if len(b.tiers) == 0 {
		return b.cfg.Limit
	}
	if age, ok := id.AccountAge(now); ok {
		for _, t := range b.tiers {
			if age < t.YoungerThan {
				return min(t.Limit, b.cfg.Limit)
			}
		}
	}
	return b.cfg.Limit
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
	prefix  string // link filter key prefix
	bprefix string // budget key prefix
	masked  prometheus.Counter
	blocked prometheus.Counter
}

// New builds a Rationer for one configuration load. icfg is the route map.
func New(cfg Config, icfg inspect.Config, st Store, m *Metrics, log *slog.Logger) (*Rationer, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ration: %w", err)
	}
	imap, err := inspect.Compile(icfg)
	if err != nil {
		return nil, err
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mapped := map[string]bool{}
	for _, rc := range icfg.Routes {
		for c := range rc.Classes {
			mapped[c] = true
		}
	}
	var errs []error
	r := &Rationer{imap: imap, st: st, met: m, log: log,
		onOver: imap.Config().OnOversize == inspect.Refuse, onBad: imap.Config().OnMalformed == inspect.Refuse,
		onOther: imap.Config().OnOtherType == inspect.Refuse}
	for i, bc := range cfg.Budgets {
		if !mapped[bc.Class] {
			errs = append(errs, fmt.Errorf("budgets[%d].class: no route maps class %q", i, bc.Class))
		}
		f, _ := identify.ParseFacet(bc.Facet)
		b := &budget{cfg: bc, facet: f, block: bc.Action == Block, ex: newExempt(bc.Exempt),
			tiers:  slices.Clone(bc.AccountAge),
			prefix: "budget:" + bc.Name + ":",
			served: m.served.WithLabelValues(bc.Name), masked: m.masked.WithLabelValues(bc.Name),
			blocked: m.blocked.WithLabelValues(bc.Name)}
		slices.SortFunc(b.tiers, func(a, b AgeTier) int { return int(a.YoungerThan - b.YoungerThan) })
		r.budgets = append(r.budgets, b)
	}
	for i, sc := range cfg.Scopes {
		if !mapped[sc.Class] {
			errs = append(errs, fmt.Errorf("scopes[%d].class: no route maps class %q", i, sc.Class))
		}
		r.scopes = append(r.scopes, &scope{cfg: sc, masked: m.masked.WithLabelValues(sc.Name)})
	}
	if u := cfg.Unreferenced; u != nil {
		f, _ := identify.ParseFacet(u.Facet)
		r.unref = &unref{cfg: *u, facet: f, block: u.Action == Block, ex: newExempt(u.Exempt),
			prefix: "link:" + u.Facet + ":", bprefix: "budget:" + u.Name + ":",
			masked: m.masked.WithLabelValues(u.Name), blocked: m.blocked.WithLabelValues(u.Name)}
	}
	if u := cfg.Unreferenced; u != nil {
		r.enumerated = map[string]prometheus.Counter{}
		for _, rc := range icfg.Routes {
			if rc.Lookup != "" {
				r.enumerated[rc.Route] = m.enumerated.WithLabelValues(rc.Route)
			}
		}
		for i, c := range u.Classes {
			if !mapped[c] {
				errs = append(errs, fmt.Errorf("unreferenced.classes[%d]: no route maps class %q", i, c))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("ration: %w", err)
	}
	return r, nil
}

// Map is the compiled route map.
func (r *Rationer) Map() *inspect.Map { return r.imap }

// Match finds the route of a request. It is cheap and does not allocate:
// the gateway buffers the answer only for a matched route.
func (r *Rationer) Match(method, path string) (Route, bool) {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	return r.imap.Match(method, path)
}

// work is per-answer scratch memory, pooled.
type work struct {
	storeFailed bool // a store call with w's buffers failed: see Apply
	res         inspect.Result
	plain       []byte
	out         []byte
	reqs        []store.SpendRequest
	subjects    []uint64
	owners      []spendOwner
	recIdx      []int32
	order       []int
	keys        store.KeyBuf // the decision's store keys
	hdr         []byte       // the Warden-Masked value being built
	look        [1]uint64    // the looked-up id, for Linked
	counts      []count      // served and masked counts, added once the answer goes out
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

// Apply inspects one answer and rations it: one call per answer, one Spend
// on the store for the budgets (and one before it for an unreferenced
// look-up). On a store error it returns the error with the Access filled,
// and the masks of the rules that need no store (scopes) in Body, if any:
// the caller applies its fail mode (open: send Body, or the upstream's
// answer when Body is nil; closed: refuse).
func (r *Rationer) Apply(ctx context.Context, now time.Time, id *identify.Identity, req Request, route Route, resp Response) (Outcome, error) {
	var out Outcome
	rt := route.Route
	if rt == nil {
		return out, nil
	}
	acc := &out.Access
	acc.RequestID, acc.Route, acc.Time, acc.Identity = req.ID, rt.Pattern, now, *id
	acc.List = route.List()
	if c := rt.Config().Cursor; c != "" {
		acc.Page = queryParam(req.RawQuery, c)
	}
	acc.Lookup = route.Lookup()
	if resp.Status < 200 || resp.Status > 299 {
		r.met.skipped.WithLabelValues("status").Inc()
		return out, nil
	}
	if !inspect.JSON(resp.ContentType) {
		r.met.skipped.WithLabelValues("content_type").Inc()
		if r.onOther && len(resp.Body) > 0 {
			r.log.LogAttrs(ctx, slog.LevelWarn, "ration: answer not JSON on a mapped route", slog.String("request_id", req.ID),
				slog.String("route", rt.Pattern), slog.String("content_type", resp.ContentType))
			out.Block = refuse(502, "upstream answer not JSON", "other_type", "", 0)
		}
		return out, nil
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
	w.res.Reset()

	plain, err := r.imap.Decode(resp.ContentEncoding, resp.Body, w.plain)
	switch {
	case errors.Is(err, inspect.ErrOversize):
		r.met.oversize.Inc()
		r.log.LogAttrs(ctx, slog.LevelWarn, "ration: answer over max_body", slog.String("request_id", req.ID), slog.String("route", rt.Pattern))
		if r.onOver {
			out.Block = refuse(502, "upstream answer too large", "max_body", "", 0)
		}
		return out, nil
	case err != nil:
		r.met.malformed.Inc()
		r.log.LogAttrs(ctx, slog.LevelWarn, "ration: answer could not be decoded", slog.String("request_id", req.ID), slog.String("route", rt.Pattern), slog.Any("err", err))
		if r.onBad {
			out.Block = refuse(502, "malformed upstream answer", "malformed", "", 0)
		}
		return out, nil
	}
	if len(plain) > 0 && (len(resp.Body) == 0 || &plain[0] != &resp.Body[0]) {
		w.plain = plain[:0] // a decoded copy: keep its memory for the next answer
	}
	res := &w.res
	if err := res.Inspect(rt, plain); err != nil {
		r.met.malformed.Inc()
		r.log.LogAttrs(ctx, slog.LevelWarn, "ration: malformed JSON answer", slog.String("request_id", req.ID), slog.String("route", rt.Pattern), slog.Any("err", err))
		if r.onBad {
			out.Block = refuse(502, "malformed upstream answer", "malformed", "", 0)
		}
		return out, nil
	}

	block, err := r.decide(ctx, now, id, req, route, w, acc)
	fillAccess(acc, res, block != nil)
	if err != nil {
		r.met.storeErrs.Inc()
		r.log.LogAttrs(ctx, slog.LevelError, "ration: store failed", slog.String("request_id", req.ID), slog.String("route", rt.Pattern), slog.Any("err", err))
		// Scopes need no store and ran before it failed: a caller that
		// fails open must still send their masks, never a reserved class.
		if rerr := r.rewrite(w, req, resp, &out); rerr != nil {
			return Outcome{Access: out.Access}, fmt.Errorf("ration: %w", rerr) // not failed-open: refused
		}
		return out, fmt.Errorf("ration: %w", err)
	}
	if block != nil {
		out.Block = block // the caller logs the decision, once per request
		return out, nil
	}
	if err := r.rewrite(w, req, resp, &out); err != nil {
		return out, fmt.Errorf("ration: %w", err)
	}
	return out, nil
}

// rewrite renders the masks made so far into out: the body, encoded as the
// upstream's was, and the Warden-Masked header. Without masks it leaves out
// as it is (the upstream's bytes go out).
func (r *Rationer) rewrite(w *work, req Request, resp Response, out *Outcome) error {
	res := &w.res
	out.Masked = res.NumMasked()
	if out.Masked == 0 {
		return nil
	}
	var body []byte
	if inspect.Identity(resp.ContentEncoding) {
		// Rewritten straight into the caller's memory: no copy to encode.
		body = res.Rewrite(resp.Dst[:0], req.ID)
	} else if w.out = res.Rewrite(w.out, req.ID); w.out != nil {
		var err error
		if body, err = r.imap.Encode(resp.ContentEncoding, w.out, resp.Dst[:0]); err != nil {
			out.Masked = 0
			return err
		}
	}
	if body == nil {
		out.Masked = 0
		return nil
	}
	out.Body, out.ContentLength = body, len(body)
	out.Header = append(out.Header, Header{Name: MaskedHeader, Value: maskedValue(&w.hdr, out.Masked, res.Rules())})
	return nil
}

// maskedValue renders the Warden-Masked header value, "N; rules=a,b", in
// scratch memory and allocates only the string.
func maskedValue(scratch *[]byte, n int, rules []string) string {
	b := strconv.AppendInt((*scratch)[:0], int64(n), 10)
	b = append(b, "; rules="...)
	for i, r := range rules {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, r...)
	}
	*scratch = b
	return string(b)
}

// decide runs scopes, the unreferenced check and the budgets, masking in
// w.res; it returns a refusal when a block rule fired.
func (r *Rationer) decide(ctx context.Context, now time.Time, id *identify.Identity, req Request, route Route, w *work, acc *inspect.Access) (*refusal.Refusal, error) {
	res := &w.res
	rt := route.Route
	n := res.Len()
	w.counts = w.counts[:0]
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
	linkKey, block, err := r.unreferenced(ctx, now, id, req, route, w, acc)
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
			w.subjects = append(w.subjects, Subject(rid))
			w.recIdx = append(w.recIdx, int32(i))
		}
		if len(w.subjects) == from {
			continue
		}
		limit := b.limit(id, now)
		w.owners = append(w.owners, spendOwner{b: b, c: c, limit: limit, from: from, to: len(w.subjects)})
		w.reqs = append(w.reqs, store.SpendRequest{Key: w.keys.Key(b.prefix, v), Window: b.cfg.Window, Limit: limit})
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
		for j, a := range allowed {
			if a {
				ok++
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
		if err := r.st.Link(ctx, now, linkKey, ids, r.unref.cfg.TTL); err != nil {
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
// filter key ("" when the rule does not apply to it), and, for a direct
// look-up of an id the identity was never shown, counts it and spends the
// rule's own budget, masking the rule's classes or refusing past it. Its
// Spend is a call of its own, made before the budgets', so that what it
// masks is never counted as served.
func (r *Rationer) unreferenced(ctx context.Context, now time.Time, id *identify.Identity, req Request, route Route, w *work, acc *inspect.Access) (string, *refusal.Refusal, error) {
	u := r.unref
	if u == nil {
		return "", nil, nil
	}
	v := id.Value(u.facet)
	if v == "" || u.ex.has(id) {
		return "", nil, nil
	}
	linkKey := w.keys.Key(u.prefix, v)
	look := route.Lookup()
	if look == "" || look == id.Account {
		return linkKey, nil, nil
	}
	w.look[0] = Subject([]byte(look))
	ok, err := r.st.Linked(ctx, now, linkKey, w.look[:])
	if err != nil {
		w.storeFailed = true
		return "", nil, fmt.Errorf("linked: %w", err)
	}
	if len(ok) != 1 || ok[0] {
		return linkKey, nil, nil
	}
	acc.Unreferenced = true
	rt := route.Route
	c := r.enumerated[rt.Pattern]
	if c == nil {
		c = r.met.enumerated.WithLabelValues(rt.Pattern)
	}
	c.Inc()
	if u.cfg.Window <= 0 {
		return linkKey, nil, nil // counted, not limited
	}
	w.reqs = append(w.reqs[:0], store.SpendRequest{Key: w.keys.Key(u.bprefix, v), Window: u.cfg.Window, Limit: u.cfg.Limit, Subjects: w.look[:]})
	results, err := r.st.Spend(ctx, now, w.reqs)
	w.reqs = w.reqs[:0]
	if err != nil {
		w.storeFailed = true
		return "", nil, fmt.Errorf("spend: %w", err)
	}
	if len(results) != 1 || len(results[0].Allowed) != 1 {
		return "", nil, fmt.Errorf("spend: %d results for 1 budget", len(results))
	}
	if results[0].Allowed[0] {
		return linkKey, nil, nil
	}
	if u.block {
		u.blocked.Inc()
		return linkKey, refuse(429, "too many look-ups of ids never shown", u.cfg.Name, u.cfg.Facet, retryAfter(now, u.cfg.Window)), nil
	}
	res := &w.res
	m := 0
	for i := 0; i < res.Len(); i++ {
		hit := false
		for c, name := range rt.Classes() {
			if len(u.cfg.Classes) > 0 && !slices.Contains(u.cfg.Classes, name) {
				continue
			}
			hit = res.Mask(i, c, u.cfg.Name) || hit
		}
		if hit {
			m++
		}
	}
	w.count(u.masked, m)
	return linkKey, nil, nil
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

// fillAccess copies ids out of the pooled result into one string the Access
// owns.
func fillAccess(acc *inspect.Access, res *inspect.Result, blocked bool) {
	acc.Classes = res.Route().Classes()
	if blocked {
		return // nothing was served
	}
	size := 0
	n := res.Len()
	for i := 0; i < n; i++ {
		size += len(res.ID(i))
	}
	for i := 0; i < res.NumAuthors(); i++ {
		size += len(res.Author(i))
	}
	for i := 0; i < res.NumLinks(); i++ {
		size += len(res.Link(i))
	}
	buf := make([]byte, 0, size)
	for i := 0; i < n; i++ {
		buf = append(buf, res.ID(i)...)
	}
	for i := 0; i < res.NumAuthors(); i++ {
		buf = append(buf, res.Author(i)...)
	}
	for i := 0; i < res.NumLinks(); i++ {
		buf = append(buf, res.Link(i)...)
	}
	s := unsafe.String(unsafe.SliceData(buf), len(buf)) // buf is never written again
	pos := 0
	take := func(k int) string { v := s[pos : pos+k]; pos += k; return v }
	if n > 0 {
		acc.Records = make([]inspect.Record, n)
		for i := range acc.Records {
			acc.Records[i] = inspect.Record{ID: take(len(res.ID(i))), Classes: res.Classes(i), Masked: res.Masked(i)}
		}
	}
	if k := res.NumAuthors(); k > 0 {
		acc.Authors = make([]string, k)
		for i := range acc.Authors {
			acc.Authors[i] = take(len(res.Author(i)))
		}
	}
	if k := res.NumLinks(); k > 0 {
		acc.Links = make([]string, k)
		for i := range acc.Links {
			acc.Links[i] = take(len(res.Link(i)))
		}
	}
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

// queryParam returns the first value of key in a raw query, unescaped.
func queryParam(q, key string) string {
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(kv, "=")
		if k != key {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			if u, err := url.QueryUnescape(v); err == nil {
				return u
			}
		}
		return v
	}
	return ""
}
