package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/store"
	"github.com/warden-gw/warden/internal/store/memory"
)

const testToken = "test-token-0123456789abcdef"

// clock is a settable Now for expiry without sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// ipLimits is a LimitViewer over a real store: it peeks (cost 0) the one
// per-ip GCRA limit the test charges, as the gateway's viewer will for its
// configured limits.
type ipLimits struct {
	st  store.Store
	now func() time.Time
}

const (
	testInterval = time.Second
	testBurst    = 10
)

func (v ipLimits) FacetState(ctx context.Context, facet, value string) (any, error) {
	if facet != "ip" {
		return nil, fmt.Errorf("no limit counts by facet %s", facet)
	}
	res, err := v.st.Admit(ctx, v.now(), &store.AdmitRequest{Limits: []store.LimitRequest{
		{Key: "per-ip:" + value, Interval: testInterval, Burst: testBurst, Cost: 0},
	}})
	if err != nil {
		return nil, err
	}
	return map[string]any{"per-ip": map[string]any{"remaining": res.Limits[0].Remaining}}, nil
}

type fixture struct {
	url   string
	store *memory.Store
	clock *clock
	logs  *bytes.Buffer
	reg   *prometheus.Registry
}

type fixtureOpt func(*Options)

func newFixture(t *testing.T, mods ...fixtureOpt) *fixture {
	t.Helper()
	st := memory.New(memory.Options{SweepEvery: -1})
	t.Cleanup(func() { st.Close() })
	f := &fixture{
		store: st,
		clock: &clock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)},
		logs:  &bytes.Buffer{},
		reg:   prometheus.NewRegistry(),
	}
	var logMu sync.Mutex
	opts := Options{
		Token:    testToken,
		Gatherer: f.reg,
		Bans:     st,
		Limits:   ipLimits{st: st, now: f.clock.Now},
		Logger:   slog.New(slog.NewJSONHandler(lockedWriter{&logMu, f.logs}, nil)),
		Now:      f.clock.Now,
	}
	for _, m := range mods {
		m(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

type reply struct {
	code   int
	header http.Header
	body   []byte
}

func (r reply) errorText(t *testing.T) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body is not JSON: %v: %q", err, r.body)
	}
	return e.Error
}

// do sends one request; token "" sends no Authorization header.
func (f *fixture) do(t *testing.T, method, path, token string, body string, hdr ...string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{code: resp.StatusCode, header: resp.Header, body: b}
}

func TestAuth(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name   string
		path   string
		header string // whole Authorization value; "" for none
		want   int
	}{
		{"healthz open", "/healthz", "", 200},
		{"bans no header", "/v1/bans", "", 401},
		{"bans wrong scheme", "/v1/bans", "Basic " + testToken, 401},
		{"bans empty bearer", "/v1/bans", "Bearer ", 401},
		{"bans wrong token", "/v1/bans", "Bearer wrong-token-0123456789abcdef", 401},
		{"bans token prefix", "/v1/bans", "Bearer " + testToken[:len(testToken)-1], 401},
		{"bans right token", "/v1/bans", "Bearer " + testToken, 200},
		{"bans scheme case-insensitive", "/v1/bans", "bearer " + testToken, 200},
		{"metrics no token", "/metrics", "", 401},
		{"readyz no token", "/readyz", "", 401},
		{"facets no token", "/v1/facets/ip/1.2.3.4", "", 401},
		{"unknown route no token", "/nope", "", 401},
		{"unknown route with token", "/nope", "Bearer " + testToken, 404},
		{"pprof no token", "/debug/pprof/heap", "", 401},
		{"pprof with token", "/debug/pprof/heap?debug=1", "Bearer " + testToken, 200},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var hdr []string
			if c.header != "" {
				hdr = []string{"Authorization", c.header}
			}
			r := f.do(t, "GET", c.path, "", "", hdr...)
			if r.code != c.want {
				t.Fatalf("status %d, want %d: %s", r.code, c.want, r.body)
			}
			profile := strings.HasPrefix(c.path, "/debug/") && c.want == 200
			if ct := r.header.Get("Content-Type"); c.path != "/metrics" && !profile && ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			if c.want == 401 {
				if got := r.errorText(t); got == "" {
					t.Errorf("401 without error text")
				}
				if r.header.Get("WWW-Authenticate") == "" {
					t.Errorf("401 without WWW-Authenticate")
				}
			}
		})
	}
	if logs := f.logs.String(); strings.Contains(logs, "0123456789abcdef") {
		t.Errorf("a token reached the log:\n%s", logs)
	}
	if !strings.Contains(f.logs.String(), "unauthorized") {
		t.Errorf("refused requests were not logged:\n%s", f.logs.String())
	}
}

