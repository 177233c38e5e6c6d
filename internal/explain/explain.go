package explain

import (
	"cmp"
	"context"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/warden-gw/warden/internal/admit"
	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/ration"
	"github.com/warden-gw/warden/internal/refusal"
	"github.com/warden-gw/warden/internal/store"
)

// Ledger is what an explanation reads: the Access of a request id, and the
// distinct subjects a facet value was served before it. Any ledger.Source
// (a directory, ClickHouse) is one.
type Ledger interface {
	// Find returns the Access of requestID, nil when win holds none.
	Find(ctx context.Context, win ledger.Window, requestID string) (*ledger.Found, error)
	// Distinct counts the distinct subjects of class served unmasked to
	// the facet's value in win, by identities with every value of also.
	Distinct(ctx context.Context, win ledger.Window, by identify.Facet, value, class string, also ...ledger.FacetValue) (int, error)
	// Requests counts, per route, the requests recorded in win from an
	// identity with every facet value of want.
	Requests(ctx context.Context, win ledger.Window, want []ledger.FacetValue) (map[string]int, error)
}

// splitLedger is a Ledger that counts a shadow budget's subjects before
// its request and with it in one pass over the window (a directory's;
// another is asked twice).
type splitLedger interface {
	DistinctSplit(ctx context.Context, win ledger.Window, cut time.Time, by identify.Facet, value, class string, also ...ledger.FacetValue) (before, all int, err error)
}

// Rules are the config's rules an explanation counts for: the config the
// gateway ran with (its zero value: none, and no rows).
type Rules struct {
	Budgets []ration.BudgetConfig
	Limits  []config.Limit
	Allow   []config.Allow // exempt identities from limits
	// Bans is where the bans that refused requests are kept (the state
	// store's ban log); nil: not known, and a ban's row says so.
	Bans BanLog
}

// BanLog is the bans put on one facet value, oldest first, each with what
// became of it: the state store's ban log (disk.BanHistory of a state directory).
type BanLog interface {
	BanHistory(ctx context.Context, k store.BanKey) ([]store.BanChange, error)
}

// RulesOf are cfg's rules (nil: none).
func RulesOf(cfg *config.Config) Rules {
	if cfg == nil {
		return Rules{}
	}
	return Rules{Budgets: cfg.Ration.Budgets, Limits: cfg.Limits, Allow: cfg.Allow}
}

// Explanation is the decision on one request, from the ledger. Its JSON is
// what `warden explain --json` prints and the admin API answers.
type Explanation struct {
	RequestID    string            `json:"request_id"`
	File         string            `json:"file"` // the ledger's file (or table) that holds the Access
	Time         time.Time         `json:"time"`
	Route        string            `json:"route"`
	Status       int               `json:"status"`
	Decision     string            `json:"decision"` // Served, Masked, Refused, UpstreamError or UpstreamFailed
	Rule         string            `json:"rule,omitempty"`
	Facet        string            `json:"facet,omitempty"`
	MaskRules    []string          `json:"mask_rules"`
	Identity     map[string]string `json:"identity"` // facet name -> value, present facets only
	List         string            `json:"list,omitempty"`
	Unreferenced bool              `json:"unreferenced"`
	Records      int               `json:"records"`
	Served       map[string]int    `json:"served"` // class -> records served with it
	Masked       map[string]int    `json:"masked"` // class -> records it was masked on
	Budgets      []Budget          `json:"budgets"`
	RateLimits   []RateLimit       `json:"rate_limits"`
	// Ban is the ban that refused the request (rule ban), nil for every
	// other decision.
	Ban *Ban `json:"ban,omitempty"`
}

// Ban is the ban that refused a request, as the state store's ban log
// keeps it: the detector's evidence (rule, figures, window) or an
// operator's reason, and what became of it since.
type Ban struct {
	Facet string `json:"facet"`
	Value string `json:"value"`
	// State: held (in force now), expired (its until has passed),
	// lifted (removed since: warden ban rm), replaced (a later ban on the
	// value took its place), or unknown (no record of it: no ban log was
	// given, the store keeps none, store.memory.dir unset or Redis, or the
	// log was compacted since the ban ended); Reason and the times are
	// then not known.
	State string `json:"state"`
	// Unavailable: why the ban store could not be read (Redis down): the
	// state is then unknown, and the rest of the explanation stands.
	Unavailable string     `json:"unavailable,omitempty"`
	Reason      string     `json:"reason,omitempty"`
	By          string     `json:"by,omitempty"`
	Created     *time.Time `json:"created,omitempty"`
	Until       *time.Time `json:"until,omitempty"` // none: no expiry
}

