package dashboard_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/admin"
	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/dashboard"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/privacy"
	"github.com/warden-gw/warden/internal/ration"
	"github.com/warden-gw/warden/internal/store/memory"
	"github.com/warden-gw/warden/internal/store/redis"
	"github.com/warden-gw/warden/internal/store/redis/redistest"
)

const testToken = "dashboard-test-token-0123456789"

// env is the admin API with the dashboard mounted, on loopback.
type env struct {
	srv   *httptest.Server
	store *memory.Store
	dash  *dashboard.Dashboard
}

func newEnv(t *testing.T, ledgerDir string, useTLS bool) *env {
	t.Helper()
	return newEnvWith(t, ledgerDir, useTLS, nil)
}

// newEnvWith is newEnv with more options set by opt.
func newEnvWith(t *testing.T, ledgerDir string, useTLS bool, opt func(*dashboard.Options)) *env {
	t.Helper()
	return newEnvLedger(t, ledgerDir, useTLS, opt, nil)
}

// newEnvLedger is newEnvWith whose admin API answers the ledger's queries
// with lq (nil: it has no ledger).
func newEnvLedger(t *testing.T, ledgerDir string, useTLS bool, opt func(*dashboard.Options), lq admin.Ledger) *env {
	t.Helper()
	return newEnvBans(t, ledgerDir, useTLS, opt, lq, nil)
}

// newEnvBans is newEnvLedger whose admin API keeps its bans in bans (nil:
// the env's memory store).
func newEnvBans(t *testing.T, ledgerDir string, useTLS bool, opt func(*dashboard.Options), lq admin.Ledger, bans admin.BanStore) *env {
	t.Helper()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "warden_requests_total", Help: "h"}, []string{"front", "code"})
	reg.MustRegister(c)
	c.WithLabelValues("loop", "200").Add(3)
	st := memory.New(memory.Options{})
	t.Cleanup(func() { st.Close() })
	o := dashboard.Options{Token: testToken, Gatherer: reg, LedgerDir: ledgerDir, Watch: dashboard.NewWatch(0)}
	if opt != nil {
		opt(&o)
	}
	d, err := dashboard.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if bans == nil {
		bans = st
	}
	a, err := admin.New(admin.Options{Token: testToken, Gatherer: reg, Bans: bans, Dashboard: d, Ledger: lq})
	if err != nil {
		t.Fatal(err)
	}
	var srv *httptest.Server
	if useTLS {
		srv = httptest.NewTLSServer(a.Handler())
	} else {
		srv = httptest.NewServer(a.Handler())
	}
	t.Cleanup(srv.Close)
	return &env{srv: srv, store: st, dash: d}
}

// client does not follow redirects, so that tests see them.
func (e *env) client(t testing.TB) *http.Client {
	jar, _ := cookiejar.New(nil)
	c := *e.srv.Client() // a copy: the server's client is shared
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

func body(t testing.TB, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t testing.TB, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf field in page:\n%s", page)
	}
	return m[1]
}

// signIn signs c in and returns the session's CSRF token.
func (e *env) signIn(t testing.TB, c *http.Client) string {
	t.Helper()
	r, err := c.Get(e.srv.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	tok := csrfOf(t, body(t, r))
	r, err = c.PostForm(e.srv.URL+"/login", url.Values{"token": {testToken}, "csrf": {tok}})
	if err != nil {
		t.Fatal(err)
	}
	body(t, r)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/" {
		t.Fatalf("sign-in: %d to %q, want 303 to /", r.StatusCode, r.Header.Get("Location"))
	}
	r, err = c.Get(e.srv.URL + "/bans")
	if err != nil {
		t.Fatal(err)
	}
	return csrfOf(t, body(t, r))
}

// pages and forms of the dashboard that need a session.
var (
	pages = []string{"/", "/api/now", "/identities", "/identities/took-by?facet=account&value=1", "/bans",
		"/explain?id=x", "/reach?authors=1", "/person?subject=1", "/trace"}
	forms = []string{"/bans/add", "/bans/remove", "/reach/dp", "/trace", "/logout"}
)