type banList struct {
	Bans []store.Ban `json:"bans"`
}

func (f *fixture) list(t *testing.T) []store.Ban {
	t.Helper()
	r := f.do(t, "GET", "/v1/bans", testToken, "")
	if r.code != 200 {
		t.Fatalf("list: status %d: %s", r.code, r.body)
	}
	var l banList
	if err := json.Unmarshal(r.body, &l); err != nil {
		t.Fatalf("list: %v: %s", err, r.body)
	}
	if l.Bans == nil {
		t.Fatalf("list: bans is null, want an array: %s", r.body)
	}
	return l.Bans
}

func TestBanRoundTrip(t *testing.T) {
	f := newFixture(t)
	if got := f.list(t); len(got) != 0 {
		t.Fatalf("fresh store lists %v", got)
	}
	adds := []struct {
		name, body, operator string
		wantValue, wantBy    string
	}{
		{"ip with ttl string", `{"facet":"ip","value":"192.0.2.7","reason":"scraping","ttl":"24h"}`, "alice", "192.0.2.7", "alice"},
		{"net canonicalised", `{"facet":"net","value":"198.51.100.77/24","reason":"fleet","ttl":3600}`, "", "198.51.100.0/24", "admin"},
		{"ipv6 net", `{"facet":"net","value":"2001:db8:1:2::/48","reason":"fleet","until":"2026-11-24T12:00:00Z"}`, "", "2001:db8:1::/48", "admin"},
		{"mapped ip unmapped", `{"facet":"ip","value":"::ffff:203.0.113.9","reason":"x","ttl":"1h"}`, "", "203.0.113.9", "admin"},
		{"account", `{"facet":"account","value":"user/42","reason":"enumeration","ttl":"2h"}`, "bob", "user/42", "bob"},
		{"account the path cannot carry", `{"facet":"account","value":"a//../b","reason":"odd","ttl":"2h"}`, "", "a//../b", "admin"},
		{"fingerprint lower-cased", `{"facet":"fingerprint","value":"0123456789ABCDEF","reason":"bots","ttl":"1h"}`, "", "0123456789abcdef", "admin"},
	}
	for _, a := range adds {
		var hdr []string
		if a.operator != "" {
			hdr = []string{"X-Warden-Operator", a.operator}
		}
		r := f.do(t, "POST", "/v1/bans", testToken, a.body, hdr...)
		if r.code != 201 {
			t.Fatalf("%s: status %d: %s", a.name, r.code, r.body)
		}
		var b store.Ban
		if err := json.Unmarshal(r.body, &b); err != nil {
			t.Fatal(err)
		}
		if b.Value != a.wantValue || b.By != a.wantBy || b.Until.IsZero() || !b.Created.Equal(f.clock.Now()) {
			t.Errorf("%s: got %+v, want value %s by %s", a.name, b, a.wantValue, a.wantBy)
		}
	}

	got := f.list(t)
	var keys []string
	for _, b := range got {
		keys = append(keys, b.Facet+" "+b.Value)
	}
	want := []string{"account a//../b", "account user/42", "fingerprint 0123456789abcdef", "ip 192.0.2.7", "ip 203.0.113.9", "net 198.51.100.0/24", "net 2001:db8:1::/48"}
	if strings.Join(keys, ",") != strings.Join(want, ",") {
		t.Fatalf("listed %v, want %v", keys, want)
	}
	for _, b := range got {
		if b.Facet == "ip" && b.Value == "192.0.2.7" {
			if !b.Until.Equal(f.clock.Now().Add(24*time.Hour)) || b.Reason != "scraping" || b.By != "alice" {
				t.Errorf("ip ban listed as %+v", b)
			}
		}
	}

	// The stored ban is the one the gateway's Admit sees.
	res, err := f.store.Admit(context.Background(), f.clock.Now(), &store.AdmitRequest{Bans: []store.BanKey{{Facet: "net", Value: "198.51.100.0/24"}}})
	if err != nil || res.Ban == nil || res.Ban.Reason != "fleet" {
		t.Fatalf("Admit after ban: %+v, %v", res.Ban, err)
	}

	removes := []struct {
		name, path string
		want       int
	}{
		{"net with raw slash", "/v1/bans/net/198.51.100.0/24", 204},
		{"net again is gone", "/v1/bans/net/198.51.100.0/24", 404},
		{"ipv6 net escaped", "/v1/bans/net/2001:db8:1::%2F48", 204},
		{"ip", "/v1/bans/ip/192.0.2.7", 204},
		{"mapped ip form", "/v1/bans/ip/::ffff:203.0.113.9", 204},
		{"account with escaped slash", "/v1/bans/account/user%2F42", 204},
		{"query form", "/v1/bans?facet=account&value=" + url.QueryEscape("a//../b"), 204},
		{"query form again", "/v1/bans?facet=account&value=" + url.QueryEscape("a//../b"), 404},
		{"query form without value", "/v1/bans?facet=account", 400},
		{"never banned", "/v1/bans/ip/192.0.2.8", 404},
		{"unknown facet", "/v1/bans/asn/64500", 400},
		{"bad ip", "/v1/bans/ip/999.1.1.1", 400},
		{"fingerprint in upper case", "/v1/bans/fingerprint/0123456789ABCDEF", 204},
	}
	for _, c := range removes {
		r := f.do(t, "DELETE", c.path, testToken, "")
		if r.code != c.want {
			t.Errorf("%s: DELETE %s: status %d, want %d: %s", c.name, c.path, r.code, c.want, r.body)
		}
		if c.want >= 400 && r.errorText(t) == "" {
			t.Errorf("%s: no error text", c.name)
		}
	}
	if got := f.list(t); len(got) != 0 {
		t.Fatalf("after removing all: %v", got)
	}
	// Values may be personal data: none may reach the log.
	for _, v := range []string{"192.0.2.7", "198.51.100", "user/42", "scraping"} {
		if strings.Contains(f.logs.String(), v) {
			t.Errorf("log holds %q:\n%s", v, f.logs.String())
		}
	}
	if !strings.Contains(f.logs.String(), "ban added") || !strings.Contains(f.logs.String(), "ban removed") {
		t.Errorf("ban changes not logged:\n%s", f.logs.String())
	}
}

