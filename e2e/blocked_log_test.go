package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// An account past a blocking budget that keeps asking is told 429 on each
// answer, and the log has the "refused" line README promises for every
// refusal (request_id, status, rule, facet, method, path) within the
// bound of 100 lines a second, the next line carrying how many were left
// out: a harvester retrying a budget's refusals at once must not write a
// log line per request, as a rate limit's refusals do not. Real warden in
// front of the real lab platform, on the loop front (the default).
func TestBudgetBlockLinesBounded(t *testing.T) {
	platform := startPlatform(t, 2000)
	cfg := `log: {format: json, level: info}
identity:
  account: {secret_env: LAB_JWT_SECRET}
inspect:
  routes:
    - route: "GET /v1/users/{id}"
      records: ["$"]
      id: id
      classes: {contact: [email, phone]}
      lookup: id
ration:
  budgets:
    - {name: contact-block, facet: account, class: contact, limit: 1, window: 24h, action: block}
`
	g := startGateway(t, cfg, platform)
	c := clientFrom("127.0.21.1")
	auth := map[string]string{"Authorization": "Bearer " + token(t, "88")}
	const n = 400
	blocked := 0
	seconds := map[int64]bool{}
	for i := range n {
		seconds[time.Now().Unix()] = true
		a := do(t, c, "GET", fmt.Sprintf("%s/v1/users/%d", g.url, 2+i), auth)
		switch {
		case a.status == 429 && strings.Contains(a.body, `"rule":"contact-block"`):
			blocked++
		case a.status != 200:
			t.Fatalf("request %d: %d %s", i, a.status, a.body)
		}
	}
	// One more once the second has turned: its line carries what the
	// flood's last second left out.
	for s := time.Now().Unix(); time.Now().Unix() == s; {
		time.Sleep(10 * time.Millisecond)
	}
	if a := do(t, c, "GET", g.url+"/v1/users/1500", auth); a.status != 429 {
		t.Fatalf("the request after the flood: %d %s", a.status, a.body)
	}
	blocked++
	if blocked < n-5 {
		t.Fatalf("%d of %d blocked, want all but the budget's first", blocked, n+1)
	}
	var lines, suppressed int
	deadline := time.Now().Add(5 * time.Second)
	for {
		lines, suppressed = 0, 0
		for _, l := range strings.Split(g.p.Output(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) != nil || m["rule"] != "contact-block" {
				continue
			}
			if m["msg"] != "refused" || m["method"] != "GET" || !strings.HasPrefix(fmt.Sprint(m["path"]), "/v1/users/") || m["status"] != float64(429) {
				t.Fatalf("a budget's refusal logged as %s, want a \"refused\" line with its method and path", l)
			}
			lines++
			if s, ok := m["suppressed"].(float64); ok {
				suppressed += int(s)
			}
		}
		if lines+suppressed >= blocked || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // the log writer is asynchronous
	}
	if most := 100*len(seconds) + 1; lines > most {
		t.Errorf("%d lines for %d refusals over %d seconds, want at most %d", lines, blocked, len(seconds), most)
	}
	if lines+suppressed != blocked {
		t.Errorf("%d lines + %d suppressed, want the %d refusals", lines, suppressed, blocked)
	}
}