func TestRefusedWithoutSession(t *testing.T) {
	e := newEnv(t, t.TempDir(), false)
	for _, cookie := range []string{"", "warden_session=forged-session-id"} {
		for _, p := range pages {
			t.Run("GET "+p+" "+cookie, func(t *testing.T) {
				req, _ := http.NewRequest(http.MethodGet, e.srv.URL+p, nil)
				if cookie != "" {
					req.Header.Set("Cookie", cookie)
				}
				r, err := e.client(t).Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b := body(t, r)
				switch {
				case p == "/api/now" && r.StatusCode != http.StatusUnauthorized:
					t.Fatalf("status %d, want 401", r.StatusCode)
				case p != "/api/now" && (r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login"):
					t.Fatalf("status %d to %q, want 303 to /login", r.StatusCode, r.Header.Get("Location"))
				case strings.Contains(b, "<table") || strings.Contains(b, "requests"):
					t.Fatalf("page content served without a session: %s", b)
				}
			})
		}
		for _, p := range forms {
			t.Run("POST "+p+" "+cookie, func(t *testing.T) {
				req, _ := http.NewRequest(http.MethodPost, e.srv.URL+p, strings.NewReader("facet=ip&value=10.0.0.1&reason=x&ttl=1h&csrf=guess"))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if cookie != "" {
					req.Header.Set("Cookie", cookie)
				}
				r, err := e.client(t).Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body(t, r)
				if r.StatusCode != http.StatusForbidden {
					t.Fatalf("status %d, want 403", r.StatusCode)
				}
			})
		}
	}
	bans, _ := e.store.ListBans(context.Background(), time.Now())
	if len(bans) != 0 {
		t.Fatalf("a refused form changed the store: %v", bans)
	}
	// Open without a session: the sign-in form, the transparency page and the assets.
	for _, p := range []string{"/login", "/transparency", "/assets/app.js", "/assets/app.css"} {
		r, err := e.client(t).Get(e.srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		body(t, r)
		if r.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d, want 200", p, r.StatusCode)
		}
	}
}

func TestSignIn(t *testing.T) {
	e := newEnv(t, t.TempDir(), false)
	c := e.client(t)
	r, _ := c.Get(e.srv.URL + "/login")
	page := body(t, r)
	if !strings.Contains(page, `name="token"`) {
		t.Fatal("the sign-in form has no field token")
	}
	tok := csrfOf(t, page)
	cases := []struct {
		name string
		form url.Values
		want int
	}{
		{"wrong token", url.Values{"token": {testToken + "x"}, "csrf": {tok}}, http.StatusUnauthorized},
		{"empty token", url.Values{"token": {""}, "csrf": {tok}}, http.StatusUnauthorized},
		{"no csrf", url.Values{"token": {testToken}}, http.StatusForbidden},
		{"wrong csrf", url.Values{"token": {testToken}, "csrf": {tok + "x"}}, http.StatusForbidden},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			c := e.client(t)
			r, _ := c.Get(e.srv.URL + "/login")
			tt.form.Set("csrf", strings.Replace(tt.form.Get("csrf"), tok, csrfOf(t, body(t, r)), 1))
			r, err := c.PostForm(e.srv.URL+"/login", tt.form)
			if err != nil {
				t.Fatal(err)
			}
			body(t, r)
			if r.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", r.StatusCode, tt.want)
			}
			for _, ck := range r.Cookies() {
				if ck.Name == "warden_session" {
					t.Fatal("a session cookie was set")
				}
			}
		})
	}
	t.Run("right token", func(t *testing.T) {
		c := e.client(t)
		r, _ := c.Get(e.srv.URL + "/login")
		r, err := c.PostForm(e.srv.URL+"/login", url.Values{"token": {testToken}, "csrf": {csrfOf(t, body(t, r))}})
		if err != nil {
			t.Fatal(err)
		}
		body(t, r)
		var sc *http.Cookie
		for _, ck := range r.Cookies() {
			if ck.Name == "warden_session" {
				sc = ck
			}
		}
		switch {
		case sc == nil:
			t.Fatal("no session cookie")
		case !sc.HttpOnly, sc.SameSite != http.SameSiteStrictMode:
			t.Fatalf("cookie HttpOnly=%v SameSite=%v, want HttpOnly and Strict", sc.HttpOnly, sc.SameSite)
		case sc.Secure:
			t.Fatal("cookie Secure over cleartext: the browser would never send it back")
		case len(sc.Value) < 40:
			t.Fatalf("session id %q too short", sc.Value)
		case strings.Contains(sc.Value, testToken):
			t.Fatal("the cookie carries the token")
		}
		r, _ = c.Get(e.srv.URL + "/")
		b := body(t, r)
		if r.StatusCode != http.StatusOK || !strings.Contains(b, `id="n-requests"`) {
			t.Fatalf("now page after sign-in: %d", r.StatusCode)
		}
		// The JSON API keeps its bearer token: a session is not enough.
		r, _ = c.Get(e.srv.URL + "/v1/bans")
		body(t, r)
		if r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("/v1/bans with a session cookie only: %d, want 401", r.StatusCode)
		}
		// Sign out ends the session on the server, not only in the browser.
		r, _ = c.Post(e.srv.URL+"/logout", "application/x-www-form-urlencoded", strings.NewReader("csrf="+url.QueryEscape(csrfOf(t, b))))
		body(t, r)
		if r.StatusCode != http.StatusSeeOther {
			t.Fatalf("logout: %d", r.StatusCode)
		}
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/", nil)
		req.AddCookie(sc)
		r, _ = e.client(t).Do(req)
		body(t, r)
		if r.StatusCode != http.StatusSeeOther {
			t.Fatalf("the old session still opens /: %d", r.StatusCode)
		}
	})
}

