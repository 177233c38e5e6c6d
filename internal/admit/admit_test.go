package admit

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/ration"
	"github.com/warden-gw/warden/internal/shadow"
	"github.com/warden-gw/warden/internal/store"
	"github.com/warden-gw/warden/internal/store/memory"
)

func ident(ip, account, app string) *identify.Identity {
	id := &identify.Identity{Account: account, App: app}
	if ip != "" {
		id.IP = netip.MustParseAddr(ip)
		id.Net = netip.PrefixFrom(id.IP, 24).Masked()
	}
	return id
}

func TestAdmit(t *testing.T) {
	limits := []config.Limit{
		{Name: "per-ip", Facet: "ip", Rate: "1/m", Burst: 2},
		{Name: "per-account", Facet: "account", Rate: "1/m", Burst: 3, Routes: []string{"GET /v1/users/{id}"}},
		{Name: "signup", Facet: "ip", Rate: "1/h", Burst: 1, Routes: []string{"POST /v1/accounts"}},
	}
	allows := []config.Allow{
		{Name: "office", CIDRs: []string{"10.0.0.0/8"}},
		{Name: "partner", Apps: []string{"partner"}, Rules: []string{"per-ip"}},
	}
	type step struct {
		id     *identify.Identity
		method string
		path   string
		status int
		rule   string
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"ip burst then refused", []step{
			{ident("1.1.1.1", "", ""), "GET", "/x", 0, ""},
			{ident("1.1.1.1", "", ""), "GET", "/x", 0, ""},
			{ident("1.1.1.1", "", ""), "GET", "/x", 429, "per-ip"},
			{ident("1.1.1.2", "", ""), "GET", "/x", 0, ""},
		}},
		{"account limit spans addresses, only on its route", []step{
			{ident("2.0.0.1", "a", ""), "GET", "/v1/users/1", 0, ""},
			{ident("2.0.0.2", "a", ""), "GET", "/v1/users/2", 0, ""},
			{ident("2.0.0.3", "a", ""), "HEAD", "/v1/users/3", 0, ""},
			{ident("2.0.0.4", "a", ""), "GET", "/v1/users/4", 429, "per-account"},
			{ident("2.0.0.5", "a", ""), "GET", "/v1/feed", 0, ""},
		}},
		{"route-scoped signup limit", []step{
			{ident("3.0.0.1", "", ""), "POST", "/v1/accounts", 0, ""},
			{ident("3.0.0.1", "", ""), "POST", "/v1/accounts", 429, "signup"},
		}},
		{"allowlisted cidr is exempt from every rule", []step{
			{ident("10.1.1.1", "", ""), "GET", "/x", 0, ""},
			{ident("10.1.1.1", "", ""), "GET", "/x", 0, ""},
			{ident("10.1.1.1", "", ""), "GET", "/x", 0, ""},
		}},
		{"app exempt from named rule only", []step{
			{ident("4.0.0.1", "p", "partner"), "GET", "/v1/users/1", 0, ""},
			{ident("4.0.0.1", "p", "partner"), "GET", "/v1/users/1", 0, ""},
			{ident("4.0.0.1", "p", "partner"), "GET", "/v1/users/1", 0, ""},
			{ident("4.0.0.1", "p", "partner"), "GET", "/v1/users/1", 429, "per-account"},
		}},
		{"anonymous request is not counted by account rules", []step{
			{ident("", "", ""), "GET", "/v1/users/1", 0, ""},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := memory.New(memory.Options{SweepEvery: -1})
			defer st.Close()
			a, err := New(limits, allows, st, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			now := time.Unix(1_800_000_000, 0)
			for i, s := range c.steps {
				d, err := a.Admit(context.Background(), now, s.id, s.method, s.path, "")
				if err != nil {
					t.Fatal(err)
				}
				if d.Status != s.status || d.Rule != s.rule {
					t.Fatalf("step %d: got %d %q, want %d %q", i, d.Status, d.Rule, s.status, s.rule)
				}
				if d.Status == 429 && (d.RetryAfter <= 0 || d.Policy == "" || d.State == "") {
					t.Fatalf("step %d: refusal without retry/fields: %+v", i, d)
				}
			}
		})
	}
}

