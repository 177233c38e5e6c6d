package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// dashConfig is ledgerConfig with the detector on (a machine-speed reader
// of contact details is banned) and the partner app registered.
func dashConfig(dir string) string {
	return ledgerConfig(dir, 6) + `detect:
  enabled: true
  rules:
    - {name: contact-velocity, kind: velocity, facet: account, limit: 20, window: 10s}
    - {name: list-fanout, kind: fanout, facet: account, limit: 5, window: 10m}
`
}

// lab is a platform and a gateway with the dashboard's config.
type lab struct {
	g        *gw
	platform string
}

func startLab(t *testing.T) *lab {
	t.Helper()
	up := startPlatform(t, 2000)
	return &lab{g: startGateway(t, dashConfig(t.TempDir()), up), platform: up}
}

// traffic sends one round of what the pages show: users reading profiles
// and authors' posts, one account going past its contact budget at machine
// speed (masks, then a detector ban), following lists past a burst limit
// (refusals). It returns the request id of one refusal.
func (l *lab) traffic(t *testing.T, round int) string {
	t.Helper()
	c := clientFrom("127.0.0.1")
	var wg sync.WaitGroup
	for u := 0; u < 4; u++ {
		wg.Add(1)
		go func(u int) {
			defer wg.Done()
			auth := map[string]string{"Authorization": "Bearer " + token(t, fmt.Sprint(100+u))}
			for i := 0; i < 3; i++ {
				do(t, c, "GET", fmt.Sprintf("%s/v1/users/%d", l.g.url, 10+u*7+i), auth)
				do(t, c, "GET", fmt.Sprintf("%s/v1/users/%d/posts", l.g.url, 17+i), auth)
			}
		}(u)
	}
	wg.Wait()
	// A reader past its budget of 6 (masked), too slow for any detector rule.
	reader := map[string]string{"Authorization": "Bearer " + token(t, fmt.Sprint(800+round))}
	for i := 0; i < 8; i++ {
		do(t, c, "GET", fmt.Sprintf("%s/v1/users/%d", l.g.url, 600+10*round+i), reader)
	}
	// A harvester opening everyone on a follower list: masked past its
	// budget, then banned by the fan-out rule.
	harvester := map[string]string{"Authorization": "Bearer " + token(t, fmt.Sprint(900+round))}
	var list struct {
		Users []struct {
			ID json.Number `json:"id"`
		} `json:"users"`
	}
	a := do(t, c, "GET", fmt.Sprintf("%s/v1/users/%d/followers", l.g.url, 40+round), harvester)
	if err := json.Unmarshal([]byte(a.body), &list); err != nil || len(list.Users) < 8 {
		t.Fatalf("followers of %d: %d %v (%d users)", 40+round, a.status, err, len(list.Users))
	}
	for _, u := range list.Users[:8] {
		do(t, c, "GET", fmt.Sprintf("%s/v1/users/%s", l.g.url, u.ID), harvester)
	}
	id := ""
	follow := map[string]string{"Authorization": "Bearer " + token(t, fmt.Sprint(700+round))}
	for i := 0; i < 4; i++ {
		a := do(t, c, "GET", fmt.Sprintf("%s/v1/users/%d/following", l.g.url, 30+i), follow)
		if a.status == http.StatusTooManyRequests {
			id = a.header.Get("X-Request-Id")
		}
	}
	if id == "" {
		t.Fatal("no refusal in the lab's traffic")
	}
	return id
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// need finds a program Debian packages, failing (never skipping) with the
// package to install when it is absent: .ci/run installs it.
func need(t *testing.T, prog, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		t.Fatalf("%s not found: install Debian's %s (apt-get install %s; .ci/run does)", prog, pkg, pkg)
	}
	return p
}

// grafanaExprs reads every query of the shipped Grafana dashboard.
func grafanaExprs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../examples/grafana/warden.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("examples/grafana/warden.json: %v", err)
	}
	var out []string
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			out = append(out, tg.Expr)
		}
	}
	if len(out) < 8 {
		t.Fatalf("only %d queries in the dashboard", len(out))
	}
	return out
}

