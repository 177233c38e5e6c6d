package ration

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/store"
	"github.com/warden-gw/warden/internal/store/memory"
)

// lab is testdata/lab-routes.yaml: the lab's route map and rules.
type lab struct {
	Inspect inspect.Config `yaml:"inspect"`
	Ration  Config         `yaml:"ration"`
}

func loadLab(t testing.TB) lab {
	t.Helper()
	b, err := os.ReadFile("testdata/lab-routes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var l lab
	if err := yaml.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	return l
}

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func newStore(t testing.TB) *memory.Store {
	st := memory.New(memory.Options{SweepEvery: -1})
	t.Cleanup(func() { st.Close() })
	return st
}

type env struct {
	t   testing.TB
	r   *rationer
	reg *prometheus.Registry
}

func newEnv(t testing.TB, cfg Config, icfg inspect.Config) *env {
	t.Helper()
	reg := prometheus.NewRegistry()
	r, err := newR(cfg, icfg, newStore(t), NewMetrics(reg), nil)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, r: r, reg: reg}
}

// profile is a lab full profile (see the platform contract).
func profile(id int) []byte {
	return fmt.Appendf(nil, `{"id":"%d","username":"user_%d","full_name":"User %d","bio":"Hi, I take \"photos\".","city":"Lyon",`+
		`"category":"art","is_business":false,"follower_count":%d,"following_count":3,"email":"user%d@example.org","phone":"+3361234%04d"}`,
		id, id, id, id%97, id, id%10000)
}

// followers is a lab follower list of the given ids.
func followers(ids ...int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"users":[`)
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"%d","username":"user_%d","full_name":"User %d","follower_count":1,"is_business":false}`, id, id, id)
	}
	b.WriteString(`],"next_cursor":null}`)
	return b.Bytes()
}

func account(a string) *identify.Identity {
	return &identify.Identity{Account: a, AccountCreated: t0.AddDate(-1, 0, 0), IP: netip.MustParseAddr("192.0.2.10"),
		Net: netip.MustParsePrefix("192.0.2.0/24")}
}

func (e *env) get(now time.Time, id *identify.Identity, path string, body []byte) Outcome {
	e.t.Helper()
	return e.do(now, id, path, Response{Status: 200, ContentType: "application/json", Body: body})
}

func (e *env) do(now time.Time, id *identify.Identity, target string, resp Response) Outcome {
	e.t.Helper()
	path, q, _ := strings.Cut(target, "?")
	rt, ok := e.r.Match("GET", path)
	if !ok {
		e.t.Fatalf("no route for %s", path)
	}
	out, err := e.r.Apply(context.Background(), now, id, Request{Method: "GET", Path: path, RawQuery: q, ID: "req-" + target}, rt, resp)
	if err != nil {
		e.t.Fatalf("Apply %s: %v", target, err)
	}
	return out
}

// served decodes a profile answer and reports whether its contact came out.
func served(t testing.TB, out Outcome, orig []byte) bool {
	t.Helper()
	if out.Block != nil {
		return false
	}
	if out.Body == nil {
		return true
	}
	var got, want map[string]any
	if err := json.Unmarshal(out.Body, &got); err != nil {
		t.Fatalf("masked answer is not JSON: %v\n%s", err, out.Body)
	}
	_ = json.Unmarshal(orig, &want)
	for k, v := range want {
		if k == "email" || k == "phone" {
			continue
		}
		if fmt.Sprint(got[k]) != fmt.Sprint(v) {
			t.Errorf("masking changed %s: %v -> %v", k, v, got[k])
		}
	}
	if got["email"] != nil || got["phone"] != nil {
		t.Errorf("masked answer still has contact: %s", out.Body)
	}
	if _, ok := got["_warden"]; !ok {
		t.Errorf("masked answer has no _warden note: %s", out.Body)
	}
	return false
}

func contactBudget(name, facet string, limit int) BudgetConfig {
	return BudgetConfig{Name: name, Facet: facet, Class: "contact", Limit: limit, Window: 24 * time.Hour}
}

