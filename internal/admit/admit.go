package admit

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/ration"
	"github.com/warden-gw/warden/internal/refusal"
	"github.com/warden-gw/warden/internal/shadow"
	"github.com/warden-gw/warden/internal/store"
)

// Store is the one store call admission makes.
type Store interface {
	Admit(ctx context.Context, now time.Time, req *store.AdmitRequest) (store.AdmitResult, error)
}

type rule struct {
	name     string
	facet    identify.Facet
	interval time.Duration
	burst    int
	routes   []inspect.Pattern
	keyHead  string // "rl:<name>:"
	// own: an address facet counts a request with a verified account on
	// [value, account] (config: identified: own).
	own    bool
	shadow prometheus.Counter // nil: enforced
}

type allow struct {
	prefixes []netip.Prefix
	apps     map[string]bool
	accounts map[string]bool
	rules    map[string]bool // nil: every rule
}

// Admitter holds the compiled rules of one configuration.
type Admitter struct {
	rules []rule
	allow []allow
	st    Store
	log   *slog.Logger
	sh    *shadow.Shadow // its "would have" lines are bounded per process
	work  sync.Pool      // *scratch
}

// scratch is one Admit call's request to the store, reused: the request
// escapes into the store call, so building it fresh cost allocations on
// every request.
type scratch struct {
	req    store.AdmitRequest
	bans   [len(identify.Facets)]store.BanKey
	limits [8]store.LimitRequest
	keys   store.KeyBuf
}

// New compiles the configured limits and allowlists (already validated).
// sh counts and log logs what limits in shadow mode would have refused
// (both may be nil).
func New(limits []config.Limit, allows []config.Allow, st Store, sh *shadow.Shadow, log *slog.Logger) (*Admitter, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Admitter{st: st, log: log, sh: sh}
	for _, l := range limits {
		f, ok := identify.ParseFacet(l.Facet)
		if !ok {
			return nil, fmt.Errorf("admit: rule %q: unknown facet %q", l.Name, l.Facet)
		}
		iv, err := config.ParseRate(l.Rate)
		if err != nil {
			return nil, fmt.Errorf("admit: rule %q: %w", l.Name, err)
		}
		r := rule{name: l.Name, facet: f, interval: iv, burst: max(l.Burst, 1), keyHead: "rl:" + l.Name + ":"}
		idf := l.Identified
		if idf == "" {
			idf = ration.DefaultIdentified(l.Facet)
		}
		r.own = idf == ration.Own && (f == identify.FacetIP || f == identify.FacetNet || f == identify.FacetFingerprint)
		if l.Mode == ration.Shadow {
			r.shadow = sh.Counter(l.Name, shadow.Refuse)
		}
		for _, p := range l.Routes {
			pat, err := inspect.ParsePattern(p)
			if err != nil {
				return nil, fmt.Errorf("admit: rule %q: %w", l.Name, err)
			}
			r.routes = append(r.routes, pat)
		}
		a.rules = append(a.rules, r)
	}
	for _, al := range allows {
		x := allow{apps: set(al.Apps), accounts: set(al.Accounts)}
		for _, c := range al.CIDRs {
			p, err := netip.ParsePrefix(c)
			if err != nil {
				return nil, fmt.Errorf("admit: allow %q: %w", al.Name, err)
			}
			x.prefixes = append(x.prefixes, p.Masked())
		}
		if len(al.Rules) > 0 {
			x.rules = set(al.Rules)
		}
		a.allow = append(a.allow, x)
	}
	return a, nil
}