// grafanaVars stands in for Grafana's variables: $job is the scrape job
// TestGrafanaDashboardQueries names, so a query must match it to have data.
var grafanaVars = strings.NewReplacer("$__rate_interval", "30s", "$__range", "5m", "$job", "warden")

// grafanaSelector is a metric and its label matchers in a query.
var grafanaSelector = regexp.MustCompile(`\b((?:warden|process)_[a-z_]+)(\{[^}]*\})?`)

// Every metric every panel reads is narrowed to the dashboard's $job
// variable: a panel without it showed every job's series whatever jobs
// were picked (only the CPU and memory panels had it).
func TestGrafanaQueriesFollowJob(t *testing.T) {
	for _, e := range grafanaExprs(t) {
		for _, m := range grafanaSelector.FindAllStringSubmatch(e, -1) {
			if !strings.Contains(m[2], `job=~"$job"`) {
				t.Errorf("query %s: %s is not narrowed to job=~\"$job\"", e, m[1])
			}
		}
	}
}

// Every query of examples/grafana/warden.json passes promtool and returns
// data from a real Prometheus scraping a real warden's admin /metrics with
// the bearer token.
func TestGrafanaDashboardQueries(t *testing.T) {
	prom := need(t, "prometheus", "prometheus")
	promtool := need(t, "promtool", "prometheus")
	exprs := grafanaExprs(t)
	dir := t.TempDir()

	// promtool checks each query's syntax as a recording rule.
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: grafana\n    rules:\n")
	for i, e := range exprs {
		q, _ := json.Marshal(grafanaVars.Replace(e))
		fmt.Fprintf(&rules, "      - record: warden:grafana_panel_%d\n        expr: %s\n", i, q)
	}
	rulesFile := filepath.Join(dir, "rules.yml")
	os.WriteFile(rulesFile, []byte(rules.String()), 0o600)
	if out, err := exec.Command(promtool, "check", "rules", rulesFile).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}

	l := startLab(t)
	tokFile := filepath.Join(dir, "token")
	os.WriteFile(tokFile, []byte(adminToken), 0o600)
	adminHost := strings.TrimPrefix(l.g.admin, "http://")
	cfg := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: warden
    metrics_path: /metrics
    bearer_token_file: %s
    static_configs: [{targets: ["%s"]}]