func TestBudgets(t *testing.T) {
	l := loadLab(t)
	type step struct {
		id      int
		served  bool
		account string // default "a1"
		ip      string
		anon    bool // no account
	}
	seq := func(from, to int, ok bool) []step {
		var s []step
		for i := from; i <= to; i++ {
			s = append(s, step{id: i, served: ok})
		}
		return s
	}
	cat := func(ss ...[]step) []step {
		var out []step
		for _, s := range ss {
			out = append(out, s...)
		}
		return out
	}
	tests := []struct {
		name     string
		budgets  []BudgetConfig
		steps    []step
		wantRule string // rule named in the last masked answer
	}{
		{"exact at the boundary", []BudgetConfig{contactBudget("acct", "account", 5)},
			cat(seq(1, 5, true), seq(6, 8, false)), "acct"},
		{"re-views are free", []BudgetConfig{contactBudget("acct", "account", 3)},
			cat(seq(1, 3, true), seq(1, 3, true), seq(2, 2, true), seq(4, 4, false), seq(3, 3, true)), "acct"},
		{"limit zero masks all", []BudgetConfig{contactBudget("none", "account", 0)}, seq(1, 2, false), "none"},
		{"smallest wins", []BudgetConfig{contactBudget("acct-10", "account", 10), contactBudget("ip-3", "ip", 3), contactBudget("net-5", "net", 5)},
			cat(seq(1, 3, true), seq(4, 6, false)), "ip-3"},
		{"other accounts have their own budget", []BudgetConfig{contactBudget("acct", "account", 2)},
			[]step{{id: 1, served: true}, {id: 2, served: true}, {id: 3}, {id: 3, account: "a2", served: true}, {id: 4, account: "a2", served: true}, {id: 5, account: "a2"}}, "acct"},
		{"ip budget shared across accounts", []BudgetConfig{shared(contactBudget("ip", "ip", 2))},
			[]step{{id: 1, served: true}, {id: 2, account: "a2", served: true}, {id: 3, account: "a3"}, {id: 3, account: "a3", ip: "192.0.2.11", served: true}}, "ip"},
		// identified: own (the default on ip and net): each account behind
		// the address has its own allowance there; anonymous requests share
		// the address's.
		{"ip budget own: an account never pays for its neighbours", []BudgetConfig{contactBudget("ip", "ip", 2)},
			[]step{{id: 1, served: true}, {id: 2, served: true}, {id: 3}, {id: 3, account: "a2", served: true}, {id: 4, account: "a2", served: true},
				{id: 5, anon: true, served: true}, {id: 6, anon: true, served: true}, {id: 7, anon: true}, {id: 7, account: "a3", served: true},
				{id: 5, account: "a2"}}, "ip"},
		{"net budget own: anonymous traffic meets the net's limit", []BudgetConfig{contactBudget("net", "net", 1)},
			[]step{{id: 1, anon: true, served: true}, {id: 2, anon: true, ip: "192.0.2.99"}, {id: 2, served: true}, {id: 3}}, "net"},
		{"exempt app", []BudgetConfig{{Name: "acct", Facet: "account", Class: "contact", Limit: 1, Window: time.Hour, Exempt: Exempt{Accounts: []string{"a1"}}}},
			seq(1, 4, true), ""},
		{"exempt cidr", []BudgetConfig{{Name: "acct", Facet: "account", Class: "contact", Limit: 1, Window: time.Hour, Exempt: Exempt{CIDRs: []string{"192.0.2.0/28"}}}},
			seq(1, 4, true), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{Budgets: tt.budgets}, l.Inspect)
			var last Outcome
			for k, s := range tt.steps {
				id := account("a1")
				if s.account != "" {
					id.Account = s.account
				}
				if s.ip != "" {
					id.IP = netip.MustParseAddr(s.ip)
				}
				if s.anon {
					id.Account, id.AccountCreated = "", time.Time{}
				}
				body := profile(s.id)
				out := e.get(t0.Add(time.Duration(k)*time.Second), id, fmt.Sprintf("/v1/users/%d", s.id), body)
				if got := served(t, out, body); got != s.served {
					t.Fatalf("step %d (profile %d, account %s): served %v, want %v", k, s.id, id.Account, got, s.served)
				}
				if !s.served {
					last = out
				}
				if len(out.Access.Records) != 1 || out.Access.Records[0].ID != fmt.Sprint(s.id) {
					t.Fatalf("step %d: access records %+v", k, out.Access.Records)
				}
				if c := out.Access.Records[0].Served().Has(0); c != s.served { // contact is class 0
					t.Errorf("step %d: access says contact served %v", k, c)
				}
			}
			if tt.wantRule == "" {
				return
			}
			if !strings.Contains(string(last.Body), `"rules":["`+tt.wantRule+`"]`) {
				t.Errorf("last masked answer names the wrong rule, want %q: %s", tt.wantRule, last.Body)
			}
			if r := last.Access.MaskRules; len(r) != 1 || r[0] != tt.wantRule || last.Masked != 1 {
				t.Errorf("Access.MaskRules %q, masked %d", r, last.Masked)
			}
		})
	}
}

func shared(b BudgetConfig) BudgetConfig {
	b.Identified = Shared
	return b
}