func TestSecureCookieUnderTLS(t *testing.T) {
	e := newEnv(t, t.TempDir(), true)
	c := e.client(t)
	r, err := c.Get(e.srv.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	r, err = c.PostForm(e.srv.URL+"/login", url.Values{"token": {testToken}, "csrf": {csrfOf(t, body(t, r))}})
	if err != nil {
		t.Fatal(err)
	}
	body(t, r)
	for _, ck := range r.Cookies() {
		if ck.Name == "warden_session" && (!ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode) {
			t.Fatalf("cookie under TLS: Secure=%v HttpOnly=%v SameSite=%v", ck.Secure, ck.HttpOnly, ck.SameSite)
		}
	}
	if r.Header.Get("Strict-Transport-Security") == "" {
		t.Error("no HSTS under TLS")
	}
}

func TestFormsNeedTheirCSRFToken(t *testing.T) {
	e := newEnv(t, t.TempDir(), false)
	c := e.client(t)
	tok := e.signIn(t, c)
	other := e.signIn(t, e.client(t)) // another session's token is not this one's
	ban := url.Values{"facet": {"ip"}, "value": {"10.9.8.7"}, "reason": {"test scraper"}, "ttl": {"1h"}}
	for _, bad := range []string{"", "x", other} {
		f := url.Values{}
		for k, v := range ban {
			f[k] = v
		}
		if bad != "" {
			f.Set("csrf", bad)
		}
		r, _ := c.PostForm(e.srv.URL+"/bans/add", f)
		body(t, r)
		if r.StatusCode != http.StatusForbidden {
			t.Fatalf("csrf %q: status %d, want 403", bad, r.StatusCode)
		}
	}
	// A cross-site Origin is refused even with the token.
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/bans/add", strings.NewReader(ban.Encode()+"&csrf="+url.QueryEscape(tok)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	r, _ := c.Do(req)
	body(t, r)
	if r.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site origin: %d, want 403", r.StatusCode)
	}
	if bans, _ := e.store.ListBans(context.Background(), time.Now()); len(bans) != 0 {
		t.Fatalf("a refused form added a ban: %v", bans)
	}
	ban.Set("csrf", tok)
	r, _ = c.PostForm(e.srv.URL+"/bans/add", ban)
	body(t, r)
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("add with its token: %d", r.StatusCode)
	}
	bans, _ := e.store.ListBans(context.Background(), time.Now())
	if len(bans) != 1 || bans[0].Value != "10.9.8.7" || bans[0].By != "dashboard" || bans[0].Reason != "test scraper" {
		t.Fatalf("bans after add: %+v", bans)
	}
	r, _ = c.Get(e.srv.URL + "/bans")
	if b := body(t, r); !strings.Contains(b, "10.9.8.7") || !strings.Contains(b, "test scraper") {
		t.Fatal("the bans page does not list the ban with its reason")
	}
	// A bad ban is the admin API's refusal, shown on the page.
	bad := url.Values{"facet": {"ip"}, "value": {"not-an-ip"}, "reason": {"x"}, "ttl": {"1h"}, "csrf": {tok}}
	r, _ = c.PostForm(e.srv.URL+"/bans/add", bad)
	if b := body(t, r); r.StatusCode != http.StatusBadRequest || !strings.Contains(b, "ip value") {
		t.Fatalf("bad ban: %d", r.StatusCode)
	}
	r, _ = c.PostForm(e.srv.URL+"/bans/remove", url.Values{"facet": {"ip"}, "value": {"10.9.8.7"}, "csrf": {tok}})
	body(t, r)
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("remove: %d", r.StatusCode)
	}
	if bans, _ := e.store.ListBans(context.Background(), time.Now()); len(bans) != 0 {
		t.Fatalf("ban not removed: %v", bans)
	}
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t, t.TempDir(), false)
	c := e.client(t)
	e.signIn(t, c)
	for _, p := range []string{"/login", "/transparency", "/", "/bans", "/reach"} {
		r, err := c.Get(e.srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		b := body(t, r)
		h := r.Header
		csp := h.Get("Content-Security-Policy")
		switch {
		case !strings.Contains(csp, "script-src 'self'"), strings.Contains(csp, "unsafe-inline"), !strings.Contains(csp, "frame-ancestors 'none'"):
			t.Errorf("%s: CSP %q", p, csp)
		case h.Get("X-Frame-Options") != "DENY", h.Get("X-Content-Type-Options") != "nosniff":
			t.Errorf("%s: XFO %q nosniff %q", p, h.Get("X-Frame-Options"), h.Get("X-Content-Type-Options"))
		case regexp.MustCompile(`<script>|<script [^>]*>[^<]|style="| on[a-z]+="`).MatchString(b):
			t.Errorf("%s: inline script, style or handler in the page", p)
		}
	}
}