// The states of a ban, Ban.State's values.
const (
	BanHeld     = "held"
	BanExpired  = "expired"
	BanLifted   = "lifted"
	BanReplaced = "replaced"
	BanUnknown  = "unknown"
)

// banAt is the ban on e's facet value that refused e: the last put no
// later than the request (or, failing one, the first within a second
// after it: a ban put while the request waited for admission), from log
// (nil: unknown), its state judged at now.
func banAt(ctx context.Context, log BanLog, e *ledger.Entry, now time.Time) (*Ban, error) {
	b := &Ban{Facet: e.Facet, State: BanUnknown}
	if f, ok := identify.ParseFacet(e.Facet); ok {
		b.Value = e.Identity[f-1]
	}
	if log == nil || b.Value == "" {
		return b, nil
	}
	hist, err := log.BanHistory(ctx, store.BanKey{Facet: b.Facet, Value: b.Value})
	if err != nil {
		// The decision, rules and counts come from the ledger: an
		// unreadable ban store (Redis down) costs the ban's reason, not
		// the answer to "why was I refused".
		if ctx.Err() != nil {
			return nil, fmt.Errorf("ban on %s %s: %w", b.Facet, b.Value, err)
		}
		b.Unavailable = err.Error()
		return b, nil
	}
	var found *store.BanChange
	for i := range hist {
		if c := hist[i].Created; !c.After(e.Time) {
			found = &hist[i]
		} else if found == nil && c.Sub(e.Time) <= time.Second {
			found = &hist[i]
			break
		}
	}
	if found == nil {
		return b, nil
	}
	b.Reason, b.By, b.Created = found.Reason, found.By, &found.Created
	if !found.Until.IsZero() {
		b.Until = &found.Until
	}
	switch {
	case found.Lifted:
		b.State = BanLifted
	case found.Replaced:
		b.State = BanReplaced
	case b.Until != nil && !now.Before(*b.Until):
		b.State = BanExpired
	default:
		b.State = BanHeld
	}
	return b, nil
}

// The decisions, Explanation.Decision's values.
const (
	// Served: the upstream's answer went out, nothing masked.
	Served = "served"
	// Masked: the upstream's answer went out with fields masked (MaskRules).
	Masked = "masked"
	// Refused: warden answered in place of the upstream, or before asking
	// it (Rule and Facet say which rule). Rule request: refused at the
	// edge, before any configured rule was asked (CONNECT, an ambiguous
	// path, a server bound), Facet the reason; no budget or rate limit
	// rows then, and the identity is what was known (ip and net from the
	// peer at least).
	Refused = "refused"
	// UpstreamError: the upstream answered 400 or more and warden passed
	// that answer on (Status is the upstream's).
	UpstreamError = "upstream_error"
	// UpstreamFailed: the upstream gave no answer warden could send (down,
	// slow, too large) and warden answered 502 or 504 itself (499: the
	// client left first).
	UpstreamFailed = "upstream_failed"
)

// decision says what happened to a request from what the gateway recorded:
// a rule on every answer warden made in place of the upstream's (refusal.Own
// names warden's own, "upstream" among them, and no configured rule may take
// them), none on an upstream's answer it passed on, whatever its status.
func decision(rule string, status int, masked bool) string {
	switch {
	case rule == refusal.RuleUpstream:
		return UpstreamFailed
	case rule != "":
		return Refused
	case status >= 400:
		return UpstreamError
	case masked:
		return Masked
	}
	return Served
}