// A budget in shadow mode decides and counts, and changes nothing: every
// answer goes out as it came, and warden_shadow_total counts what it
// would have masked or refused.
func TestShadowBudget(t *testing.T) {
	l := loadLab(t)
	mask := contactBudget("acct-shadow", "account", 1)
	mask.Mode = Shadow
	block := contactBudget("ip-shadow-block", "ip", 2)
	block.Mode, block.Action = Shadow, Block
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	cfg := Config{Budgets: []BudgetConfig{mask, block}, Unreferenced: &Unreferenced{Limit: 0, Window: time.Hour, Mode: Shadow, Classes: []string{"contact"}}}
	r, err := newR(cfg, l.Inspect, newStore(t), m, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, r: r, reg: reg}
	id := account("a1")
	for i := 1; i <= 4; i++ {
		body := profile(i)
		out := e.get(t0.Add(time.Duration(i)*time.Second), id, fmt.Sprintf("/v1/users/%d", i), body)
		if out.Block != nil || out.Body != nil || out.Masked != 0 || len(out.Access.MaskRules) != 0 {
			t.Fatalf("look-up %d: a shadow rule changed the answer: %+v", i, out)
		}
	}
	sh := m.Shadow()
	if got := counter(sh.Counter("acct-shadow", "mask")); got != 3 {
		t.Errorf("acct-shadow would have masked %v records, want 3", got)
	}
	if got := counter(sh.Counter("ip-shadow-block", "refuse")); got != 2 {
		t.Errorf("ip-shadow-block would have refused %v answers, want 2", got)
	}
	if got := counter(sh.Counter("unreferenced", "mask")); got != 4 {
		t.Errorf("unreferenced would have masked %v look-ups, want 4", got)
	}
	if !strings.Contains(logs.String(), `"msg":"would have masked","rule":"acct-shadow","mode":"shadow","request_id":"req-/v1/users/2"`) ||
		!strings.Contains(logs.String(), `"msg":"would have refused","rule":"ip-shadow-block"`) {
		t.Errorf("no would-have log lines with the request id:\n%s", logs.String())
	}
}

func TestWindows(t *testing.T) {
	l := loadLab(t)
	e := newEnv(t, Config{Budgets: []BudgetConfig{{Name: "hourly", Facet: "account", Class: "contact", Limit: 2, Window: time.Hour}}}, l.Inspect)
	id := account("a1")
	for i, tc := range []struct {
		at     time.Duration
		id     int
		served bool
	}{{0, 1, true}, {time.Minute, 2, true}, {59 * time.Minute, 3, false}, {60 * time.Minute, 3, true}, {61 * time.Minute, 4, true}, {62 * time.Minute, 5, false}} {
		body := profile(tc.id)
		if got := served(t, e.get(t0.Add(tc.at), id, fmt.Sprintf("/v1/users/%d", tc.id), body), body); got != tc.served {
			t.Errorf("case %d (at %v, profile %d): served %v, want %v", i, tc.at, tc.id, got, tc.served)
		}
	}
}

func TestBlock(t *testing.T) {
	l := loadLab(t)
	b := contactBudget("acct-block", "account", 1)
	b.Action = Block
	e := newEnv(t, Config{Budgets: []BudgetConfig{contactBudget("acct-mask", "account", 5), b}}, l.Inspect)
	id := account("a1")
	if out := e.get(t0, id, "/v1/users/1", profile(1)); out.Block != nil || out.Body != nil {
		t.Fatalf("first look-up: %+v", out)
	}
	out := e.get(t0, id, "/v1/users/2", profile(2))
	if out.Block == nil {
		t.Fatal("second profile not blocked")
	}
	var body map[string]string
	if err := json.Unmarshal(out.Block.Body("req-/v1/users/2"), &body); err != nil {
		t.Fatalf("refusal body: %v: %s", err, out.Block.Body("req-/v1/users/2"))
	}
	want := map[string]string{"error": "budget exceeded", "rule": "acct-block", "facet": "account", "request_id": "req-/v1/users/2"}
	if fmt.Sprint(body) != fmt.Sprint(want) || out.Block.Status != 429 {
		t.Errorf("refusal %d %v, want 429 %v", out.Block.Status, body, want)
	}
	if out.Block.RetryAfter != 14*time.Hour {
		t.Errorf("RetryAfter %v, want 14h (the window's end)", out.Block.RetryAfter)
	}
	if len(out.Access.Records) != 0 {
		t.Errorf("a blocked answer served records: %+v", out.Access.Records)
	}
	if got := counter(e.r.met.blocked.WithLabelValues("acct-block")); got != 1 {
		t.Errorf("blocked metric %v", got)
	}
	// Only the first answer went out: the refused one served nothing, so
	// acct-mask, which allowed its subject, does not count it as served.
	if got := counter(e.r.budgets[0].served); got != 1 {
		t.Errorf("acct-mask served %v, want 1: a refused answer was counted", got)
	}
}

// failingStore is a store whose every call fails, as Redis does when it is
// unreachable: the fault the fail modes exist for.
type failingStore struct{}

var errDown = errors.New("store down")

func (failingStore) Spend(context.Context, time.Time, []store.SpendRequest) ([]store.SpendResult, error) {
	return nil, errDown
}
func (failingStore) Link(context.Context, time.Time, string, []uint64, store.Provenance, uint32, time.Duration) error {
	return errDown
}
func (failingStore) Linked(context.Context, time.Time, string, []uint64, *store.Fanout, []store.Provenance) ([]store.Provenance, error) {
	return nil, errDown
}