// The identities page counts, per candidate, the distinct subjects served
// in 24 hours and what each budget on its facet counted in its window and
// class (masked records not counted), every count of a window in one pass.
func TestIdentitiesCounts(t *testing.T) {
	dir := t.TempDir()
	l, err := ledger.Open(ledger.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	watch := dashboard.NewWatch(0)
	now := time.Now()
	rec := func(ago time.Duration, account, subject string, masked inspect.ClassSet) {
		acc := &inspect.Access{RequestID: fmt.Sprint("r", ago, account, subject), Time: now.Add(-ago), Route: "GET /v1/users/{id}",
			Classes: []string{"contact", "profile"}, Status: 200,
			Records: []inspect.Record{{ID: subject, Classes: 0b11, Masked: masked}}}
		acc.Identity.Account, acc.Identity.IP = account, netip.MustParseAddr("10.0.0.1")
		l.Record(acc)
		watch.Record(acc)
	}
	rec(time.Minute, "alice", "s1", 0)
	rec(time.Minute, "alice", "s2", 0)
	rec(2*time.Minute, "alice", "s2", 0)
	rec(3*time.Minute, "alice", "s3", 0b01) // contact masked
	rec(3*time.Hour, "alice", "s4", 0)      // outside the budget's hour
	rec(time.Minute, "bob", "s1", 0)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{}
	cfg.Ration.Budgets = []ration.BudgetConfig{{Name: "contacts", Facet: "account", Class: "contact", Limit: 10, Window: time.Hour},
		{Name: "profiles", Facet: "account", Class: "profile", Limit: 4, Window: 24 * time.Hour}}
	e := newEnvWith(t, dir, false, func(o *dashboard.Options) {
		o.Watch, o.Config = watch, func() *config.Config { return cfg }
	})
	c := e.client(t)
	e.signIn(t, c)
	r, err := c.Get(e.srv.URL + "/identities")
	if err != nil {
		t.Fatal(err)
	}
	page := body(t, r)
	row := func(v string) string {
		i := strings.Index(page, ">"+v+"</a>")
		if i < 0 {
			t.Fatalf("no row for %s:\n%s", v, page)
		}
		return page[i : i+strings.Index(page[i:], "</tr>")]
	}
	cell := regexp.MustCompile(`<td>([0-9]+)(?: / ([0-9]+))?`)
	for v, want := range map[string][]string{"alice": {"4", "2", "10", "4", "4"}, "bob": {"1", "1", "10", "1", "4"}} {
		var got []string
		for _, m := range cell.FindAllStringSubmatch(row(v), -1) {
			got = append(got, m[1])
			if m[2] != "" {
				got = append(got, m[2])
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: subjects in 24 h, contacts seen/limit, profiles seen/limit %v, want %v", v, got, want)
		}
	}
}

// Failed sign-ins are limited per client address: five in a minute, then
// 429 with Retry-After, even for the right token, until the window has
// passed; headers a client writes (X-Forwarded-For, X-Real-IP) change
// nothing, and another address is not held back.
func TestSignInRateLimit(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	e := newEnvWith(t, t.TempDir(), false, func(o *dashboard.Options) { o.Now = clock })
	// from gives a client whose connections come from addr (loopback).
	from := func(addr string) *http.Client {
		c := e.client(t)
		dial := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(addr)}}
		c.Transport = &http.Transport{DialContext: dial.DialContext}
		return c
	}
	attempt := func(c *http.Client, token string, i int) (int, string) {
		t.Helper()
		r, err := c.Get(e.srv.URL + "/login")
		if err != nil {
			t.Fatal(err)
		}
		form := url.Values{"token": {token}, "csrf": {csrfOf(t, body(t, r))}}
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i))
		req.Header.Set("X-Real-IP", fmt.Sprintf("198.51.100.%d", i))
		if r, err = c.Do(req); err != nil {
			t.Fatal(err)
		}
		body(t, r)
		return r.StatusCode, r.Header.Get("Retry-After")
	}
	a := from("127.0.0.1")
	for i := range 5 {
		if code, _ := attempt(a, "wrong-token-"+fmt.Sprint(i), i); code != http.StatusUnauthorized {
			t.Fatalf("failed sign-in %d: %d, want 401", i+1, code)
		}
		advance(time.Second)
	}
	if code, after := attempt(a, "wrong-token", 9); code != http.StatusTooManyRequests || after != "55" {
		t.Fatalf("sixth failed sign-in in a minute: %d, Retry-After %q; want 429, 55", code, after)
	}
	if code, _ := attempt(a, testToken, 10); code != http.StatusTooManyRequests {
		t.Fatalf("the right token while held back: %d, want 429", code)
	}
	if code, _ := attempt(from("127.0.0.2"), testToken, 11); code != http.StatusSeeOther {
		t.Fatalf("another address with the right token: %d, want 303", code)
	}
	advance(54 * time.Second)
	if code, after := attempt(a, testToken, 12); code != http.StatusTooManyRequests || after != "1" {
		t.Fatalf("a second before the window ends: %d, Retry-After %q; want 429, 1", code, after)
	}
	advance(time.Second)
	if code, _ := attempt(a, testToken, 13); code != http.StatusSeeOther {
		t.Fatalf("the right token once the window passed: %d, want 303", code)
	}
	// A sign-in forgets the address's failures (a new client: a, signed
	// in, is sent on from /login).
	b := from("127.0.0.1")
	for i := range 5 {
		if code, _ := attempt(b, "wrong-token", 20+i); code != http.StatusUnauthorized {
			t.Fatalf("failed sign-in %d after signing in: %d, want 401", i+1, code)
		}
	}
}