func set(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// withoutBan removes k from bans, in place.
func withoutBan(bans []store.BanKey, k store.BanKey) []store.BanKey {
	return slices.DeleteFunc(bans, func(b store.BanKey) bool { return b == k })
}

// Decision is admission's answer. Status 0 admits.
type Decision struct {
	Status     int // 0, 403 or 429
	Rule       string
	Facet      string
	Reason     string // a ban's reason
	RetryAfter time.Duration
	// Policy and State are the IETF RateLimit-Policy and RateLimit field
	// values of the limit that refused (or is closest to refusing).
	Policy, State string
}

// Admitted reports whether the request may go on.
func (d *Decision) Admitted() bool { return d.Status == 0 }

// Admit decides one request with a single store call. A store error is
// returned as is; the caller applies the failure mode. reqID names the
// request in the log line of a limit in shadow mode that would have
// refused it.
func (a *Admitter) Admit(ctx context.Context, now time.Time, id *identify.Identity, method, path, reqID string) (Decision, error) {
	sc, _ := a.work.Get().(*scratch)
	if sc == nil {
		sc = new(scratch)
	}
	recycle := true
	defer func() {
		if recycle {
			a.work.Put(sc)
		}
	}()
	req := &sc.req
	*req = store.AdmitRequest{Bans: sc.bans[:0], Limits: sc.limits[:0]}
	sc.keys.Reset()
	// Each facet's string form once: ip and net are formatted, not stored.
	var vals [len(identify.Facets) + 1]string
	for _, f := range identify.Facets {
		if v := id.Value(f); v != "" {
			vals[f] = v
			req.Bans = append(req.Bans, store.BanKey{Facet: f.String(), Value: v})
		}
	}
	var which [16]int
	idx := which[:0]
	for i := range a.rules {
		r := &a.rules[i]
		v := vals[r.facet]
		if v == "" || !r.applies(method, path) || a.exempt(id, r.name) {
			continue
		}
		key := ""
		if r.own && id.Account != "" {
			key = sc.keys.Composite(r.keyHead, v, id.Account)
		} else {
			key = sc.keys.Key(r.keyHead, v)
		}
		req.Limits = append(req.Limits, store.LimitRequest{Key: key, Interval: r.interval, Burst: r.burst, Cost: 1})
		idx = append(idx, i)
	}
	if len(req.Bans) == 0 && len(req.Limits) == 0 {
		return Decision{}, nil
	}
	res, err := a.st.Admit(ctx, now, req)
	// A ban of an address for its anonymous traffic does not refuse an
	// account behind it (no collateral harm): ask again without that ban's
	// key, for the other bans and the limits, which the store does not
	// spend under a ban. Rare: only accounts on such an address pay it.
	for err == nil && res.Ban != nil && res.Ban.Anonymous && id.Account != "" {
		n := len(req.Bans)
		if req.Bans = withoutBan(req.Bans, res.Ban.Key()); len(req.Bans) == n {
			break // not one of the keys asked: refuse rather than loop
		}
		res, err = a.st.Admit(ctx, now, req)
	}
	if err != nil {
		// A store that gave up waiting (a timeout) may still read req,
		// whose keys live in sc: sc is left to the collector, not reused.
		recycle = false
		return Decision{}, fmt.Errorf("admit: %w", err)
	}
	if b := res.Ban; b != nil {
		return Decision{Status: 403, Rule: refusal.RuleBan, Facet: b.Facet, Reason: b.Reason}, nil
	}
	var d Decision
	worst := -1
	for j, lr := range res.Limits {
		if j >= len(idx) {
			break
		}
		if !lr.Allowed {
			r := &a.rules[idx[j]]
			if r.shadow != nil {
				a.sh.Would(ctx, a.log, r.shadow, r.name, shadow.Refuse, reqID, slog.String("facet", r.facet.String()),
					slog.String("method", method), slog.String("path", path))
				continue
			}
			if d.Status == 0 || lr.RetryAfter > d.RetryAfter {
				d = Decision{Status: 429, Rule: r.name, Facet: r.facet.String(), RetryAfter: lr.RetryAfter}
				worst = j
			}
		}
	}
	if worst >= 0 {
		r := &a.rules[idx[worst]]
		lr := res.Limits[worst]
		d.Policy, d.State = fields(r, lr)
	}
	return d, nil
}

// fields renders the IETF RateLimit-Policy and RateLimit values
// (draft-ietf-httpapi-ratelimit-headers): quota q over window w seconds,
// remaining r, seconds until reset t.
func fields(r *rule, lr store.LimitResult) (policy, state string) {
	window := int64((r.interval*time.Duration(r.burst) + time.Second - 1) / time.Second)
	policy = strconv.Quote(r.name) + ";q=" + strconv.Itoa(r.burst) + ";w=" + strconv.FormatInt(max(window, 1), 10)
	reset := int64((lr.ResetAfter + time.Second - 1) / time.Second)
	state = strconv.Quote(r.name) + ";r=" + strconv.Itoa(max(lr.Remaining, 0)) + ";t=" + strconv.FormatInt(reset, 10)
	return policy, state
}

func (r *rule) applies(method, path string) bool {
	if len(r.routes) == 0 {
		return true
	}
	for i := range r.routes {
		if r.routes[i].Match(method, path) {
			return true
		}
	}
	return false
}

// Applies reports whether rate limit name counted a request of id on
// method and path, as Admit decides it (its routes, its facet present, no
// allow rule exempting id), and whether it counted it under the facet's
// value with id's account (identified: own). A name no limit has applies
// to nothing. Explain asks it of recorded requests: a limit's counts are
// read again from the ledger.
func (a *Admitter) Applies(name string, id *identify.Identity, method, path string) (applies, own bool) {
	for i := range a.rules {
		r := &a.rules[i]
		if r.name != name {
			continue
		}
		if id.Value(r.facet) == "" || !r.applies(method, path) || a.exempt(id, r.name) {
			return false, false
		}
		return true, r.own && id.Account != ""
	}
	return false, false
}

func (a *Admitter) exempt(id *identify.Identity, rule string) bool {
	for i := range a.allow {
		al := &a.allow[i]
		if al.rules != nil && !al.rules[rule] {
			continue
		}
		if id.App != "" && al.apps[id.App] || id.Account != "" && al.accounts[id.Account] {
			return true
		}
		if id.IP.IsValid() {
			for _, p := range al.prefixes {
				if p.Contains(id.IP) {
					return true
				}
			}
		}
	}
	return false
}

// LimitState is one rule's state for one facet value, for the admin API.
type LimitState struct {
	Rule       string  `json:"rule"`
	Rate       string  `json:"interval"`
	Burst      int     `json:"burst"`
	Remaining  int     `json:"remaining"`
	RetryAfter float64 `json:"retry_after_seconds"`
	ResetAfter float64 `json:"reset_after_seconds"`
	Exempt     bool    `json:"exempt,omitempty"`
}

// FacetState peeks (cost 0) every rule that counts by facet for value.
func (a *Admitter) FacetState(ctx context.Context, now time.Time, facet, value string) ([]LimitState, *store.Ban, error) {
	f, ok := identify.ParseFacet(facet)
	if !ok {
		return nil, nil, fmt.Errorf("unknown facet %q", facet)
	}
	req := store.AdmitRequest{Bans: []store.BanKey{{Facet: facet, Value: value}}}
	var rules []*rule
	for i := range a.rules {
		if r := &a.rules[i]; r.facet == f {
			req.Limits = append(req.Limits, store.LimitRequest{Key: r.keyHead + value, Interval: r.interval, Burst: r.burst, Cost: 0})
			rules = append(rules, r)
		}
	}
	res, err := a.st.Admit(ctx, now, &req)
	if err != nil {
		return nil, nil, fmt.Errorf("admit: peek %s: %w", facet, err)
	}
	if res.Ban != nil {
		// Limits are not evaluated under a ban: peek them without it.
		b := res.Ban
		req.Bans = nil
		if res, err = a.st.Admit(ctx, now, &req); err != nil {
			return nil, nil, fmt.Errorf("admit: peek %s: %w", facet, err)
		}
		res.Ban = b
	}
	out := make([]LimitState, 0, len(rules))
	for i, r := range rules {
		lr := res.Limits[i]
		out = append(out, LimitState{Rule: r.name, Rate: r.interval.String(), Burst: r.burst, Remaining: lr.Remaining,
			RetryAfter: lr.RetryAfter.Seconds(), ResetAfter: lr.ResetAfter.Seconds()})
	}
	return out, res.Ban, nil
}