// A store failure leaves the scopes' masks in place: failing open must not
// hand a reserved class to everyone.
func TestStoreDownKeepsScopes(t *testing.T) {
	l := loadLab(t)
	cfg := l.Ration
	cfg.Scopes = []ScopeConfig{{Class: "contact", Scope: "partner"}}
	r, err := newR(cfg, l.Inspect, failingStore{}, NewMetrics(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, enc := range []string{"", "gzip"} {
		body := profile(3)
		resp := Response{Status: 200, ContentType: "application/json", ContentEncoding: enc, Body: body}
		if enc == "gzip" {
			resp.Body = gz(t, body)
		}
		rt, _ := r.Match("GET", "/v1/users/3")
		out, err := r.Apply(context.Background(), t0, account("u1"), Request{Method: "GET", Path: "/v1/users/3", ID: "req-1"}, rt, resp)
		if !errors.Is(err, errDown) {
			t.Fatalf("%q: error %v, want the store's", enc, err)
		}
		if out.Body == nil || out.Masked != 1 {
			t.Fatalf("%q: no masked body with the store down (masked %d): the reserved class would go out", enc, out.Masked)
		}
		got := out.Body
		if enc == "gzip" {
			zr, err := gzip.NewReader(bytes.NewReader(got))
			if err != nil {
				t.Fatal(err)
			}
			if got, err = io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
		}
		if served(t, Outcome{Body: got}, body) || !strings.Contains(string(got), `"rules":["scope-contact"]`) {
			t.Errorf("%q: contact not masked by the scope: %s", enc, got)
		}
		if len(out.Access.Records) != 1 || out.Access.Records[0].ID != "3" {
			t.Errorf("%q: access %+v", enc, out.Access)
		}
	}
	// Without a reserved class nothing is masked: Body stays nil and a
	// caller failing open sends the upstream's bytes.
	r2, err := newR(l.Ration, l.Inspect, failingStore{}, NewMetrics(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	rt, _ := r2.Match("GET", "/v1/users/3")
	out, err := r2.Apply(context.Background(), t0, account("u1"), Request{Method: "GET", Path: "/v1/users/3", ID: "req-2"}, rt,
		Response{Status: 200, ContentType: "application/json", Body: profile(3)})
	if !errors.Is(err, errDown) || out.Body != nil {
		t.Errorf("no scope: err %v, body %s", err, out.Body)
	}
}

func TestAccountAge(t *testing.T) {
	l := loadLab(t)
	b := contactBudget("acct", "account", 10)
	b.AccountAge = []AgeTier{{YoungerThan: 30 * 24 * time.Hour, Limit: 4}, {YoungerThan: 24 * time.Hour, Limit: 2}}
	tests := []struct {
		name    string
		created time.Time // zero: unknown
		limit   int
	}{
		{"an hour old", t0.Add(-time.Hour), 2},
		{"a week old", t0.Add(-7 * 24 * time.Hour), 4},
		{"a year old", t0.AddDate(-1, 0, 0), 10},
		{"age unknown", time.Time{}, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{Budgets: []BudgetConfig{b}}, l.Inspect)
			id := account("a1")
			id.AccountCreated = tt.created
			n := 0
			for i := 1; i <= 12; i++ {
				body := profile(i)
				if served(t, e.get(t0, id, fmt.Sprintf("/v1/users/%d", i), body), body) {
					n++
				}
			}
			if n != tt.limit {
				t.Errorf("served %d profiles, want %d", n, tt.limit)
			}
		})
	}
}

func TestScopes(t *testing.T) {
	l := loadLab(t)
	cfg := Config{Scopes: []ScopeConfig{{Class: "contact", Scope: "partner"}}, Budgets: []BudgetConfig{contactBudget("acct", "account", 1)}}
	e := newEnv(t, cfg, l.Inspect)
	partner := account("p1")
	partner.Scopes = []string{"read", "partner"}
	for i := 1; i <= 3; i++ {
		body := profile(i)
		out := e.get(t0, account("u1"), fmt.Sprintf("/v1/users/%d", i), body)
		if served(t, out, body) || !strings.Contains(string(out.Body), `"rules":["scope-contact"]`) {
			t.Errorf("profile %d: contact served without the scope: %s", i, out.Body)
		}
	}
	// The scope holder gets contact, within its budgets (scope-masked
	// records never spent the other identity's budget either).
	if body := profile(1); !served(t, e.get(t0, partner, "/v1/users/1", body), body) {
		t.Error("partner did not get contact")
	}
	if body := profile(2); served(t, e.get(t0, partner, "/v1/users/2", body), body) {
		t.Error("partner's budget not applied")
	}
}

func TestUnreferenced(t *testing.T) {
	l := loadLab(t)
	tests := []struct {
		name   string
		action string
	}{{"mask", Mask}, {"block", Block}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Unreferenced: &Unreferenced{Limit: 1, Window: 24 * time.Hour, Action: tt.action, Classes: []string{"contact"}}}
			e := newEnv(t, cfg, l.Inspect)
			id := account("7")
			// Shown in a follower list: looking those up is navigation.
			list := e.get(t0, id, "/v1/users/7/followers?cursor=abc%3D&limit=3", followers(100, 101, 102))
			if a := list.Access; a.List != "7" || len(a.Links) != 6 || a.Links[0] != "100" { // the page is the answer stage's (gateway)
				t.Errorf("list access %+v", a)
			}
			for _, p := range []int{100, 101, 102, 7} { // 7: the account itself
				body := profile(p)
				out := e.get(t0, id, fmt.Sprintf("/v1/users/%d", p), body)
				if !served(t, out, body) || out.Access.Unreferenced {
					t.Errorf("linked profile %d: %+v", p, out)
				}
			}
			// Never shown: the first is within the limit, then the action.
			body := profile(500)
			out := e.get(t0, id, "/v1/users/500", body)
			if !served(t, out, body) || !out.Access.Unreferenced {
				t.Errorf("first unreferenced look-up: unreferenced %v, body %s", out.Access.Unreferenced, out.Body)
			}
			body = profile(501)
			out = e.get(t0, id, "/v1/users/501", body)
			switch tt.action {
			case Mask:
				if served(t, out, body) {
					t.Error("second unreferenced look-up served")
				}
				if !strings.Contains(string(out.Body), `"rules":["unreferenced"]`) {
					t.Errorf("mask names the wrong rule: %s", out.Body)
				}
			case Block:
				if out.Block == nil || out.Block.Rule != "unreferenced" || out.Block.Status != 429 {
					t.Errorf("second unreferenced look-up not blocked: %+v", out.Block)
				}
			}
			// by-username is a look-up too, linked by the usernames lists show.
			body = profile(101)
			if out := e.get(t0, id, "/v1/users/by-username/user_101", body); !served(t, out, body) || out.Access.Unreferenced {
				t.Errorf("linked username look-up: %+v", out.Access)
			}
			if out := e.get(t0, id, "/v1/users/by-username/user_999", profile(999)); !out.Access.Unreferenced {
				t.Error("unlinked username look-up not counted")
			}
			if got := counter(e.r.met.enumerated.WithLabelValues("GET /v1/users/{id}")); got != 2 {
				t.Errorf("enumeration metric %v, want 2", got)
			}
		})
	}
}