func TestBanExpiry(t *testing.T) {
	f := newFixture(t)
	r := f.do(t, "POST", "/v1/bans", testToken, `{"facet":"app","value":"k1","reason":"r","ttl":"1h"}`)
	if r.code != 201 {
		t.Fatalf("status %d: %s", r.code, r.body)
	}
	if n := len(f.list(t)); n != 1 {
		t.Fatalf("listed %d bans, want 1", n)
	}
	f.clock.Add(time.Hour)
	if got := f.list(t); len(got) != 0 {
		t.Fatalf("expired ban still listed: %v", got)
	}
	if r := f.do(t, "DELETE", "/v1/bans/app/k1", testToken, ""); r.code != 404 {
		t.Fatalf("removing an expired ban: status %d, want 404", r.code)
	}
}

func TestAddBanRejects(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name, body string
		hdr        []string
		want       int
		wantErr    string
	}{
		{"unknown facet", `{"facet":"asn","value":"64500","reason":"r","ttl":"1h"}`, nil, 400, "unknown facet"},
		{"empty facet", `{"value":"1.2.3.4","reason":"r","ttl":"1h"}`, nil, 400, "unknown facet"},
		{"bad ip", `{"facet":"ip","value":"1.2.3.999","reason":"r","ttl":"1h"}`, nil, 400, "ip value"},
		{"ip with zone", `{"facet":"ip","value":"fe80::1%eth0","reason":"r","ttl":"1h"}`, nil, 400, "ip value"},
		{"ip as cidr", `{"facet":"ip","value":"1.2.3.0/24","reason":"r","ttl":"1h"}`, nil, 400, "ip value"},
		{"net without prefix", `{"facet":"net","value":"1.2.3.0","reason":"r","ttl":"1h"}`, nil, 400, "net value"},
		{"net bad prefix", `{"facet":"net","value":"1.2.3.0/33","reason":"r","ttl":"1h"}`, nil, 400, "net value"},
		{"empty account", `{"facet":"account","value":"","reason":"r","ttl":"1h"}`, nil, 400, "account value is required"},
		{"account with newline", `{"facet":"account","value":"a\nb","reason":"r","ttl":"1h"}`, nil, 400, "control characters"},
		{"fingerprint not hex", `{"facet":"fingerprint","value":"zzz","reason":"r","ttl":"1h"}`, nil, 400, "16 hex digits"},
		{"fingerprint too long", `{"facet":"fingerprint","value":"0123456789abcdef0","reason":"r","ttl":"1h"}`, nil, 400, "16 hex digits"},
		{"oversized value", `{"facet":"app","value":"` + strings.Repeat("a", maxValueBytes+1) + `","reason":"r","ttl":"1h"}`, nil, 400, "longer than"},
		{"negative ttl", `{"facet":"ip","value":"1.2.3.4","reason":"r","ttl":"-1h"}`, nil, 400, "must be positive"},
		{"zero ttl", `{"facet":"ip","value":"1.2.3.4","reason":"r","ttl":0}`, nil, 400, "must be positive"},
		{"ttl garbage", `{"facet":"ip","value":"1.2.3.4","reason":"r","ttl":"soon"}`, nil, 400, "want a duration"},
		{"ttl too long", `{"facet":"ip","value":"1.2.3.4","reason":"r","ttl":"100000h"}`, nil, 400, "at most"},
		{"no expiry", `{"facet":"ip","value":"1.2.3.4","reason":"r"}`, nil, 400, "ttl or until is required"},
		{"ttl and until", `{"facet":"ip","value":"1.2.3.4","reason":"r","ttl":"1h","until":"2026-11-24T00:00:00Z"}`, nil, 400, "not both"},
		{"until past", `{"facet":"ip","value":"1.2.3.4","reason":"r","until":"2026-11-23T11:00:00Z"}`, nil, 400, "already past"},
		{"missing reason", `{"facet":"ip","value":"1.2.3.4","ttl":"1h"}`, nil, 400, "reason is required"},
		{"unknown field", `{"facet":"ip","value":"1.2.3.4","reason":"r","ttl":"1h","by":"mallory"}`, nil, 400, "unknown field"},
		{"trailing data", `{"facet":"ip","value":"1.2.3.4","reason":"r","ttl":"1h"} {}`, nil, 400, "trailing data"},
		{"not json", `facet=ip`, nil, 400, "invalid JSON"},
		{"oversized body", `{"facet":"ip","value":"1.2.3.4","reason":"` + strings.Repeat("x", maxBodyBytes) + `","ttl":"1h"}`, nil, 413, "larger than"},
		{"wrong content type", `{}`, []string{"Content-Type", "text/plain"}, 415, "application/json"},
		{"operator too long", `{"facet":"ip","value":"1.2.3.4","reason":"r","ttl":"1h"}`, []string{"X-Warden-Operator", strings.Repeat("o", maxOperatorBytes+1)}, 400, "X-Warden-Operator"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := f.do(t, "POST", "/v1/bans", testToken, c.body, c.hdr...)
			if r.code != c.want {
				t.Fatalf("status %d, want %d: %s", r.code, c.want, r.body)
			}
			if got := r.errorText(t); !strings.Contains(got, c.wantErr) {
				t.Fatalf("error %q, want it to contain %q", got, c.wantErr)
			}
		})
	}
	if got := f.list(t); len(got) != 0 {
		t.Fatalf("rejected requests stored bans: %v", got)
	}
}