// TestNowMasksByRuleAndFacet: the now page breaks masks down by rule and
// facet (issue 25), as it does refusals: the counter carries the rule, the
// facet is the config's (a budget's own, the unreferenced rule's, the
// fan-out cap's, app for a scope); a rule the config no longer names is
// shown by its name alone.
func TestNowMasksByRuleAndFacet(t *testing.T) {
	cfg := &config.Config{Ration: ration.Config{
		Budgets:      []ration.BudgetConfig{{Name: "contact-ip-day", Facet: "ip"}, {Name: "contact-net-day", Facet: "net"}},
		Scopes:       []ration.ScopeConfig{{Name: "scope-contact", Class: "contact"}},
		Unreferenced: &ration.Unreferenced{Name: "unreferenced", Facet: "fingerprint"},
		FanoutCap:    &ration.FanoutCap{Name: "fanout-cap"},
	}}
	masked := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "warden_budget_masked_total", Help: "h"}, []string{"rule"})
	for rule, n := range map[string]float64{"contact-ip-day": 4, "contact-net-day": 5, "scope-contact": 6, "unreferenced": 7, "fanout-cap": 8, "renamed-away": 9} {
		masked.WithLabelValues(rule).Add(n)
	}
	e := newEnvWith(t, "", false, func(o *dashboard.Options) {
		reg := prometheus.NewRegistry()
		reg.MustRegister(masked)
		o.Gatherer = reg
		o.Config = func() *config.Config { return cfg }
	})
	c := e.client(t)
	e.signIn(t, c)
	r, err := c.Get(e.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page := body(t, r)
	if !strings.Contains(page, "Masks by rule and facet") {
		t.Errorf("the now page's masks are not by rule and facet")
	}
	r, err = c.Get(e.srv.URL + "/api/now")
	if err != nil {
		t.Fatal(err)
	}
	live := body(t, r)
	for _, want := range []string{"contact-ip-day ip", "contact-net-day net", "scope-contact app", "unreferenced fingerprint", "fanout-cap fingerprint", "renamed-away"} {
		cell := "<td>" + want + "</td>"
		if !strings.Contains(page, cell) {
			t.Errorf("the now page has no row %q", want)
		}
		if !strings.Contains(live, `"`+want+`":`) {
			t.Errorf("/api/now masks have no %q: %s", want, live)
		}
	}
}