// What the unreferenced rule masks or refuses was not served: the contact
// budgets must not count it.
func TestUnreferencedNotCounted(t *testing.T) {
	l := loadLab(t)
	for _, action := range []string{Mask, Block} {
		t.Run(action, func(t *testing.T) {
			cfg := Config{
				Budgets:      []BudgetConfig{contactBudget("contact-account", "account", 2)},
				Unreferenced: &Unreferenced{Limit: 1, Window: 24 * time.Hour, Action: action, Classes: []string{"contact"}},
			}
			e := newEnv(t, cfg, l.Inspect)
			id := account("7")
			e.get(t0, id, "/v1/users/7/followers", followers(100, 101))
			body := profile(500) // unreferenced, within the rule's limit: served, counted
			if out := e.get(t0, id, "/v1/users/500", body); !served(t, out, body) {
				t.Fatalf("first unreferenced look-up not served: %s", out.Body)
			}
			for p := 501; p < 505; p++ { // past the rule: masked or refused, not counted
				body := profile(p)
				out := e.get(t0, id, fmt.Sprintf("/v1/users/%d", p), body)
				if served(t, out, body) {
					t.Fatalf("unreferenced look-up %d served", p)
				}
				if action == Mask && !strings.Contains(string(out.Body), `"rules":["unreferenced"]`) {
					t.Errorf("look-up %d masked by the wrong rule: %s", p, out.Body)
				}
			}
			// The budget has counted 500 only: one linked profile is served,
			// the next is over the limit of 2.
			body = profile(100)
			if out := e.get(t0, id, "/v1/users/100", body); !served(t, out, body) {
				t.Errorf("linked profile masked: the budget counted what it never served: %s", out.Body)
			}
			body = profile(101)
			if out := e.get(t0, id, "/v1/users/101", body); served(t, out, body) || !strings.Contains(string(out.Body), `"rules":["contact-account"]`) {
				t.Errorf("third subject not masked by the budget: %s", out.Body)
			}
			if got := counter(e.r.budgets[0].served); got != 2 {
				t.Errorf("contact-account served %v, want 2", got)
			}
		})
	}
}