func TestMethods(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name, method, path, token string
		want                      int
		allow                     string
	}{
		{"put bans", "PUT", "/v1/bans", testToken, 405, "GET, HEAD, POST, DELETE"},
		{"delete bans without key", "DELETE", "/v1/bans", testToken, 400, ""},
		{"get one ban", "GET", "/v1/bans/ip/1.2.3.4", testToken, 405, "DELETE"},
		{"post metrics", "POST", "/metrics", testToken, 405, "GET, HEAD"},
		{"post healthz", "POST", "/healthz", "", 405, "GET, HEAD"},
		{"delete facets", "DELETE", "/v1/facets/ip/1.2.3.4", testToken, 405, "GET, HEAD"},
		// The ledger's queries are GETs, replay a POST (its body).
		{"post who-took", "POST", "/v1/ledger/who-took", testToken, 405, "GET, HEAD"},
		{"post explain", "POST", "/v1/ledger/explain", testToken, 405, "GET, HEAD"},
		{"get replay", "GET", "/v1/ledger/replay", testToken, 405, "POST"},
		{"get who-took", "GET", "/v1/ledger/who-took", testToken, 501, ""},
		{"post replay", "POST", "/v1/ledger/replay", testToken, 501, ""},
		{"head healthz", "HEAD", "/healthz", "", 200, ""},
		{"wrong method without token is 401", "PUT", "/v1/bans", "", 401, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := f.do(t, c.method, c.path, c.token, "")
			if r.code != c.want {
				t.Fatalf("status %d, want %d: %s", r.code, c.want, r.body)
			}
			if c.want == 405 {
				if got := r.header.Get("Allow"); got != c.allow {
					t.Errorf("Allow %q, want %q", got, c.allow)
				}
				if r.errorText(t) == "" {
					t.Errorf("405 without error text")
				}
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	f := newFixture(t)
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "warden_test_requests_total", Help: "test"})
	f.reg.MustRegister(c)
	c.Add(7)
	r := f.do(t, "GET", "/metrics", testToken, "")
	if r.code != 200 {
		t.Fatalf("status %d: %s", r.code, r.body)
	}
	if !bytes.Contains(r.body, []byte("warden_test_requests_total 7")) {
		t.Fatalf("metrics lack the counter:\n%s", r.body)
	}
}