// TestBansUnknownWhenStoreFails: with the state store down (Redis killed)
// the now page says the bans in force are unknown and the bans page lists
// none, rather than "-1" and "0 bans in force".
func TestBansUnknownWhenStoreFails(t *testing.T) {
	rs := redistest.Start(t)
	cfg := redis.Config{Addrs: []string{rs.Addr()}}
	cfg.SetDefaults()
	st, err := redis.New(context.Background(), cfg, redis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := newEnvBans(t, "", false, nil, nil, st)
	c := e.client(t)
	e.signIn(t, c)
	rs.Kill()
	r, err := c.Get(e.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	if page := body(t, r); !strings.Contains(page, `id="n-banned">unknown<`) {
		t.Errorf("now page with the store down: the bans tile is not unknown:\n%s", page)
	}
	r, err = c.Get(e.srv.URL + "/bans")
	if err != nil {
		t.Fatal(err)
	}
	page := body(t, r)
	if r.StatusCode != http.StatusServiceUnavailable || strings.Contains(page, "0 bans in force") || !strings.Contains(page, "could not be listed") {
		t.Errorf("bans page with the store down: %d\n%s", r.StatusCode, page)
	}
}

// TestTransparencyRepeatFromMemory: the public transparency page answers a
// repeat of the day's question from memory, not by reading the budget
// again (a file under a lock here; a ClickHouse query on a fleet): a
// budget file unreadable after the first answer does not change the page.
func TestTransparencyRepeatFromMemory(t *testing.T) {
	dir := t.TempDir()
	l, err := ledger.Open(ledger.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	e := newEnv(t, dir, false)
	get := func() string {
		r, err := e.client(t).Get(e.srv.URL + "/transparency")
		if err != nil {
			t.Fatal(err)
		}
		page := body(t, r)
		if r.StatusCode != http.StatusOK || !strings.Contains(page, `id="stopped"`) {
			t.Fatalf("transparency: %d\n%s", r.StatusCode, page)
		}
		return page[strings.Index(page, "<main>"):strings.Index(page, "</main>")]
	}
	first := get()
	if err := os.WriteFile(filepath.Join(dir, privacy.BudgetFile), []byte("not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if again := get(); again != first {
		t.Fatalf("the repeat differs:\n%s\n---\n%s", first, again)
	}
}

// The ban form's expiry takes a number of seconds, as its error says it
// may ("want a duration like "24h" or a number of seconds"): the form sent
// every ttl to the admin API as a JSON string, where only a duration
// parses, so "3600" was refused with that very message.
func TestBanFormTTLInSeconds(t *testing.T) {
	e := newEnv(t, t.TempDir(), false)
	c := e.client(t)
	csrf := e.signIn(t, c)
	for value, ttl := range map[string]string{"192.0.2.1": "3600", "192.0.2.2": " 90 "} {
		r, err := c.PostForm(e.srv.URL+"/bans/add", url.Values{"csrf": {csrf}, "facet": {"ip"}, "value": {value}, "reason": {"r"}, "ttl": {ttl}})
		if err != nil {
			t.Fatal(err)
		}
		if page := body(t, r); r.StatusCode != http.StatusSeeOther {
			i := strings.Index(page, `role="alert">`)
			t.Fatalf("ttl %q: %d, alert %.120q; want 303", ttl, r.StatusCode, page[max(i, 0):])
		}
	}
	// What is no number of seconds still gets the API's own words.
	for _, ttl := range []string{"NaN", "Inf", "-60"} {
		r, err := c.PostForm(e.srv.URL+"/bans/add", url.Values{"csrf": {csrf}, "facet": {"ip"}, "value": {"192.0.2.3"}, "reason": {"r"}, "ttl": {ttl}})
		if err != nil {
			t.Fatal(err)
		}
		if page := body(t, r); r.StatusCode != http.StatusBadRequest || !strings.Contains(page, `role="alert">ttl `) {
			i := strings.Index(page, `role="alert">`)
			t.Errorf("ttl %q: %d, alert %.120q; want 400 naming the ttl", ttl, r.StatusCode, page[max(i, 0):])
		}
	}
	bans, err := e.store.ListBans(context.Background(), time.Now())
	if err != nil || len(bans) != 2 {
		t.Fatalf("bans: %+v %v", bans, err)
	}
	for _, b := range bans {
		want := map[string]time.Duration{"192.0.2.1": time.Hour, "192.0.2.2": 90 * time.Second}[b.Value]
		if got := b.Until.Sub(b.Created); got < want-time.Second || got > want+time.Second {
			t.Errorf("ban on %s lasts %s, want %s", b.Value, got, want)
		}
	}
}