func gz(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func deflate(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, 5)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func TestAnswers(t *testing.T) {
	l := loadLab(t)
	masked := Config{Budgets: []BudgetConfig{contactBudget("none", "account", 0)}}
	big := bytes.Repeat([]byte(" "), 2000)
	oversize := append(append([]byte(nil), big...), profile(1)...)
	tests := []struct {
		name      string
		icfg      func(*inspect.Config)
		resp      Response
		wantBody  bool // a rewritten body
		wantBlock int  // refusal status, 0 for none
		decode    func([]byte) ([]byte, error)
	}{
		{"plain masked", nil, Response{Status: 200, ContentType: "application/json", Body: profile(1)}, true, 0, nil},
		{"gzip masked and re-encoded", nil, Response{Status: 200, ContentType: "application/json; charset=utf-8", ContentEncoding: "gzip", Body: gz(t, profile(1))}, true, 0,
			func(b []byte) ([]byte, error) {
				r, err := gzip.NewReader(bytes.NewReader(b))
				if err != nil {
					return nil, err
				}
				return io.ReadAll(r)
			}},
		{"raw deflate masked and re-encoded", nil, Response{Status: 200, ContentType: "application/json", ContentEncoding: "deflate", Body: deflate(t, profile(1))}, true, 0,
			func(b []byte) ([]byte, error) {
				r, err := zlibReader(b)
				if err != nil {
					return nil, err
				}
				return io.ReadAll(r)
			}},
		{"brotli passes as malformed", nil, Response{Status: 200, ContentType: "application/json", ContentEncoding: "br", Body: []byte("\x0b\x02\x80{}\x03")}, false, 0, nil},
		{"brotli refused as malformed", func(c *inspect.Config) { c.OnMalformed = inspect.Refuse }, Response{Status: 200, ContentType: "application/json", ContentEncoding: "br", Body: []byte("\x0b\x02\x80{}\x03")}, false, 502, nil},
		{"non-JSON passes", nil, Response{Status: 200, ContentType: "text/html", Body: []byte(`{"email":"a@b"}`)}, false, 0, nil},
		{"non-JSON refused", func(c *inspect.Config) { c.OnOtherType = inspect.Refuse }, Response{Status: 200, ContentType: "application/javascript", Body: []byte(`cb({"id":"1","email":"a@b.c"})`)}, false, 502, nil},
		{"no body, no type: nothing to refuse", func(c *inspect.Config) { c.OnOtherType = inspect.Refuse }, Response{Status: 204}, false, 0, nil},
		{"error status passes", nil, Response{Status: 404, ContentType: "application/json", Body: []byte(`{"error":"not found"}`)}, false, 0, nil},
		{"oversize passes", func(c *inspect.Config) { c.MaxBody = 1000 }, Response{Status: 200, ContentType: "application/json", Body: oversize}, false, 0, nil},
		{"oversize gzip passes", func(c *inspect.Config) { c.MaxBody = 1000 }, Response{Status: 200, ContentType: "application/json", ContentEncoding: "gzip", Body: gz(t, oversize)}, false, 0, nil},
		{"oversize refused", func(c *inspect.Config) { c.MaxBody = 1000; c.OnOversize = inspect.Refuse }, Response{Status: 200, ContentType: "application/json", Body: oversize}, false, 502, nil},
		{"malformed passes", nil, Response{Status: 200, ContentType: "application/json", Body: []byte(`{"id":"1","email":"a@b.c"`)}, false, 0, nil},
		{"malformed refused", func(c *inspect.Config) { c.OnMalformed = inspect.Refuse }, Response{Status: 200, ContentType: "application/json", Body: []byte(`{"id":"1","email":"a@b.c"} x`)}, false, 502, nil},
		{"corrupt gzip refused", func(c *inspect.Config) { c.OnMalformed = inspect.Refuse }, Response{Status: 200, ContentType: "application/json", ContentEncoding: "gzip", Body: []byte("\x1f\x8b\x08\x00garbage")}, false, 502, nil},
		{"nothing to mask passes byte for byte", nil, Response{Status: 200, ContentType: "application/json", Body: []byte(`{"id":"1","email":null,"phone":""}`)}, false, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			icfg := l.Inspect
			if tt.icfg != nil {
				tt.icfg(&icfg)
			}
			e := newEnv(t, masked, icfg)
			orig := append([]byte(nil), tt.resp.Body...)
			out := e.do(t0, account("a1"), "/v1/users/1", tt.resp)
			if !bytes.Equal(tt.resp.Body, orig) {
				t.Fatal("Apply changed the upstream's body in place")
			}
			switch {
			case tt.wantBlock != 0:
				if out.Block == nil || out.Block.Status != tt.wantBlock || !json.Valid(out.Block.Body("r1")) {
					t.Fatalf("refusal %+v, want status %d", out.Block, tt.wantBlock)
				}
				return
			case out.Block != nil:
				t.Fatalf("refused: %s", out.Block.Body("r1"))
			}
			if !tt.wantBody {
				if out.Body != nil {
					t.Fatalf("body rewritten: %q", out.Body)
				}
				return
			}
			if out.Body == nil {
				t.Fatalf("body %q", out.Body)
			}
			plain := out.Body
			if tt.decode != nil {
				var err error
				if plain, err = tt.decode(out.Body); err != nil {
					t.Fatalf("answer not re-encoded as %s: %v", tt.resp.ContentEncoding, err)
				}
			}
			if served(t, Outcome{Body: plain}, profile(1)) {
				t.Error("contact served")
			}
		})
	}
	t.Run("counted", func(t *testing.T) {
		e := newEnv(t, masked, l.Inspect)
		reg := prometheus.NewRegistry()
		e.r.im = inspect.NewMetrics(reg)
		e.do(t0, account("a"), "/v1/users/1", Response{Status: 200, ContentType: "application/json", Body: []byte("{")})
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := -1.0
		for _, mf := range mfs {
			if mf.GetName() == "warden_inspect_malformed_total" {
				got = mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
		if got != 1 {
			t.Errorf("malformed metric %v", got)
		}
	})
}

// TestConcurrentAccount: one account from many addresses at once spends one
// budget: exactly limit distinct profiles are served.
func TestConcurrentAccount(t *testing.T) {
	l := loadLab(t)
	const limit, workers, each = 50, 32, 10
	e := newEnv(t, Config{Budgets: []BudgetConfig{contactBudget("acct", "account", limit)}}, l.Inspect)
	var wg sync.WaitGroup
	var mu sync.Mutex
	n := 0
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			id := account("shared")
			id.IP = netip.AddrFrom4([4]byte{10, byte(w), 0, 1})
			id.Net = netip.PrefixFrom(id.IP, 24).Masked()
			for k := 0; k < each; k++ {
				p := 1 + w*each + k
				rt, _ := e.r.Match("GET", fmt.Sprintf("/v1/users/%d", p))
				out, err := e.r.Apply(context.Background(), t0, id, Request{Method: "GET", Path: "/v1/users/x", ID: "r"}, rt,
					Response{Status: 200, ContentType: "application/json", Body: profile(p)})
				if err != nil {
					t.Error(err)
					return
				}
				if out.Body == nil && out.Block == nil {
					mu.Lock()
					n++
					mu.Unlock()
				} else if !json.Valid(out.Body) {
					t.Errorf("invalid JSON: %s", out.Body)
				}
			}
		}(w)
	}
	wg.Wait()
	if n != limit {
		t.Errorf("served %d distinct profiles, want exactly %d", n, limit)
	}
}

