package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/store/redis/redistest"
)

// profileRoute maps the lab's profile look-up: one record, its contact class.
const profileRoute = `inspect:
  routes:
    - route: "GET /v1/users/{id}"
      records: ["$"]
      id: id
      classes: {contact: [email, phone]}
`

// contactBudgetConfig is a gateway on front with account identity, the
// profile route, and a budget of limit distinct contacts a day per account.
func contactBudgetConfig(front string, limit int) string {
	return fmt.Sprintf(`front: %s
log: {format: text, level: warn}
identity:
  account: {secret_env: LAB_JWT_SECRET}
`+profileRoute+`ration:
  budgets:
    - {name: contact-account, facet: account, class: contact, limit: %d, window: 24h}
`, front, limit)
}

func redisConfig(addr, mode string, limit int) string {
	return fmt.Sprintf(`log: {format: text, level: info}
identity:
  account: {secret_env: LAB_JWT_SECRET}
store:
  backend: redis
  redis: {addrs: [%s]}
  failure: {mode: %s, timeout: 300ms, breaker_failures: 3, breaker_cooldown: 300ms}
rate_limits:
  - {name: per-ip, facet: ip, rate: 100000/s, burst: 100000}
`+profileRoute+`ration:
  budgets:
    - {name: contact-account, facet: account, class: contact, limit: %d, window: 24h}
`, addr, mode, limit)
}

// contactServed reports whether a profile answer carried an email.
func contactServed(t *testing.T, a answer) bool {
	t.Helper()
	if a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	var p struct{ Email *string }
	if err := json.Unmarshal([]byte(a.body), &p); err != nil {
		t.Fatalf("profile %q: %v", a.body, err)
	}
	return p.Email != nil && *p.Email != ""
}

// awaitContact asks for profile id until its contact is served, failing
// the test at deadline: a gateway's recovery once Redis is back (after).
func awaitContact(t *testing.T, get func(id int) answer, id int, deadline time.Time, after string) {
	t.Helper()
	for {
		a := get(id)
		if a.status == 200 && contactServed(t, a) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery after %s: %d %s", after, a.status, a.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Two gateways share one Redis: a harvester alternating between them gets
// no more than through one, even when its requests are concurrent.
func TestFleetSharesOneBudget(t *testing.T) {
	rs := redistest.Start(t)
	platform := startPlatform(t, 2000)
	const limit = 25
	g1 := startGateway(t, redisConfig(rs.Addr(), "closed", limit), platform)
	g2 := startGateway(t, redisConfig(rs.Addr(), "closed", limit), platform)
	tok := token(t, "42")
	var served atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := clientFrom(fmt.Sprintf("127.0.2.%d", w+1))
			for i := 0; i < 20; i++ {
				id := 100 + w*20 + i // 160 distinct profiles in all
				g := g1
				if i%2 == 1 {
					g = g2
				}
				if contactServed(t, do(t, c, "GET", fmt.Sprintf("%s/v1/users/%d", g.url, id), map[string]string{"Authorization": "Bearer " + tok})) {
					served.Add(1)
				}
			}
		}(w)
	}
	wg.Wait()
	if got := served.Load(); got != limit {
		t.Fatalf("contact details of %d distinct profiles served across two gateways, want exactly %d\ngateway 1:\n%s\ngateway 2:\n%s",
			got, limit, rationMetrics(t, g1), rationMetrics(t, g2))
	}
	// Re-viewing a profile already served is free on either gateway.
	c := clientFrom("127.0.2.50")
	n := 0
	for id := 100; id < 260; id++ {
		if contactServed(t, do(t, c, "GET", fmt.Sprintf("%s/v1/users/%d", g2.url, id), map[string]string{"Authorization": "Bearer " + tok})) {
			n++
		}
	}
	if n != limit {
		t.Fatalf("re-views served %d, want the same %d", n, limit)
	}
}

// rationMetrics is a gateway's request, inspection and budget metrics, to
// say why a budget did not hold.
func rationMetrics(t *testing.T, g *gw) string {
	var b strings.Builder
	for _, l := range strings.Split(adminDo(t, g, "GET", "/metrics", "").body, "\n") {
		for _, p := range []string{"warden_budget_", "warden_inspect_", "warden_requests_total", "warden_refusals_total", "warden_store_"} {
			if strings.HasPrefix(l, p) {
				b.WriteString(l + "\n")
				break
			}
		}
	}
	return b.String()
}