func TestReady(t *testing.T) {
	var mu sync.Mutex
	var readyErr error
	f := newFixture(t, func(o *Options) {
		o.Ready = func(context.Context) error { mu.Lock(); defer mu.Unlock(); return readyErr }
	})
	if r := f.do(t, "GET", "/readyz", testToken, ""); r.code != 200 {
		t.Fatalf("ready: status %d: %s", r.code, r.body)
	}
	mu.Lock()
	readyErr = errors.New("store: redis at 127.0.0.1:6379 unreachable")
	mu.Unlock()
	r := f.do(t, "GET", "/readyz", testToken, "")
	if r.code != 503 || !strings.Contains(r.errorText(t), "unreachable") {
		t.Fatalf("not ready: status %d: %s", r.code, r.body)
	}
	// Liveness does not depend on readiness.
	if r := f.do(t, "GET", "/healthz", "", ""); r.code != 200 {
		t.Fatalf("healthz while not ready: %d", r.code)
	}
}

// downLimits stands for a store that is down, a fault the memory store
// cannot produce.
type downLimits struct{}

func (downLimits) FacetState(context.Context, string, string) (any, error) {
	return nil, fmt.Errorf("peek: %w", store.ErrUnavailable)
}

func TestFacetState(t *testing.T) {
	f := newFixture(t)
	// Charge three requests to 192.0.2.1's per-ip limit, as the gateway would.
	for range 3 {
		if _, err := f.store.Admit(context.Background(), f.clock.Now(), &store.AdmitRequest{Limits: []store.LimitRequest{
			{Key: "per-ip:192.0.2.1", Interval: testInterval, Burst: testBurst, Cost: 1},
		}}); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name, path    string
		want          int
		wantRemaining int
		wantErr       string
	}{
		{"charged ip", "/v1/facets/ip/192.0.2.1", 200, testBurst - 3, ""},
		{"fresh ip", "/v1/facets/ip/192.0.2.2", 200, testBurst, ""},
		{"query form", "/v1/facets?facet=ip&value=192.0.2.1", 200, testBurst - 3, ""},
		{"facet without limits", "/v1/facets/account/u1", 404, 0, "no limit counts by facet account"},
		{"unknown facet", "/v1/facets/asn/1", 400, 0, "unknown facet"},
		{"bad ip", "/v1/facets/ip/not-an-ip", 400, 0, "ip value"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := f.do(t, "GET", c.path, testToken, "")
			if r.code != c.want {
				t.Fatalf("status %d, want %d: %s", r.code, c.want, r.body)
			}
			if c.want != 200 {
				if got := r.errorText(t); !strings.Contains(got, c.wantErr) {
					t.Fatalf("error %q, want %q", got, c.wantErr)
				}
				return
			}
			var got struct {
				Facet, Value string
				State        map[string]struct{ Remaining int }
			}
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatal(err)
			}
			if got.Facet != "ip" || got.State["per-ip"].Remaining != c.wantRemaining {
				t.Fatalf("got %s, want remaining %d", r.body, c.wantRemaining)
			}
		})
	}

	down := newFixture(t, func(o *Options) { o.Limits = downLimits{} })
	if r := down.do(t, "GET", "/v1/facets/ip/192.0.2.1", testToken, ""); r.code != 503 {
		t.Fatalf("store down: status %d, want 503: %s", r.code, r.body)
	}
	none := newFixture(t, func(o *Options) { o.Limits = nil })
	if r := none.do(t, "GET", "/v1/facets/ip/192.0.2.1", testToken, ""); r.code != 501 {
		t.Fatalf("no viewer: status %d, want 501: %s", r.code, r.body)
	}
}