func TestConfig(t *testing.T) {
	l := loadLab(t)
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"lab is valid", l.Ration, nil},
		{"budget fields", Config{Budgets: []BudgetConfig{{Name: "x", Facet: "user", Limit: -1, Action: "drop"}}},
			[]string{"budgets[0].facet: must be", "budgets[0].class: a class is required", "budgets[0].limit: must not be negative",
				"budgets[0].window: must be positive", "budgets[0].action: must be"}},
		{"duplicate names", Config{Budgets: []BudgetConfig{contactBudget("a", "ip", 1), contactBudget("a", "net", 1)}},
			[]string{`budgets[1].name: name "a" is already used by budgets[0].name`}},
		{"bad cidr and tier", Config{Budgets: []BudgetConfig{{Name: "a", Facet: "ip", Class: "contact", Limit: 1, Window: time.Hour,
			AccountAge: []AgeTier{{Limit: 1}}, Exempt: Exempt{CIDRs: []string{"10.0.0.0/33"}}}}},
			[]string{"budgets[0].account_age[0].younger_than: must be positive", "budgets[0].exempt.cidrs[0]: "}},
		{"unknown class", Config{Budgets: []BudgetConfig{{Name: "a", Facet: "ip", Class: "health", Limit: 1, Window: time.Hour}}},
			[]string{`budgets[0].class: no route maps class "health"`}},
		{"unreferenced", Config{Unreferenced: &Unreferenced{Facet: "user", Limit: 3, TTL: -time.Second}},
			[]string{"unreferenced.facet: must be", "unreferenced.ttl: must be positive", "unreferenced.window: must be positive"}},
		{"identified and mode", Config{Budgets: []BudgetConfig{{Name: "a", Facet: "account", Class: "contact", Limit: 1, Window: time.Hour, Identified: Own, Mode: "dry"}},
			Unreferenced: &Unreferenced{Mode: "off"}},
			[]string{`budgets[0].identified: "own" applies to ip, net and fingerprint, not account`, `budgets[0].mode: "dry" is not enforce or shadow`,
				`unreferenced.mode: "off" is not enforce or shadow`}},
		{"scopes", Config{Scopes: []ScopeConfig{{Name: "s"}}}, []string{"scopes[0].class: a class is required", "scopes[0].scope: a scope is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newR(tt.cfg, l.Inspect, newStore(t), nil, nil)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New: nil error, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
		})
	}
}

func counter(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}

// abandoningStore gives up on every call, as a timed-out Redis store does,
// while holding on to the keys it was given (a batch still queued behind a
// hung server reads them later).
type abandoningStore struct{ keys []string }

func (s *abandoningStore) Spend(_ context.Context, _ time.Time, reqs []store.SpendRequest) ([]store.SpendResult, error) {
	for _, r := range reqs {
		s.keys = append(s.keys, r.Key)
	}
	return nil, errDown
}
func (s *abandoningStore) Link(_ context.Context, _ time.Time, key string, _ []uint64, _ store.Provenance, _ uint32, _ time.Duration) error {
	s.keys = append(s.keys, key)
	return errDown
}
func (s *abandoningStore) Linked(_ context.Context, _ time.Time, key string, _ []uint64, _ *store.Fanout, _ []store.Provenance) ([]store.Provenance, error) {
	s.keys = append(s.keys, key)
	return nil, errDown
}