// Budget is what one budget of the config counted for the request's
// identity before it: distinct subjects of its class served unmasked to
// the facet's value (with the identity's account, for a budget on ip, net
// or fingerprint identified: own) in its window as it stood, tumbling
// from a multiple of the window since the Unix epoch, as the budgets count
// (from the ledger, so only what the ledger recorded).
//
// A budget naming provenances (Provenance) counts only records whose ids
// were shown to the identity that way; the ledger keeps whether a look-up
// was unreferenced, not how a referenced id was shown (its own network,
// search or a list), so Seen counts every record of the class served
// unmasked: an upper bound (UpperBound), exact only when the budget names
// every provenance.
type Budget struct {
	Name       string   `json:"name"`
	Facet      string   `json:"facet"`
	Value      string   `json:"value"`
	Account    string   `json:"account,omitempty"` // counted with this account (identified: own)
	Class      string   `json:"class"`
	Provenance []string `json:"provenance,omitempty"` // the budget's provenances; none: every record
	Window     string   `json:"window"`
	Seen       int      `json:"seen"`
	UpperBound bool     `json:"upper_bound,omitempty"` // Seen counts records of every provenance: at most that
	Limit      int      `json:"limit"`                 // the budget's own, before account_age tiers
	AgeTier    bool     `json:"age_tiers"`             // the limit is lower for young accounts (on a shared value, counting only its tier's accounts: Seen counts everyone's)
	// LimitApplied is the limit that held for this identity at the time:
	// its account_age tier's (YoungerThan names the tier) when one
	// applied, else Limit. TierUnknown: the budget has tiers and the
	// ledger does not say the account's age rank (a ledger written before
	// it kept it, ClickHouse, a request refused before the budgets were
	// asked); LimitApplied is then Limit, which may not be what held.
	LimitApplied int    `json:"limit_applied"`
	YoungerThan  string `json:"younger_than,omitempty"`
	TierUnknown  bool   `json:"tier_unknown,omitempty"`
	Applied      bool   `json:"applied"` // this budget refused or masked the request
	// Mode is the budget's: enforce, or shadow (it counts and logs what it
	// would have done, and never applies). WouldApply: a shadow budget
	// the request took past its limit, which enforced would have masked
	// (or, with action block, refused) it.
	Mode       string `json:"mode"`
	Action     string `json:"action"`
	WouldApply bool   `json:"would_apply,omitempty"`
}

// allProvenances are the provenances a look-up may have: a budget naming
// every one counts every record, as one naming none.
var allProvenances = []inspect.Provenance{inspect.Social, inspect.Search, inspect.List, inspect.Unreferenced}

// provenanceOf is a budget's provenances as names, and whether the
// ledger's count of its class is only an upper bound of what it counted
// (it names some provenances, not all).
func provenanceOf(b ration.BudgetConfig) (names []string, bound bool) {
	for _, p := range b.Provenance {
		names = append(names, string(p))
	}
	for _, p := range allProvenances {
		if len(b.Provenance) > 0 && !slices.Contains(b.Provenance, p) {
			bound = true
		}
	}
	return names, bound
}

// RateLimit is what one rate limit of the config saw of the request's
// identity before it: the requests the ledger recorded (admitted, or
// refused where limits were asked: not those refused at the edge, for
// their credentials, by a ban, or for a state store that failed at
// admission, facet admit; ledger.LimitsSaw) from the value the
// limit counts, with the identity's account
// when the limit counts them together (identified: own), on the limit's
// routes, within its burst window: burst times the rate's interval, the
// span its decision depends on (with no request in it, it admits). In any
// such span the limit admits at most Admits = 2 x burst (a burst at once,
// then one per interval). Only the routes of the route map are recorded:
// a limit on other routes too saw more than Seen.
type RateLimit struct {
	Name    string `json:"name"`
	Facet   string `json:"facet"`
	Value   string `json:"value"`
	Account string `json:"account,omitempty"` // counted with this account (identified: own)
	Rate    string `json:"rate"`
	Burst   int    `json:"burst"`
	Window  string `json:"window"`
	Seen    int    `json:"seen"`
	Admits  int    `json:"admits"`
	Applied bool   `json:"applied"` // this limit refused the request
}