func TestNewRefuses(t *testing.T) {
	st := memory.New(memory.Options{SweepEvery: -1})
	defer st.Close()
	reg := prometheus.NewRegistry()
	cases := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"no token", Options{Gatherer: reg, Bans: st}, "token is required"},
		{"short token", Options{Token: "short", Gatherer: reg, Bans: st}, "too short"},
		{"no gatherer", Options{Token: testToken, Bans: st}, "gatherer"},
		{"no bans", Options{Token: testToken, Gatherer: reg}, "ban store"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.opts)
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("err %v, want %q", err, c.wantErr)
			}
		})
	}
}

func TestServeShutsDown(t *testing.T) {
	st := memory.New(memory.Options{SweepEvery: -1})
	defer st.Close()
	s, err := New(Options{Token: testToken, Gatherer: prometheus.NewRegistry(), Bans: st})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		t.Fatal("listener still answers after shutdown")
	}
}

func TestListBounds(t *testing.T) {
	f := newFixture(t)
	for i := range 5 {
		body := fmt.Sprintf(`{"facet":"ip","value":"192.0.2.%d","reason":"r","ttl":"1h"}`, i+1)
		if r := f.do(t, "POST", "/v1/bans", testToken, body); r.code != 201 {
			t.Fatalf("add: %d %s", r.code, r.body)
		}
	}
	if r := f.do(t, "POST", "/v1/bans", testToken, `{"facet":"app","value":"k","reason":"r","ttl":"1h"}`); r.code != 201 {
		t.Fatalf("add: %d %s", r.code, r.body)
	}
	cases := []struct {
		name, query   string
		want          int
		wantN, wantOf int
		wantTrunc     bool
	}{
		{"all", "", 200, 6, 6, false},
		{"limit 2", "?limit=2", 200, 2, 6, true},
		{"facet app", "?facet=app", 200, 1, 1, false},
		{"facet ip limit 3", "?facet=ip&limit=3", 200, 3, 5, true},
		{"facet without bans", "?facet=net", 200, 0, 0, false},
		{"limit zero", "?limit=0", 400, 0, 0, false},
		{"limit too large", "?limit=1000000", 400, 0, 0, false},
		{"unknown facet", "?facet=asn", 400, 0, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := f.do(t, "GET", "/v1/bans"+c.query, testToken, "")
			if r.code != c.want {
				t.Fatalf("status %d, want %d: %s", r.code, c.want, r.body)
			}
			if c.want != 200 {
				return
			}
			var l BanListing
			if err := json.Unmarshal(r.body, &l); err != nil {
				t.Fatal(err)
			}
			if len(l.Bans) != c.wantN || l.Total != c.wantOf || l.Truncated != c.wantTrunc {
				t.Fatalf("got %d of %d (truncated %v), want %d of %d (%v)", len(l.Bans), l.Total, l.Truncated, c.wantN, c.wantOf, c.wantTrunc)
			}
		})
	}
}