// The buffers of a call the store gave up on are not reused for the next
// answer: its keys stay those of its own identity while the store holds
// them.
func TestAbandonedCallNotReused(t *testing.T) {
	l := loadLab(t)
	st := &abandoningStore{}
	r, err := newR(l.Ration, l.Inspect, st, NewMetrics(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	accts := []string{"alice", "bob", "carol"}
	for i, a := range accts {
		rt, _ := r.Match("GET", "/v1/users/3")
		if _, err := r.Apply(context.Background(), t0, account(a), Request{Method: "GET", Path: "/v1/users/3", ID: fmt.Sprint("req-", i)}, rt,
			Response{Status: 200, ContentType: "application/json", Body: profile(3)}); err == nil {
			t.Fatal("no error from a store that gave up")
		}
	}
	if len(st.keys) != len(accts) {
		t.Fatalf("%d store calls, want one per answer: %q", len(st.keys), st.keys)
	}
	for i, a := range accts {
		if !strings.HasSuffix(st.keys[i], a) {
			t.Fatalf("the call for %s now reads key %q", a, st.keys[i])
		}
	}
}

// The caller's own record (its /v1/me, its own profile) is its own data,
// not a person it was served: no budget counts it or masks it. Before, a
// sign-up of the lab's youngest tier (2 a day) spent half its day on its
// own /v1/me, and a young account on a browser build whose fingerprint
// budget others had spent saw its own email and phone masked.
func TestOwnRecordNotCounted(t *testing.T) {
	l := loadLab(t)
	b := contactBudget("acct", "account", 200)
	b.AccountAge = []AgeTier{{YoungerThan: 24 * time.Hour, Limit: 2}}
	fp := contactBudget("fp", "fingerprint", 2)
	e := newEnv(t, Config{Budgets: []BudgetConfig{b, fp}}, l.Inspect)
	other := account("9")
	other.Fingerprint = "00000000000000aa"
	for i := 1; i <= 2; i++ {
		if body := profile(i); !served(t, e.get(t0, other, fmt.Sprintf("/v1/users/%d", i), body), body) {
			t.Fatalf("profile %d on the fingerprint masked", i)
		}
	}
	id := account("5")
	id.AccountCreated = t0.Add(-time.Hour)
	id.Fingerprint = "00000000000000bb"
	for _, path := range []string{"/v1/me", "/v1/users/5"} {
		if body := profile(5); !served(t, e.get(t0, id, path, body), body) {
			t.Errorf("%s: the caller's own record masked", path)
		}
	}
	for i := 1; i <= 2; i++ {
		if body := profile(i); !served(t, e.get(t0, id, fmt.Sprintf("/v1/users/%d", i), body), body) {
			t.Errorf("profile %d masked: the young tier's 2 were spent on the caller's own record", i)
		}
	}
	if body := profile(3); served(t, e.get(t0, id, "/v1/users/3", body), body) {
		t.Error("a third profile served past the young tier's 2")
	}
	// A fingerprint spent by others never masks the caller's own record.
	id.Fingerprint = other.Fingerprint
	id.Account = "7"
	if body := profile(7); !served(t, e.get(t0, id, "/v1/me", body), body) {
		t.Error("the caller's own record masked by a fingerprint budget others spent")
	}
}

// A young tier's limit on a value many accounts share (a fingerprint: one
// common browser build) counts only what young accounts there took. Before,
// it counted every account's: honest aged users on a common build had spent
// it, and a new user was masked from its first look-up.
func TestAgeTierOnSharedValue(t *testing.T) {
	l := loadLab(t)
	fp := contactBudget("fp-young", "fingerprint", 1_000_000)
	fp.Identified = Shared
	fp.AccountAge = []AgeTier{{YoungerThan: 24 * time.Hour, Limit: 3}}
	e := newEnv(t, Config{Budgets: []BudgetConfig{fp}}, l.Inspect)
	on := func(acct string, age time.Duration) *identify.Identity {
		id := account(acct)
		id.AccountCreated = t0.Add(-age)
		id.Fingerprint = "00000000000000aa"
		return id
	}
	// Aged users on the build take 10 people.
	for i := 1; i <= 10; i++ {
		if body := profile(100 + i); !served(t, e.get(t0, on(fmt.Sprint(1000+i), 365*24*time.Hour), fmt.Sprintf("/v1/users/%d", 100+i), body), body) {
			t.Fatalf("aged user %d masked", i)
		}
	}
	// A new user on the same build gets the young tier's 3, and sign-ups
	// on it share them: the fourth young look-up is masked.
	served3 := 0
	for i, acct := range []string{"2001", "2002", "2003", "2004"} {
		body := profile(200 + i)
		if served(t, e.get(t0, on(acct, time.Hour), fmt.Sprintf("/v1/users/%d", 200+i), body), body) {
			served3++
		}
	}
	if served3 != 3 {
		t.Errorf("young accounts on the build were served %d, want 3 (the tier's limit, not spent by aged users)", served3)
	}
	// Aged users are still not held by the tier.
	if body := profile(300); !served(t, e.get(t0, on("1001", 365*24*time.Hour), "/v1/users/300", body), body) {
		t.Error("an aged user masked by the young tier's count")
	}
}
