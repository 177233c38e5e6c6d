package explain_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/explain"
	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/ration"
	"github.com/warden-gw/warden/internal/refusal"
)

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

// record writes the Accesses to a new ledger directory.
func record(t *testing.T, accesses ...*inspect.Access) ledger.Source {
	t.Helper()
	dir := t.TempDir()
	l, err := ledger.Open(ledger.Options{Dir: dir, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accesses {
		l.Record(a)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return ledger.Dir(dir)
}

func TestRequest(t *testing.T) {
	acct := identify.Identity{Account: "7", IP: netip.MustParseAddr("192.0.2.7"), Net: netip.MustParsePrefix("192.0.2.0/24")}
	const contact, profile = inspect.ClassSet(1), inspect.ClassSet(2)
	classes := []string{"contact", "profile"}
	served := func(id string, at time.Duration, subjects ...string) *inspect.Access {
		a := &inspect.Access{RequestID: id, Route: "GET /v1/users/{id}", Identity: acct, Time: t0.Add(at), Status: 200, Classes: classes}
		for _, s := range subjects {
			a.Records = append(a.Records, inspect.Record{ID: s, Classes: contact | profile})
		}
		return a
	}
	// Account 7's history: contact details of 1, 2 and 3 served more than
	// an hour before, 4 and 5 within the hour (5 masked, so not counted),
	// then the requests explained.
	masked := served("masked", 0, "6", "7")
	masked.Records[1].Masked = contact
	masked.MaskRules = []string{"contact-account-hour"}
	refused := served("refused", time.Second)
	refused.Status, refused.Rule, refused.Facet = 429, "contact-ip-day", "ip"
	// The upstream's 404, passed on; the upstream down (warden's 502).
	upstream := served("upstream-404", 2*time.Second)
	upstream.Status = 404
	down := served("upstream-down", 2500*time.Millisecond)
	down.Status, down.Rule = 502, "upstream"
	odd := served("odd-bit", 3*time.Second, "8")
	odd.Records[0].Classes |= 1 << 5 // a bit the route names no class for
	early := served("early", -2*time.Hour, "1", "2", "3")
	hour := served("hour", -30*time.Minute, "4", "5")
	hour.Records[1].Masked = contact
	// Account 8 behind the same address: contact-ip-day is identified:
	// own (the default on ip), so 7's count there leaves out what 8 was
	// served (no account pays for its neighbours).
	neighbour := served("neighbour", -time.Hour, "20", "21")
	neighbour.Identity.Account = "8"
	src := record(t, early, hour, neighbour, masked, refused, upstream, down, odd)

	budgets := []ration.BudgetConfig{
		{Name: "contact-account-hour", Facet: "account", Class: "contact", Limit: 2, Window: time.Hour,
			AccountAge: []ration.AgeTier{{YoungerThan: 24 * time.Hour, Limit: 1}}},
		{Name: "contact-ip-day", Facet: "ip", Class: "contact", Limit: 50, Window: 24 * time.Hour},
		{Name: "profile-app", Facet: "app", Class: "profile", Limit: 9, Window: time.Hour}, // the identity has no app
		{Name: "bogus", Facet: "nope", Class: "contact", Limit: 9, Window: time.Hour},
	}
	ctx := context.Background()
	for _, tt := range []struct {
		id                 string
		decision           string
		served, maskedN    map[string]int
		hourSeen, daySeen  int
		hourApplied, dayAp bool
	}{
		// Windows are tumbling, as the budgets count: the hour's began at
		// 10:00, with "masked" (4, at 09:30, was in the hour before); the
		// day's at 00:00: 1 to 4 (5 was masked).
		{"masked", "masked", map[string]int{"contact": 1, "profile": 2}, map[string]int{"contact": 1}, 0, 4, true, false},
		// "masked" itself served 6 unmasked before "refused".
		{"refused", "refused", map[string]int{}, map[string]int{}, 1, 5, false, true},
		{"upstream-404", "upstream_error", map[string]int{}, map[string]int{}, 1, 5, false, false},
		{"upstream-down", "upstream_failed", map[string]int{}, map[string]int{}, 1, 5, false, false},
		{"odd-bit", "served", map[string]int{"contact": 1, "profile": 1}, map[string]int{}, 1, 5, false, false},
	} {
		t.Run(tt.id, func(t *testing.T) {
			x, err := explain.Request(ctx, src, explain.Rules{Budgets: budgets}, ledger.Window{}, tt.id)
			if err != nil || x == nil {
				t.Fatalf("Request: %v, %v", x, err)
			}
			if x.Decision != tt.decision || !maps.Equal(x.Served, tt.served) || !maps.Equal(x.Masked, tt.maskedN) {
				t.Errorf("decision %s, served %v, masked %v; want %s, %v, %v", x.Decision, x.Served, x.Masked, tt.decision, tt.served, tt.maskedN)
			}
			if want := map[string]string{"account": "7", "ip": "192.0.2.7", "net": "192.0.2.0/24"}; !maps.Equal(x.Identity, want) {
				t.Errorf("identity %v, want %v", x.Identity, want)
			}
			want := []explain.Budget{
				{Name: "contact-account-hour", Facet: "account", Value: "7", Class: "contact", Window: "1h0m0s", Seen: tt.hourSeen, Limit: 2, AgeTier: true, LimitApplied: 2, TierUnknown: true, Applied: tt.hourApplied, Mode: "enforce", Action: "mask"},
				{Name: "contact-ip-day", Facet: "ip", Value: "192.0.2.7", Account: "7", Class: "contact", Window: "24h0m0s", Seen: tt.daySeen, Limit: 50, LimitApplied: 50, Applied: tt.dayAp, Mode: "enforce", Action: "mask"},
			}
			if !reflect.DeepEqual(x.Budgets, want) {
				t.Errorf("budgets:\n%+v\nwant\n%+v", x.Budgets, want)
			}
		})
	}

	// No budgets: an empty list ([] in JSON, as the page and --json expect).
	x, err := explain.Request(ctx, src, explain.Rules{}, ledger.Window{}, "masked")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(x.Budgets); string(b) != "[]" {
		t.Errorf("budgets without a config: %s", b)
	}
	// An id the window does not hold: nil, no error.
	for _, c := range []struct {
		id  string
		win ledger.Window
	}{{"nope", ledger.Window{}}, {"early", ledger.Window{From: t0.Add(-time.Hour)}}} {
		if x, err := explain.Request(ctx, src, explain.Rules{Budgets: budgets}, c.win, c.id); x != nil || err != nil {
			t.Errorf("%s in %v: %+v, %v; want nil, nil", c.id, c.win, x, err)
		}
	}
}

// TestProvenanceBound: a budget naming some provenances counts only the
// look-ups of ids shown that way, which the ledger cannot tell apart (it
// keeps whether a look-up was unreferenced, not how a referenced id was
// shown): its row counts every record of the class and says it is an
// upper bound, in the JSON too; a budget naming every provenance, or
// none, counts every record: exact, and the JSON says no bound.
func TestProvenanceBound(t *testing.T) {
	who := identify.Identity{Account: "7"}
	look := func(id string, at time.Duration, subject string, unref bool) *inspect.Access {
		return &inspect.Access{RequestID: id, Route: "GET /v1/users/{id}", Identity: who, Time: t0.Add(at), Status: 200, Classes: []string{"contact"},
			Lookup: subject, Unreferenced: unref, Records: []inspect.Record{{ID: subject, Classes: 1}}}
	}
	// 1 found through search, 2 in its own followers, 3 never shown: the
	// search budget counted 1 alone, the ledger holds 3 subjects.
	src := record(t, look("a", 0, "1", false), look("b", time.Second, "2", false), look("c", 2*time.Second, "3", true), look("now", time.Minute, "4", false))
	budget := func(name string, provs ...inspect.Provenance) ration.BudgetConfig {
		return ration.BudgetConfig{Name: name, Facet: "account", Class: "contact", Limit: 9, Window: time.Hour, Provenance: provs}
	}
	rules := explain.Rules{Budgets: []ration.BudgetConfig{budget("search", inspect.Search), budget("every", inspect.Social, inspect.Search, inspect.List, inspect.Unreferenced),
		budget("none")}}
	x, err := explain.Request(context.Background(), src, rules, ledger.Window{}, "now")
	if err != nil || x == nil {
		t.Fatalf("Request: %v, %v", x, err)
	}
	row := func(name string, provs []string, bound bool) explain.Budget {
		return explain.Budget{Name: name, Facet: "account", Value: "7", Class: "contact", Provenance: provs, Window: "1h0m0s", Seen: 3, UpperBound: bound, Limit: 9, LimitApplied: 9, Mode: "enforce", Action: "mask"}
	}
	want := []explain.Budget{row("search", []string{"search"}, true), row("every", []string{"social", "search", "list", "unreferenced"}, false), row("none", nil, false)}
	if !reflect.DeepEqual(x.Budgets, want) {
		t.Errorf("budgets:\n%+v\nwant\n%+v", x.Budgets, want)
	}
	b, _ := json.Marshal(x.Budgets)
	for _, w := range []string{`"name":"search","facet":"account","value":"7","class":"contact","provenance":["search"],"window":"1h0m0s","seen":3,"upper_bound":true,`,
		`"name":"none","facet":"account","value":"7","class":"contact","window":"1h0m0s","seen":3,"limit":9,`} {
		if !strings.Contains(string(b), w) {
			t.Errorf("JSON %s\nlacks %s", b, w)
		}
	}
}

// TestDecision: the decision is told from the rule and status the gateway
// recorded: a rule for every answer warden made itself, none for the
// upstream's, which it passed on whatever their status.
func TestDecision(t *testing.T) {
	for _, tt := range []struct {
		name   string
		rule   string
		status int
		masked inspect.ClassSet
		want   string
	}{
		{"served", "", 200, 0, explain.Served},
		{"served, no content", "", 204, 0, explain.Served},
		{"served, a redirect", "", 302, 0, explain.Served},
		{"masked", "", 200, 1, explain.Masked},
		{"rate limit", "per-ip", 429, 0, explain.Refused},
		{"budget blocks", "contact-account-hour", 429, 0, explain.Refused},
		{"ban", "ban", 403, 0, explain.Refused},
		{"credential", "identity", 401, 0, explain.Refused},
		{"two account headers", "identity", 400, 0, explain.Refused},
		{"store closed", "store", 503, 0, explain.Refused},
		{"answer not JSON", "other_type", 502, 0, explain.Refused},
		{"answer too large to inspect", "max_body", 502, 0, explain.Refused},
		{"answer malformed", "malformed", 502, 0, explain.Refused},
		{"rewrite failed", "rewrite", 502, 0, explain.Refused},
		{"upstream 404", "", 404, 0, explain.UpstreamError},
		{"upstream 401", "", 401, 0, explain.UpstreamError},
		{"upstream 429", "", 429, 0, explain.UpstreamError},
		{"upstream 500", "", 500, 0, explain.UpstreamError},
		{"upstream down", "upstream", 502, 0, explain.UpstreamFailed},
		{"upstream slow", "upstream", 504, 0, explain.UpstreamFailed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := &inspect.Access{RequestID: "r", Route: "GET /v1/users/{id}", Identity: identify.Identity{Account: "7"}, Time: t0,
				Status: tt.status, Rule: tt.rule, Classes: []string{"contact"}}
			if tt.rule == "" && tt.status < 300 {
				a.Records = []inspect.Record{{ID: "1", Classes: 1, Masked: tt.masked}}
			}
			x, err := explain.Request(context.Background(), record(t, a), explain.Rules{}, ledger.Window{}, "r")
			if err != nil || x == nil {
				t.Fatalf("Request: %v, %v", x, err)
			}
			if x.Decision != tt.want || x.Status != tt.status || x.Rule != tt.rule {
				t.Errorf("decision %q, status %d, rule %q; want %q, %d, %q", x.Decision, x.Status, x.Rule, tt.want, tt.status, tt.rule)
			}
		})
	}
}

// failing is a ledger whose counts fail.
type failing struct{ ledger.Source }

func (failing) Distinct(context.Context, ledger.Window, identify.Facet, string, string, ...ledger.FacetValue) (int, error) {
	return 0, errors.New("disk on fire")
}

func TestRequestError(t *testing.T) {
	src := record(t, &inspect.Access{RequestID: "r", Route: "GET /", Identity: identify.Identity{Account: "7"}, Time: t0, Status: 200})
	budgets := []ration.BudgetConfig{{Name: "b", Facet: "account", Class: "contact", Limit: 1, Window: time.Hour}}
	_, err := explain.Request(context.Background(), failing{src}, explain.Rules{Budgets: budgets}, ledger.Window{}, "r")
	if err == nil || err.Error() != "explain r: budget b: disk on fire" {
		t.Fatalf("error %v", err)
	}
}

// TestRateLimits: a row per limit that counted the request, as admission
// decides it (facet present, routes, allow rules, identified: own), with
// the requests the ledger recorded from its key in the burst window
// before the request, on its routes.
func TestRateLimits(t *testing.T) {
	ip, nw := netip.MustParseAddr("192.0.2.7"), netip.MustParsePrefix("192.0.2.0/24")
	at := func(id, account, route string, d time.Duration) *inspect.Access {
		return &inspect.Access{RequestID: id, Route: route, Identity: identify.Identity{Account: account, IP: ip, Net: nw},
			Time: t0.Add(10*time.Second + d), Status: 200}
	}
	const users, search = "GET /v1/users/{id}", "GET /v1/search"
	target := at("target", "7", users, 0)
	target.Status, target.Rule, target.Facet = 429, "per-ip", "ip"
	// Refused at the edge (an ambiguous path on the route): no limit saw
	// it, so no row counts it.
	edge := at("edge", "7", users, -300*time.Millisecond)
	edge.Status, edge.Rule, edge.Facet = 400, refusal.RuleRequest, "ambiguous_path"
	// Refused before admission for a credential warden could not verify
	// (the address alone known), and refused by a ban, under which the
	// store asks no limit: no limit saw either, so no row counts them.
	unverified := at("unverified", "", users, -400*time.Millisecond)
	unverified.Status, unverified.Rule, unverified.Facet = 401, refusal.RuleIdentity, "account"
	twice := at("twice", "7", users, -450*time.Millisecond)
	twice.Status, twice.Rule, twice.Facet = 400, refusal.RuleIdentity, "account"
	banned := at("banned", "7", users, -600*time.Millisecond)
	banned.Status, banned.Rule, banned.Facet = 403, refusal.RuleBan, "account"
	// The state store failed: at admission no limit was decided, so none
	// counts it; at rationing every limit had admitted it, and one an
	// older ledger recorded without the stage may have been seen: both
	// count.
	storeAdmit := at("store-admit", "7", users, -700*time.Millisecond)
	storeAdmit.Status, storeAdmit.Rule, storeAdmit.Facet = 503, refusal.RuleStore, refusal.StoreAdmit
	storeRation := at("store-ration", "7", users, -800*time.Millisecond)
	storeRation.Status, storeRation.Rule, storeRation.Facet = 503, refusal.RuleStore, refusal.StoreRation
	storeOld := at("store-old", "7", users, -900*time.Millisecond)
	storeOld.Status, storeOld.Rule = 503, refusal.RuleStore
	src := record(t,
		edge, unverified, twice, banned, storeAdmit, storeRation, storeOld,
		at("a7-users", "7", users, -500*time.Millisecond),
		at("a7-search", "7", search, -2*time.Second),
		at("a7-early", "7", users, -5*time.Second),
		at("a7-long-ago", "7", users, -time.Minute),
		at("a8", "8", users, -500*time.Millisecond), // a neighbour on the address
		at("anon", "", users, -200*time.Millisecond),
		target,
		at("a7-after", "7", users, time.Millisecond),
	)
	rules := explain.Rules{
		Limits: []config.Limit{
			{Name: "per-ip", Facet: "ip", Rate: "1/s", Burst: 3},                                                      // own: with account 7, 3 s
			{Name: "per-ip-shared", Facet: "ip", Rate: "2/s", Burst: 2, Identified: ration.Shared},                    // everyone on the address, 1 s
			{Name: "per-account", Facet: "account", Rate: "10/m", Burst: 5, Routes: []string{"GET /v1/users/{user}"}}, // 30 s, users only
			{Name: "search-only", Facet: "account", Rate: "1/s", Routes: []string{"/v1/search"}},                      // not this route
			{Name: "exempted", Facet: "ip", Rate: "1/s"},                                                              // account 7 is allowed
			{Name: "per-app", Facet: "app", Rate: "1/s"},                                                              // no app
		},
		Allow: []config.Allow{{Name: "ops", Accounts: []string{"7"}, Rules: []string{"exempted"}}},
	}
	x, err := explain.Request(context.Background(), src, rules, ledger.Window{}, "target")
	if err != nil || x == nil {
		t.Fatalf("Request: %v, %v", x, err)
	}
	want := []explain.RateLimit{
		{Name: "per-ip", Facet: "ip", Value: "192.0.2.7", Account: "7", Rate: "1/s", Burst: 3, Window: "3s", Seen: 4, Admits: 6, Applied: true},
		{Name: "per-ip-shared", Facet: "ip", Value: "192.0.2.7", Rate: "2/s", Burst: 2, Window: "1s", Seen: 5, Admits: 4},
		{Name: "per-account", Facet: "account", Value: "7", Rate: "10/m", Burst: 5, Window: "30s", Seen: 4, Admits: 10},
	}
	if !slices.Equal(x.RateLimits, want) {
		t.Errorf("rate limits:\n%+v\nwant\n%+v", x.RateLimits, want)
	}
	// Refused for its credentials, by a ban, or for a store that failed at
	// admission: no limit counted it, so no rows, though the limits would
	// apply to its identity and route.
	for _, id := range []string{"unverified", "twice", "banned", "store-admit"} {
		x, err := explain.Request(context.Background(), src, rules, ledger.Window{}, id)
		if err != nil || x == nil || x.Decision != explain.Refused {
			t.Fatalf("%s: %+v, %v", id, x, err)
		}
		if b, _ := json.Marshal(x.RateLimits); string(b) != "[]" {
			t.Errorf("%s: rate limit rows %s, want none", id, b)
		}
	}
	// Without limits: an empty list ([] in JSON).
	x, err = explain.Request(context.Background(), src, explain.Rules{}, ledger.Window{}, "target")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := json.Marshal(x.RateLimits); string(b) != "[]" {
		t.Errorf("rate limits without a config: %s", b)
	}
}

// TestEdgeRefusal: a request refused at the gateway's edge (rule request),
// recorded with no route and the peer's facets only, is explained: the
// decision, status, rule and reason, the identity as known, and no budget
// or rate limit rows, even with a config whose rules would match it.
func TestEdgeRefusal(t *testing.T) {
	ip, nw := netip.MustParseAddr("192.0.2.9"), netip.MustParsePrefix("192.0.2.0/24")
	src := record(t, &inspect.Access{RequestID: "edge", Identity: identify.Identity{IP: ip, Net: nw}, Time: t0, Status: 405,
		Rule: refusal.RuleRequest, Facet: refusal.RequestConnect})
	rules := explain.Rules{
		Budgets: []ration.BudgetConfig{{Name: "contact-ip-day", Facet: "ip", Class: "contact", Limit: 50, Window: 24 * time.Hour}},
		Limits:  []config.Limit{{Name: "per-ip", Facet: "ip", Rate: "1/s", Burst: 3}},
	}
	x, err := explain.Request(context.Background(), src, rules, ledger.Window{}, "edge")
	if err != nil || x == nil {
		t.Fatalf("Request: %v, %v", x, err)
	}
	if x.Decision != explain.Refused || x.Status != 405 || x.Rule != refusal.RuleRequest || x.Facet != refusal.RequestConnect || x.Route != "" ||
		!maps.Equal(x.Identity, map[string]string{"ip": "192.0.2.9", "net": "192.0.2.0/24"}) || len(x.Budgets) != 0 || len(x.RateLimits) != 0 || x.Records != 0 {
		t.Fatalf("explanation %+v", x)
	}
	if b, _ := json.Marshal(x); !json.Valid(b) {
		t.Fatalf("JSON %s", b)
	}
}

// TestSuperseded: a request that panicked after its Access was recorded
// has a second Access of its id, the 500 sent (rule internal, facet
// answering): explain gives that one, without rate limit rows, and a
// later request's limits count the request once.
func TestSuperseded(t *testing.T) {
	id := identify.Identity{Account: "7"}
	const users = "GET /v1/users/{id}"
	served := &inspect.Access{RequestID: "r", Route: users, Identity: id, Time: t0.Add(time.Second), Status: 200}
	answered := &inspect.Access{RequestID: "r", Route: users, Identity: id, Time: t0.Add(1100 * time.Millisecond), Status: 500,
		Rule: refusal.RuleInternal, Facet: refusal.InternalAnswering}
	next := &inspect.Access{RequestID: "next", Route: users, Identity: id, Time: t0.Add(2 * time.Second), Status: 200}
	src := record(t, served, answered, next)
	rules := explain.Rules{Limits: []config.Limit{{Name: "per-account", Facet: "account", Rate: "1/s", Burst: 5}}}
	x, err := explain.Request(context.Background(), src, rules, ledger.Window{}, "r")
	if err != nil || x == nil {
		t.Fatalf("Request: %v, %v", x, err)
	}
	if x.Status != 500 || x.Rule != refusal.RuleInternal || x.Facet != refusal.InternalAnswering || x.Decision != explain.Refused || len(x.RateLimits) != 0 {
		t.Errorf("explain r: %+v, want the 500 that superseded the 200, no rate limit rows", x)
	}
	x, err = explain.Request(context.Background(), src, rules, ledger.Window{}, "next")
	if err != nil || x == nil {
		t.Fatalf("Request: %v, %v", x, err)
	}
	if len(x.RateLimits) != 1 || x.RateLimits[0].Seen != 1 {
		t.Errorf("rate limits of the next request %+v, want per-account having seen the request once", x.RateLimits)
	}
}

// TestShadowBudget: a budget in shadow mode never applies; its row says so
// and whether the request took it past its limit (what it would have done,
// masked or refused), and not when the request's records were of subjects
// it had counted already.
func TestShadowBudget(t *testing.T) {
	who := identify.Identity{Account: "7"}
	look := func(id string, at time.Duration, subject string) *inspect.Access {
		return &inspect.Access{RequestID: id, Route: "GET /v1/users/{id}", Identity: who, Time: t0.Add(at), Status: 200, Classes: []string{"contact"},
			Lookup: subject, Records: []inspect.Record{{ID: subject, Classes: 1}}}
	}
	// Subjects 1 and 2, then 3 (past a limit of 2), then 1 again.
	src := record(t, look("a", 0, "1"), look("b", time.Second, "2"), look("past", 2*time.Second, "3"), look("again", 3*time.Second, "1"))
	budget := func(name, action string, limit int) ration.BudgetConfig {
		return ration.BudgetConfig{Name: name, Facet: "account", Class: "contact", Limit: limit, Window: time.Hour, Mode: ration.Shadow, Action: action}
	}
	rules := explain.Rules{Budgets: []ration.BudgetConfig{budget("mask", "mask", 2), budget("block", "block", 2), budget("roomy", "mask", 5)}}
	if _, ok := src.(interface {
		DistinctSplit(context.Context, ledger.Window, time.Time, identify.Facet, string, string, ...ledger.FacetValue) (int, int, error)
	}); !ok {
		t.Fatal("a ledger directory counts a shadow budget in two passes")
	}
	for _, c := range []struct {
		id   string
		want []bool // WouldApply of mask, block, roomy
	}{
		{"b", []bool{false, false, false}},     // 2 of 2
		{"past", []bool{true, true, false}},    // 3 of 2
		{"again", []bool{false, false, false}}, // 1 was counted already
	} {
		x, err := explain.Request(context.Background(), src, rules, ledger.Window{}, c.id)
		if err != nil || x == nil {
			t.Fatalf("Request %s: %v, %v", c.id, x, err)
		}
		// Counted in one pass (a directory's DistinctSplit) or in two (a
		// source without it, ClickHouse's), the answer is one.
		x2, err := explain.Request(context.Background(), twoPass{src}, rules, ledger.Window{}, c.id)
		if err != nil || !reflect.DeepEqual(x, x2) {
			t.Errorf("%s: in one pass %+v, in two %+v (%v)", c.id, x.Budgets, x2.Budgets, err)
		}
		for i, b := range x.Budgets {
			if b.Mode != "shadow" || b.Applied || b.WouldApply != c.want[i] {
				t.Errorf("%s: budget %s: mode %q applied %v would_apply %v; want shadow, false, %v", c.id, b.Name, b.Mode, b.Applied, b.WouldApply, c.want[i])
			}
		}
		if c.id == "past" {
			j, _ := json.Marshal(x.Budgets[1])
			if !strings.Contains(string(j), `"mode":"shadow","action":"block","would_apply":true`) {
				t.Errorf("JSON %s lacks the shadow budget's mode, action and would_apply", j)
			}
		}
	}
}

// twoPass is a Ledger without DistinctSplit: a shadow budget's counts
// before its request and with it are then asked one at a time.
type twoPass struct{ l explain.Ledger }

func (p twoPass) Find(ctx context.Context, win ledger.Window, id string) (*ledger.Found, error) {
	return p.l.Find(ctx, win, id)
}

func (p twoPass) Distinct(ctx context.Context, win ledger.Window, by identify.Facet, value, class string, also ...ledger.FacetValue) (int, error) {
	return p.l.Distinct(ctx, win, by, value, class, also...)
}

func (p twoPass) Requests(ctx context.Context, win ledger.Window, want []ledger.FacetValue) (map[string]int, error) {
	return p.l.Requests(ctx, win, want)
}