// Request explains request id from l, the Access searched in win (zero:
// the whole ledger), with a row per budget of rules whose facet the
// identity has and per rate limit that counted the request (none: no
// rows). It returns nil when win holds no Access of that id.
func Request(ctx context.Context, l Ledger, rules Rules, win ledger.Window, id string) (*Explanation, error) {
	found, err := l.Find(ctx, win, id)
	if err != nil {
		return nil, fmt.Errorf("explain %s: %w", id, err)
	}
	if found == nil {
		return nil, nil
	}
	e := found.Entry
	x := &Explanation{RequestID: id, File: found.File, Time: e.Time, Route: e.Route, Status: e.Status, Rule: e.Rule, Facet: e.Facet,
		MaskRules: append([]string{}, e.MaskRules...), Identity: map[string]string{}, List: e.List, Unreferenced: e.Unreferenced,
		Records: len(e.Records), Served: map[string]int{}, Masked: map[string]int{}, Budgets: []Budget{}, RateLimits: []RateLimit{}}
	for _, f := range identify.Facets {
		if v := e.Identity[f-1]; v != "" {
			x.Identity[f.String()] = v
		}
	}
	for _, rc := range e.Records {
		for s := rc.Classes; s != 0; s &= s - 1 {
			i := bits.TrailingZeros64(s)
			if i >= len(e.Classes) {
				continue // a bit the route names no class for
			}
			if rc.Masked&(1<<uint(i)) != 0 {
				x.Masked[e.Classes[i]]++
			} else {
				x.Served[e.Classes[i]]++
			}
		}
	}
	if e.Rule == refusal.RuleBan {
		if x.Ban, err = banAt(ctx, rules.Bans, e, time.Now()); err != nil {
			return nil, fmt.Errorf("explain %s: %w", id, err)
		}
	}
	// A responder's answer (a canary) is recorded with the rules that
	// masked it and no records: its mask rules say it was masked.
	x.Decision = decision(e.Rule, e.Status, len(x.Masked) > 0 || len(e.MaskRules) > 0)
	if e.Rule == refusal.RuleRequest {
		// Refused at the gateway's edge, before any budget or limit was
		// asked (Facet is the reason): none counted or decided it, so none
		// has a row.
		return x, nil
	}
	bounds := ration.AgeBounds(rules.Budgets)
	for _, b := range rules.Budgets {
		f, ok := identify.ParseFacet(b.Facet)
		if !ok {
			continue
		}
		val := e.Identity[f-1]
		if val == "" {
			continue
		}
		// An account behind an address counts there on its own (ration:
		// identified own); anonymous requests share the value's count.
		var also []ledger.FacetValue
		acct := ""
		if f != identify.FacetAccount && f != identify.FacetApp && cmp.Or(b.Identified, ration.DefaultIdentified(b.Facet)) == ration.Own {
			if acct = e.Identity[identify.FacetAccount-1]; acct != "" {
				also = append(also, ledger.FacetValue{By: identify.FacetAccount, Value: acct})
			}
		}
		// The budget's window as it stood (tumbling), up to just before
		// the request: its own records are not in its count. A shadow
		// budget also counts with them (with), what it would have done.
		shadow := cmp.Or(b.Mode, ration.Enforce) == ration.Shadow
		before := ledger.Window{From: windowStart(e.Time, b.Window), To: e.Time.Add(-time.Microsecond)}
		upTo := ledger.Window{From: before.From, To: e.Time}
		var seen, with int
		if sl, ok := l.(splitLedger); ok && shadow {
			seen, with, err = sl.DistinctSplit(ctx, upTo, e.Time, f, val, b.Class, also...)
		} else {
			seen, err = l.Distinct(ctx, before, f, val, b.Class, also...)
			if err == nil && shadow {
				with, err = l.Distinct(ctx, upTo, f, val, b.Class, also...)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("explain %s: budget %s: %w", id, b.Name, err)
		}
		provs, bound := provenanceOf(b)
		row := Budget{Name: b.Name, Facet: b.Facet, Value: val, Account: acct, Class: b.Class, Provenance: provs,
			Window: b.Window.String(), Seen: seen, UpperBound: bound, Limit: b.Limit, AgeTier: len(b.AccountAge) > 0,
			Applied: e.Rule == b.Name || slices.Contains(e.MaskRules, b.Name), Mode: string(cmp.Or(b.Mode, ration.Enforce)),
			Action: cmp.Or(b.Action, ration.Mask), LimitApplied: b.Limit}
		if row.AgeTier {
			// The tier the budgets applied, told from the account's age
			// rank the Access recorded against the same config's bounds.
			switch t, applies, known := ration.TierAt(b, bounds, e.AgeRank); {
			case !known:
				row.TierUnknown = true
			case applies:
				row.LimitApplied, row.YoungerThan = min(t.Limit, b.Limit), t.YoungerThan.String()
			}
		}
		if shadow {
			// What it would have done: the count with this request's own
			// records, past the limit and grown by them (a record of a
			// subject already counted is served within any limit).
			row.WouldApply = with > seen && with > row.LimitApplied
		}
		x.Budgets = append(x.Budgets, row)
	}
	if err := rateLimits(ctx, l, rules, e, x); err != nil {
		return nil, fmt.Errorf("explain %s: %w", id, err)
	}
	return x, nil
}

// rateLimits adds x's rows for the limits of rules that counted e, each
// decided as admission decides it (admit.Admitter.Applies) on e's route
// pattern: a limit's {wildcard} matches the route's, a literal segment
// does not.
func rateLimits(ctx context.Context, l Ledger, rules Rules, e *ledger.Entry, x *Explanation) error {
	// Refused for its credentials, by a ban, or for a state store that
	// failed at admission: no limit decided it, so none counted it and
	// none has a row (as none counts it in Seen).
	if len(rules.Limits) == 0 || !ledger.LimitsSaw(e.Rule, e.Facet) {
		return nil
	}
	a, err := admit.New(rules.Limits, rules.Allow, nil, nil, nil)
	if err != nil {
		return err
	}
	id := e.Who()
	method, path := splitRoute(e.Route)
	counts := map[string]map[string]int{} // per window and key, per route
	for _, lim := range rules.Limits {
		applies, own := a.Applies(lim.Name, &id, method, path)
		if !applies {
			continue
		}
		f, _ := identify.ParseFacet(lim.Facet) // Applies: a known facet
		iv, err := config.ParseRate(lim.Rate)
		if err != nil {
			return fmt.Errorf("rate limit %s: %w", lim.Name, err)
		}
		burst := max(lim.Burst, 1)
		span := iv * time.Duration(burst)
		row := RateLimit{Name: lim.Name, Facet: lim.Facet, Value: id.Value(f), Rate: lim.Rate, Burst: burst,
			Window: span.String(), Admits: 2 * burst, Applied: e.Rule == lim.Name}
		want := []ledger.FacetValue{{By: f, Value: row.Value}}
		if own {
			row.Account = id.Account
			want = append(want, ledger.FacetValue{By: identify.FacetAccount, Value: id.Account})
		}
		// Limits of one window and key read the ledger once.
		key := fmt.Sprint(span, want)
		perRoute, ok := counts[key]
		if !ok {
			// Before the request: it is not in its own count.
			perRoute, err = l.Requests(ctx, ledger.Window{From: e.Time.Add(-span), To: e.Time.Add(-time.Microsecond)}, want)
			if err != nil {
				return fmt.Errorf("rate limit %s: %w", lim.Name, err)
			}
			counts[key] = perRoute
		}
		for route, n := range perRoute {
			m, p := splitRoute(route)
			if on, _ := a.Applies(lim.Name, &id, m, p); on {
				row.Seen += n
			}
		}
		x.RateLimits = append(x.RateLimits, row)
	}
	return nil
}

// splitRoute is a recorded route pattern ("GET /v1/users/{id}") as a
// method and a path, as admission matches a request's.
func splitRoute(route string) (method, path string) {
	if m, p, ok := strings.Cut(route, " "); ok {
		return m, p
	}
	return "", route
}

// windowStart is the start of the tumbling window of length w holding t:
// a multiple of w since the Unix epoch, as the stores align budgets.
func windowStart(t time.Time, w time.Duration) time.Time {
	if w <= 0 {
		return t
	}
	ns := t.UnixNano()
	m := ns % int64(w)
	if m < 0 {
		m += int64(w)
	}
	return time.Unix(0, ns-m).In(t.Location())
}