func TestNetBits(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.NetBits = func() (int, int) { return 24, 48 } })
	cases := []struct {
		name, value string
		want        int
	}{
		{"ipv4 /24", "198.51.100.0/24", 201},
		{"ipv4 /16", "198.51.0.0/16", 400},
		{"ipv6 /48", "2001:db8:1::/48", 201},
		{"ipv6 /64", "2001:db8:1:2::/64", 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := f.do(t, "POST", "/v1/bans", testToken, `{"facet":"net","value":"`+c.value+`","reason":"r","ttl":"1h"}`)
			if r.code != c.want {
				t.Fatalf("status %d, want %d: %s", r.code, c.want, r.body)
			}
			if c.want == 400 && !strings.Contains(r.errorText(t), "would never match") {
				t.Fatalf("error %q", r.errorText(t))
			}
		})
	}
}

// A facet named without its value is a JSON 400, not the mux's HTML
// redirect to the path with a slash (which a client following it turns
// into the same 400 a step later, and curl shows as HTML).
func TestFacetWithoutValue(t *testing.T) {
	f := newFixture(t)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, c := range []struct{ method, path string }{{"GET", "/v1/facets/ip"}, {"DELETE", "/v1/bans/ip"}} {
		req, _ := http.NewRequest(c.method, f.url+c.path, nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(string(b), "ip value") {
			t.Errorf("%s %s: %d %s %q", c.method, c.path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
		}
	}
}

// Matchable refuses a ban the gateway's facets could never match; the
// facet and value it is asked about are the canonical ones.
func TestMatchable(t *testing.T) {
	var asked []string
	f := newFixture(t, func(o *Options) {
		o.Matchable = func(facet, value string) error {
			asked = append(asked, facet+" "+value)
			if facet == "account" && value == "abc" {
				return errors.New("account ban \"abc\" would never match")
			}
			return nil
		}
	})
	for _, c := range []struct {
		body string
		want int
	}{
		{`{"facet":"account","value":"abc","reason":"r","ttl":"1h"}`, 400},
		{`{"facet":"account","value":"77","reason":"r","ttl":"1h"}`, 201},
		{`{"facet":"ip","value":"::ffff:192.0.2.1","reason":"r","ttl":"1h"}`, 201},
	} {
		if r := f.do(t, "POST", "/v1/bans", testToken, c.body); r.code != c.want {
			t.Errorf("%s: status %d, want %d: %s", c.body, r.code, c.want, r.body)
		}
	}
	if want := "account abc,account 77,ip 192.0.2.1"; strings.Join(asked, ",") != want {
		t.Errorf("asked about %q, want %q", asked, want)
	}
}