`, tokFile, adminHost)
	cfgFile := filepath.Join(dir, "prometheus.yml")
	os.WriteFile(cfgFile, []byte(cfg), 0o600)
	if out, err := exec.Command(promtool, "check", "config", cfgFile).CombinedOutput(); err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	cmd := exec.Command(prom, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus output:\n%s", out.String())
		}
	})
	api := "http://" + addr + "/api/v1/query?query="
	query := func(q string) (int, string) {
		resp, err := http.Get(api + url.QueryEscape(q))
		if err != nil {
			return -1, err.Error()
		}
		defer resp.Body.Close()
		var r struct {
			Status string `json:"status"`
			Error  string `json:"error"`
			Data   struct {
				Result []json.RawMessage `json:"result"`
			} `json:"data"`
		}
		json.NewDecoder(resp.Body).Decode(&r)
		if r.Status != "success" {
			return -1, r.Error
		}
		return len(r.Data.Result), ""
	}
	// Traffic over a few scrapes, so that rates have two points.
	deadline := time.Now().Add(40 * time.Second)
	for round := 0; ; round++ {
		l.traffic(t, round)
		if n, _ := query(`up{job="warden"} == 1`); n == 1 && round >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus never scraped warden (up == 1)")
		}
		time.Sleep(time.Second)
	}
	time.Sleep(2 * time.Second)
	for _, e := range exprs {
		q := grafanaVars.Replace(e)
		var n int
		var msg string
		for i := 0; i < 10; i++ { // a rate needs two scrapes after its first sample
			if n, msg = query(q); n > 0 || msg != "" {
				break
			}
			time.Sleep(time.Second)
		}
		switch {
		case msg != "":
			t.Errorf("query %s: %s", q, msg)
		case n == 0:
			t.Errorf("query %s: no data", q)
		}
	}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrfOf is the CSRF token of the dashboard's page at path, asked by c.
func csrfOf(t *testing.T, c *http.Client, g *gw, path string) string {
	t.Helper()
	a := do(t, c, "GET", g.admin+path, nil)
	m := csrfField.FindStringSubmatch(a.body)
	if m == nil {
		t.Fatalf("%s: %d, no csrf field:\n%s", path, a.status, a.body)
	}
	return m[1]
}

// The dashboard's limits come from the config: after dashboard.
// login_failures failed sign-ins from an address, /login answers 429 with
// Retry-After through the real gateway (a forged X-Forwarded-For changes
// nothing), and an upload past dashboard.trace_max_bytes is refused (413).
func TestDashboardLimitsFromConfig(t *testing.T) {
	platform := startPlatform(t, 200)
	dir := filepath.Join(t.TempDir(), "ledger")
	g := startGateway(t, ledgerConfig(dir, 15)+"dashboard: {trace_max_bytes: 1048576, login_failures: 2, login_window: 1m}\n", platform)
	client := func(ip string) *http.Client {
		c := clientFrom(ip)
		c.Jar, _ = cookiejar.New(nil)
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		return c
	}
	page := func(c *http.Client, path string) string { return csrfOf(t, c, g, path) }
	signIn := func(c *http.Client, tok string) (int, string) {
		t.Helper()
		form := url.Values{"token": {tok}, "csrf": {page(c, "/login")}}
		req, _ := http.NewRequest("POST", g.admin+"/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("203.0.113.%d", time.Now().Nanosecond()%250))
		r, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode, r.Header.Get("Retry-After")
	}
	guesser := client("127.0.5.1")
	for i := range 2 {
		if code, _ := signIn(guesser, "wrong-token-0123456789"); code != http.StatusUnauthorized {
			t.Fatalf("failed sign-in %d: %d, want 401", i+1, code)
		}
	}
	if code, after := signIn(guesser, adminToken); code != http.StatusTooManyRequests || !regexp.MustCompile(`^([1-5]?[0-9]|60)$`).MatchString(after) || after == "0" {
		t.Fatalf("the right token after login_failures failures: %d, Retry-After %q; want 429 and at most 60 s", code, after)
	}

	op := client("127.0.5.2")
	if code, _ := signIn(op, adminToken); code != http.StatusSeeOther {
		t.Fatalf("sign-in from another address: %d, want 303", code)
	}
	tok := page(op, "/trace")
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormField("csrf")
	io.WriteString(fw, tok)
	fw, _ = mw.CreateFormFile("copy", "big.csv")
	io.WriteString(fw, "id,email\n"+strings.Repeat("1,someone@example.com\n", (3<<20)/22))
	mw.Close()
	req, _ := http.NewRequest("POST", g.admin+"/trace", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	r, err := op.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("a 3 MiB upload with trace_max_bytes 1 MiB: %d, want 413", r.StatusCode)
	}
}

// The reach page's DP form names its own fields in its errors (researcher,
// epsilon), not the command's flags (--researcher, dp-epsilon), through a
// real gateway's ledger.
func TestDashboardDPFormErrors(t *testing.T) {
	l := startLab(t)
	l.traffic(t, 0)
	c := clientFrom("127.0.5.3")
	c.Jar, _ = cookiejar.New(nil)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	r, err := c.PostForm(l.g.admin+"/login", url.Values{"token": {adminToken}, "csrf": {csrfOf(t, c, l.g, "/login")}})
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", r.StatusCode)
	}
	csrf := csrfOf(t, c, l.g, "/reach")
	for _, tt := range []struct{ researcher, epsilon, want string }{
		{"", "0.5", "researcher: a DP answer is charged to a researcher&#39;s budget; give the researcher&#39;s name"},
		{"rita", "abc", "epsilon: &#34;abc&#34; is not a number from 0.01 to 100"},
	} {
		r, err := c.PostForm(l.g.admin+"/reach/dp", url.Values{"csrf": {csrf}, "authors": {"17,18"}, "researcher": {tt.researcher}, "epsilon": {tt.epsilon}})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		page := string(b)
		if i := strings.Index(page, `role="alert">`); r.StatusCode != http.StatusBadRequest || !strings.HasPrefix(page[max(i, 0):], `role="alert">`+tt.want) {
			t.Errorf("researcher %q, epsilon %q: %d, alert %.140q; want 400 and %q", tt.researcher, tt.epsilon, r.StatusCode, page[max(i, 0):], tt.want)
		}
	}
}

// admin.tls serves the admin API and the dashboard over HTTPS, and the
// session cookie is then Secure (issue 25: "Secure under TLS"; the admin
// listener could not serve TLS, so the cookie never was); a cleartext
// request is refused.
func TestAdminOverTLS(t *testing.T) {
	platform := startPlatform(t, 200)
	dir := t.TempDir()
	cf, kf := selfSigned(t, dir)
	g := startGateway(t, ledgerConfig(filepath.Join(dir, "ledger"), 6)+fmt.Sprintf("admin: {tls: {cert_file: %s, key_file: %s}}\n", cf, kf), platform)
	pemBytes, err := os.ReadFile(cf)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemBytes)
	c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	c.Jar, _ = cookiejar.New(nil)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	base := "https://" + strings.TrimPrefix(g.admin, "http://")
	ga := &gw{admin: base}
	r, err := c.PostForm(base+"/login", url.Values{"token": {adminToken}, "csrf": {csrfOf(t, c, ga, "/login")}})
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	var session *http.Cookie
	for _, ck := range r.Cookies() {
		if ck.Name == "warden_session" {
			session = ck
		}
	}
	if r.StatusCode != http.StatusSeeOther || session == nil || !session.Secure || !session.HttpOnly {
		t.Fatalf("sign-in over TLS: %d, session cookie %+v; want 303 and a Secure, HttpOnly cookie", r.StatusCode, session)
	}
	req, _ := http.NewRequest("GET", base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if r, err := c.Do(req); err != nil || r.StatusCode != 200 {
		t.Fatalf("metrics over TLS: %v %v", r, err)
	} else {
		r.Body.Close()
	}
	if r, err := http.Get(g.admin + "/login"); err == nil {
		r.Body.Close()
		if r.StatusCode == http.StatusOK {
			t.Errorf("cleartext HTTP to the TLS admin listener answered 200")
		}
	}
}

// The identities page ranks the last 24 hours of the ledger, and a
// restart does not make it forget who took the most before it: its
// candidates (the Watch) are memory only, so a restarted gateway listed
// only the identities seen since, however much another took an hour
// before (a deploy hid the day's harvester). warden serve now seeds the
// Watch with the ledger's last 24 hours.
func TestIdentitiesAfterRestart(t *testing.T) {
	platform := startPlatform(t, 2000)
	cfg := dashConfig(filepath.Join(t.TempDir(), "ledger"))
	l := &lab{g: startGateway(t, cfg, platform), platform: platform}
	l.traffic(t, 1) // account 801 is served 6 people's contact details (then masked)
	row := regexp.MustCompile(`>801</a></td><td>6</td>`)
	identities := func(g *gw) string {
		t.Helper()
		c := clientFrom("127.0.5.4")
		c.Jar, _ = cookiejar.New(nil)
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		r, err := c.PostForm(g.admin+"/login", url.Values{"token": {adminToken}, "csrf": {csrfOf(t, c, g, "/login")}})
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in: %d", r.StatusCode)
		}
		return do(t, c, "GET", g.admin+"/identities?class=contact", nil).body
	}
	// The Watch counts off the request path, and after a restart its
	// seeding runs beside the serving: give each a few seconds.
	listed := func(g *gw) (string, bool) {
		var page string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if page = identities(g); row.MatchString(page) {
				return page, true
			}
		}
		return page, false
	}
	if page, ok := listed(l.g); !ok {
		t.Fatalf("before the restart, account 801 is not listed with 6 subjects:\n%s", page)
	}
	stopGateway(t, l.g, syscall.SIGTERM)
	page, ok := listed(startGateway(t, cfg, platform))
	if ok {
		return
	}
	t.Fatalf("after a restart, account 801 (6 subjects' contact details in the last 24 hours) is not listed:\n%s", page)
}