// Redis killed under load: closed mode refuses with 503, open mode serves;
// both recover by themselves when Redis returns.
func TestRedisOutage(t *testing.T) {
	for _, mode := range []string{"closed", "open"} {
		t.Run(mode, func(t *testing.T) {
			rs := redistest.Start(t)
			platform := startPlatform(t, 500)
			g := startGateway(t, redisConfig(rs.Addr(), mode, 1000), platform)
			tok := token(t, "7")
			c := clientFrom("127.0.3.1")
			get := func(id int) answer {
				return do(t, c, "GET", fmt.Sprintf("%s/v1/users/%d", g.url, id), map[string]string{"Authorization": "Bearer " + tok})
			}
			if a := get(1); a.status != 200 {
				t.Fatalf("before outage: %d", a.status)
			}
			if a := adminDo(t, g, "GET", "/readyz", ""); a.status != 200 {
				t.Fatalf("readyz before outage: %d %s", a.status, a.body)
			}
			rs.Kill()
			// Readiness says the store is away, in either mode.
			if a := adminDo(t, g, "GET", "/readyz", ""); a.status != 503 || !strings.Contains(a.body, `"not ready"`) {
				t.Fatalf("readyz with Redis down: %d %s, want 503 not ready", a.status, a.body)
			}
			statuses := map[int]int{}
			for i := 0; i < 20; i++ {
				statuses[get(2+i).status]++
			}
			want := 503
			if mode == "open" {
				want = 200
			}
			if statuses[want] != 20 {
				t.Fatalf("during outage in %s mode: %v, want all %d", mode, statuses, want)
			}
			if mode == "closed" {
				a := get(3)
				// The facet names the stage that failed: admission, so no
				// rate limit counted it (explain leaves it out of seen).
				if r := refusalOf(t, a); r.Rule != "store" || r.Facet != "admit" {
					t.Fatalf("503 body: %+v, want rule store, facet admit", r)
				}
			}
			rs.Restart()
			awaitContact(t, get, 50, time.Now().Add(15*time.Second), "Redis returned")
			if a := adminDo(t, g, "GET", "/readyz", ""); a.status != 200 {
				t.Fatalf("readyz after Redis returned: %d %s", a.status, a.body)
			}
			m := adminDo(t, g, "GET", "/metrics", "")
			if !regexp.MustCompile(`(?m)^warden_store_decision_errors_total\{[^}]*\} [1-9]`).MatchString(m.body) {
				t.Errorf("store failures not counted in metrics:\n%s", grepLines(m.body, "warden_store_decision_errors_total"))
			}
		})
	}
}

// A gateway started while Redis is down starts anyway, serves in its
// failure mode, and rations on Redis once Redis comes up on its address.
func TestRedisDownAtStart(t *testing.T) {
	for _, mode := range []string{"closed", "open"} {
		t.Run(mode, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			port := l.Addr().(*net.TCPAddr).Port
			l.Close()
			platform := startPlatform(t, 500)
			const limit = 3
			// city is reserved for a scope nobody here holds: a rule that
			// needs no store, which must hold while Redis is down.
			cfg := strings.Replace(redisConfig(fmt.Sprintf("127.0.0.1:%d", port), mode, limit),
				"classes: {contact: [email, phone]}", "classes: {contact: [email, phone], location: [city]}", 1) +
				"  scopes:\n    - {class: location, scope: partner}\n"
			g := startGateway(t, cfg, platform)
			tok := token(t, "8")
			c := clientFrom("127.0.3.2")
			get := func(id int) answer {
				return do(t, c, "GET", fmt.Sprintf("%s/v1/users/%d", g.url, id), map[string]string{"Authorization": "Bearer " + tok})
			}
			want := map[string]int{"closed": 503, "open": 200}[mode]
			for i := 0; i < 5; i++ {
				a := get(1 + i)
				if a.status != want {
					t.Fatalf("Redis down since start, %s mode: %d %s, want %d", mode, a.status, a.body, want)
				}
				// Failing open skips the budgets, never the scopes.
				if a.status == 200 && (!strings.Contains(a.body, `"city":null`) || !strings.Contains(a.body, `"rules":["scope-location"]`)) {
					t.Fatalf("Redis down, open mode: the scope-reserved city went out: %s", a.body)
				}
			}
			rs := redistest.StartWith(t, redistest.Options{Port: port})
			// Connected once a decision has written to Redis (in open mode an
			// answer alone cannot tell: it is served either way).
			deadline := time.Now().Add(20 * time.Second)
			for {
				a := get(100)
				if n, err := rs.Do("DBSIZE"); a.status == 200 && err == nil && n != "0" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("nothing decided on Redis 20 s after it came up: %d %s", a.status, a.body)
				}
				time.Sleep(100 * time.Millisecond)
			}
			// A new account's budget is kept on Redis: exactly its limit of
			// profiles are served with contacts.
			tok = token(t, "9")
			served := 0
			for id := 200; id < 210; id++ {
				if contactServed(t, get(id)) {
					served++
				}
			}
			if served != limit {
				t.Fatalf("%d profiles' contacts served after Redis came up, want the budget of %d\n%s", served, limit, rationMetrics(t, g))
			}
		})
	}
}

// With Redis the loop front decides off its event loops: while a hung
// Redis holds the decisions, clients that leave take their exchanges with
// them, a client that waits is refused when the store's timeout passes
// (closed mode), and once Redis answers again the gateway serves on with
// nothing left in flight.
func TestClientsLeaveWhileRedisHangs(t *testing.T) {
	rs := redistest.Start(t)
	platform := startPlatform(t, 500)
	g := startGateway(t, redisConfig(rs.Addr(), "closed", 1000), platform)
	if g.front != "loop" {
		t.Fatalf("front %q, want loop (auto with Redis)", g.front)
	}
	tok := token(t, "7")
	c := clientFrom("127.0.3.1")
	get := func(id int) answer {
		return do(t, c, "GET", fmt.Sprintf("%s/v1/users/%d", g.url, id), map[string]string{"Authorization": "Bearer " + tok})
	}
	if a := get(1); a.status != 200 {
		t.Fatalf("before the hang: %d", a.status)
	}
	rs.Pause()
	for i := range 5 {
		conn, err := net.Dial("tcp", strings.TrimPrefix(g.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET /v1/users/%d HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", 10+i, tok)
		time.Sleep(20 * time.Millisecond)
		conn.Close()
	}
	if a := get(20); a.status != 503 {
		t.Fatalf("while Redis hangs, in closed mode: %d %s", a.status, a.body)
	}
	rs.Resume()
	deadline := time.Now().Add(15 * time.Second)
	awaitContact(t, get, 50, deadline, "Redis resumed")
	for !strings.Contains(adminDo(t, g, "GET", "/metrics", "").body, "\nwarden_requests_in_flight 0\n") {
		if time.Now().After(deadline) {
			t.Fatal("requests stay in flight after their clients left")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