func TestBanWinsAndLifts(t *testing.T) {
	st := memory.New(memory.Options{SweepEvery: -1})
	defer st.Close()
	a, _ := New(nil, []config.Allow{{Name: "all", CIDRs: []string{"0.0.0.0/0"}}}, st, nil, nil)
	now := time.Unix(1_800_000_000, 0)
	ctx := context.Background()
	st.PutBan(ctx, store.Ban{Facet: "net", Value: "5.5.5.0/24", Reason: "scraping", Until: now.Add(time.Hour)})
	d, _ := a.Admit(ctx, now, ident("5.5.5.9", "", ""), "GET", "/", "")
	if d.Status != 403 || d.Facet != "net" || d.Reason != "scraping" {
		t.Fatalf("ban on the /24 (allowlists never lift bans): %+v", d)
	}
	d, _ = a.Admit(ctx, now.Add(2*time.Hour), ident("5.5.5.9", "", ""), "GET", "/", "")
	if d.Status != 0 {
		t.Fatalf("expired ban still applies: %+v", d)
	}
}

// The detector's ban of an address for its anonymous traffic refuses only
// anonymous requests: an account behind the address is admitted, meets its
// own bans and limits (spent once), while an operator's ban on the address
// refuses everyone (issue 22: no collateral harm).
func TestAnonymousBanSparesAccounts(t *testing.T) {
	st := memory.New(memory.Options{SweepEvery: -1})
	defer st.Close()
	a, err := New([]config.Limit{{Name: "per-account", Facet: "account", Rate: "1/m", Burst: 2}}, nil, st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	ctx := context.Background()
	for _, b := range []store.Ban{
		{Facet: "ip", Value: "7.0.0.1", Reason: "anonymous scraping", By: "detector", Until: now.Add(time.Hour), Anonymous: true},
		{Facet: "net", Value: "7.0.0.0/24", Reason: "anonymous scraping", By: "detector", Until: now.Add(time.Hour), Anonymous: true},
		{Facet: "account", Value: "mallory", Reason: "harvesting", By: "detector", Until: now.Add(time.Hour)},
		{Facet: "ip", Value: "7.0.1.1", Reason: "operator", Until: now.Add(time.Hour)},
	} {
		if err := st.PutBan(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		ip, account string
		status      int
		rule, facet string
	}{
		{"7.0.0.1", "", 403, "ban", "ip"},
		{"7.0.0.2", "", 403, "ban", "net"},
		{"7.0.0.1", "alice", 0, "", ""},
		{"7.0.0.1", "alice", 0, "", ""},
		{"7.0.0.1", "alice", 429, "per-account", "account"}, // its own limit, spent once a request
		{"7.0.0.1", "mallory", 403, "ban", "account"},       // its own ban still holds
		{"7.0.1.1", "bob", 403, "ban", "ip"},                // an operator's address ban holds for everyone
	}
	for i, s := range steps {
		d, err := a.Admit(ctx, now, ident(s.ip, s.account, ""), "GET", "/", "r")
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != s.status || d.Rule != s.rule || d.Facet != s.facet {
			t.Fatalf("step %d (%s %q): got %d %q %q, want %d %q %q", i, s.ip, s.account, d.Status, d.Rule, d.Facet, s.status, s.rule, s.facet)
		}
	}
}

func TestPattern(t *testing.T) {
	cases := []struct {
		pat, method, path string
		want              bool
	}{
		{"GET /v1/users/{id}", "GET", "/v1/users/5", true},
		{"GET /v1/users/{id}", "GET", "/v1/users/5/followers", false},
		{"GET /v1/users/{id}", "GET", "/v1/users/", false},
		{"GET /v1/users/{id}", "POST", "/v1/users/5", false},
		{"GET /v1/users/{id}", "HEAD", "/v1/users/5", true},
		{"/v1/", "DELETE", "/v1/anything/below", true},
		{"/v1/{rest...}", "GET", "/v1/a/b", true},
		{"POST /v1/accounts", "POST", "/v1/accounts", true},
		{"POST /v1/accounts", "POST", "/v1/accounts/x", false},
		// As ServeMux and the route map read them: {$} is the exact path,
		// a pattern without a trailing slash is no prefix.
		{"GET /v1/{$}", "GET", "/v1/", true},
		{"GET /v1/{$}", "GET", "/v1/users", false},
		{"GET /v1/users/{id}", "GET", "/v1/users/5/", false},
	}
	for _, c := range cases {
		p, err := inspect.ParsePattern(c.pat)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Match(c.method, c.path); got != c.want {
			t.Errorf("%q matches %s %s = %v, want %v", c.pat, c.method, c.path, got, c.want)
		}
	}
	// A pattern that is not ServeMux syntax is an error, not a rule that
	// silently never applies (or applies to every path).
	for _, bad := range []string{"GET /v1/users/{id", "GET /v1/{rest...}/x", "GET /v1/{a}/{a}", "/v1/u{id}"} {
		_, err := New([]config.Limit{{Name: "r", Facet: "ip", Rate: "1/s", Burst: 1, Routes: []string{bad}}}, nil, memory.New(memory.Options{SweepEvery: -1}), nil, nil)
		if err == nil {
			t.Errorf("route %q accepted", bad)
		}
	}
}

func BenchmarkAdmit(b *testing.B) {
	st := memory.New(memory.Options{SweepEvery: -1})
	defer st.Close()
	a, _ := New([]config.Limit{
		{Name: "per-ip", Facet: "ip", Rate: "1000000/s", Burst: 1000},
		{Name: "per-account", Facet: "account", Rate: "1000000/s", Burst: 1000},
	}, nil, st, nil, nil)
	id := ident("1.2.3.4", "12345", "")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = a.Admit(ctx, time.Now(), id, "GET", "/v1/users/1", "")
	}
}

// abandoningStore is a store that gives up on every call, as a timed-out
// Redis store does, while holding on to the request it was given (a batch
// still queued behind a hung server reads it later).
type abandoningStore struct{ kept []*store.AdmitRequest }

func (s *abandoningStore) Admit(_ context.Context, _ time.Time, req *store.AdmitRequest) (store.AdmitResult, error) {
	s.kept = append(s.kept, req)
	return store.AdmitResult{}, store.ErrUnavailable
}

// A request the store gave up on is not reused for the next one: its keys
// stay those of its own identity for as long as the store holds it.
func TestAdmitAbandonedRequestNotReused(t *testing.T) {
	st := &abandoningStore{}
	a, err := New([]config.Limit{{Name: "per-account", Facet: "account", Rate: "10/s", Burst: 10}}, nil, st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	for _, acct := range []string{"alice", "bob", "carol"} {
		if _, err := a.Admit(context.Background(), now, ident("10.0.0.1", acct, ""), "GET", "/", ""); err == nil {
			t.Fatal("no error from a store that gave up")
		}
	}
	for i, acct := range []string{"alice", "bob", "carol"} {
		req := st.kept[i]
		if len(req.Limits) != 1 || !strings.HasSuffix(req.Limits[0].Key, acct) {
			t.Fatalf("request %d, for %s, now reads %+v", i, acct, req.Limits)
		}
	}
}

// Address limits never refuse an identified account for what others
// behind its address did (identified: own, the default on ip and net):
// each account has its own allowance there, anonymous requests share the
// address's. identified: shared is the old behaviour, kept as a choice.
func TestNeighbours(t *testing.T) {
	type step struct {
		ip, account string
		status      int
	}
	cases := []struct {
		name       string
		identified ration.Identified
		steps      []step
	}{
		{"own: anonymous harvester empties the address, accounts unharmed", "", []step{
			{"6.0.0.1", "", 0}, {"6.0.0.1", "", 0}, {"6.0.0.1", "", 429}, {"6.0.0.1", "", 429},
			{"6.0.0.1", "alice", 0}, {"6.0.0.1", "alice", 0},
			{"6.0.0.1", "bob", 0},
		}},
		{"own: an account that runs hot meets the limit alone", ration.Own, []step{
			{"6.0.0.2", "mallory", 0}, {"6.0.0.2", "mallory", 0}, {"6.0.0.2", "mallory", 429}, {"6.0.0.2", "mallory", 429},
			{"6.0.0.2", "alice", 0}, {"6.0.0.2", "", 0}, {"6.0.0.2", "", 0}, {"6.0.0.2", "", 429},
		}},
		{"own: the net limit too", ration.Own, []step{
			{"6.0.1.1", "", 0}, {"6.0.1.2", "", 0}, {"6.0.1.3", "", 0}, {"6.0.1.4", "", 429}, {"6.0.1.5", "alice", 0},
		}},
		{"shared: everyone behind the address pays", ration.Shared, []step{
			{"6.0.0.3", "mallory", 0}, {"6.0.0.3", "mallory", 0}, {"6.0.0.3", "alice", 429},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := memory.New(memory.Options{SweepEvery: -1})
			defer st.Close()
			a, err := New([]config.Limit{
				{Name: "per-ip", Facet: "ip", Rate: "1/m", Burst: 2, Identified: c.identified},
				{Name: "per-net", Facet: "net", Rate: "1/m", Burst: 3, Identified: c.identified, Routes: []string{"GET /net"}},
			}, nil, st, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			now := time.Unix(1_800_000_000, 0)
			path := "/x"
			if strings.Contains(c.name, "net") {
				path = "/net"
			}
			for i, s := range c.steps {
				id := ident(s.ip, s.account, "")
				d, err := a.Admit(context.Background(), now, id, "GET", path, "r")
				if err != nil {
					t.Fatal(err)
				}
				if d.Status != s.status {
					t.Fatalf("step %d (%s %q): got %d %q, want %d", i, s.ip, s.account, d.Status, d.Rule, s.status)
				}
			}
		})
	}
}

// A limit in shadow mode is charged and decides, and refuses nothing: it
// counts warden_shadow_total{rule,action="refuse"} and logs "would have
// refused" with the request id.
func TestShadowLimit(t *testing.T) {
	st := memory.New(memory.Options{SweepEvery: -1})
	defer st.Close()
	reg := prometheus.NewRegistry()
	sh := shadow.New(reg)
	var logs bytes.Buffer
	a, err := New([]config.Limit{
		{Name: "per-ip", Facet: "ip", Rate: "1/m", Burst: 2, Mode: ration.Shadow},
		{Name: "per-account", Facet: "account", Rate: "1/m", Burst: 3},
	}, nil, st, sh, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	for i := range 5 {
		d, err := a.Admit(context.Background(), now, ident("7.0.0.1", "", ""), "GET", "/x", fmt.Sprintf("req-%d", i))
		if err != nil || d.Status != 0 {
			t.Fatalf("request %d: %+v %v: a shadow limit refused", i, d, err)
		}
	}
	var m dto.Metric
	_ = sh.Counter("per-ip", "refuse").Write(&m)
	if got := m.GetCounter().GetValue(); got != 3 {
		t.Errorf("warden_shadow_total{rule=per-ip,action=refuse} = %v, want 3", got)
	}
	if !strings.Contains(logs.String(), `"msg":"would have refused","rule":"per-ip","mode":"shadow","request_id":"req-2"`) {
		t.Errorf("no would-have line for req-2:\n%s", logs.String())
	}
	// The enforced limit beside it still refuses.
	for i := range 4 {
		d, _ := a.Admit(context.Background(), now, ident("7.0.0.2", "acct", ""), "GET", "/x", "")
		if want := map[bool]int{true: 429, false: 0}[i == 3]; d.Status != want {
			t.Fatalf("per-account request %d: %d, want %d", i, d.Status, want)
		}
	}
}
