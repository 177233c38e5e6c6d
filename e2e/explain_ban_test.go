package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/store/redis/redistest"
)

// A request refused by the detector's ban is explained with the ban's
// reason (the detector's evidence) and whether it still holds: held, then,
// once warden ban rm (the admin API's DELETE) removed it, lifted (the memory
// store's ban log in its state directory keeps it), or unknown (Redis keeps
// only the bans held: the reason is gone with it). warden explain, the admin
// API and the dashboard's page say the same.
func TestExplainBanReason(t *testing.T) {
	platform := startPlatform(t, 2000)
	for _, backend := range []string{"memory", "redis"} {
		t.Run(backend, func(t *testing.T) { explainBanReason(t, backend, platform) })
	}
}

func explainBanReason(t *testing.T, backend, platform string) {
	st := fmt.Sprintf("store:\n  memory: {dir: %s}\n", t.TempDir())
	var rs *redistest.Server
	if backend == "redis" {
		rs = redistest.Start(t)
		st = fmt.Sprintf("store:\n  backend: redis\n  redis: {addrs: [%s]}\n", rs.Addr())
	}
	g := startGateway(t, detectConfig(st+fmt.Sprintf("ledger: {dir: %s}\n", t.TempDir())), platform)
	harv := map[string]string{"Authorization": "Bearer " + token(t, "779")}
	c := clientFrom("127.0.8.3")
	refused := ""
	for i := 0; i < 2000 && refused == ""; i++ {
		if a := do(t, c, "GET", fmt.Sprintf("%s/v1/users/%d", g.url, 1+i), harv); a.status == http.StatusForbidden {
			refused = a.header.Get("X-Request-Id")
		}
	}
	if refused == "" {
		t.Fatal("a machine-speed harvester was never banned")
	}
	const reason = "detector contact-velocity (velocity): contact of 21 distinct people within 10s (limit 20); offence 1, banned 10m0s"
	op := clientFrom("127.0.8.4")
	op.Jar, _ = cookiejar.New(nil)
	if r, err := op.PostForm(g.admin+"/login", url.Values{"token": {adminToken}, "csrf": {csrfOf(t, op, g, "/login")}}); err != nil {
		t.Fatal(err)
	} else {
		r.Body.Close()
	}
	check := func(state, page, reason string) {
		t.Helper()
		var api answer
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if api = adminDo(t, g, "GET", "/v1/ledger/explain?id="+refused, ""); api.status != http.StatusNotFound || time.Now().After(deadline) {
				break
			}
		}
		var fromAPI, fromCLI any
		if err := json.Unmarshal([]byte(api.body), &fromAPI); err != nil || api.status != 200 {
			t.Fatalf("admin explain: %d %s", api.status, api.body)
		}
		query(t, &fromCLI, "explain", refused, "--config", g.config)
		if !reflect.DeepEqual(fromAPI, fromCLI) {
			t.Errorf("the admin API and warden explain differ:\n%s\n%v", api.body, fromCLI)
		}
		var x struct {
			Rule, Facet string
			Ban         *struct {
				Facet, Value, State, Reason, By string
				Created, Until                  *time.Time
			}
		}
		json.Unmarshal([]byte(api.body), &x)
		if b := x.Ban; x.Rule != "ban" || b == nil || b.Facet != "account" || b.Value != "779" || b.State != state || b.Reason != reason ||
			reason != "" && (b.Created == nil || b.Until == nil || b.Until.Sub(*b.Created) != 10*time.Minute) {
			t.Errorf("%s: %s", state, api.body)
		}
		if p := do(t, op, "GET", g.admin+"/explain?id="+refused, nil); p.status != 200 || !strings.Contains(p.body, page) || !strings.Contains(p.body, reason) {
			t.Errorf("%s: the page has no %q (%d):\n%s", state, page, p.status, p.body)
		}
	}
	check("held", "still held", reason)
	if a := adminDo(t, g, "DELETE", "/v1/bans/account/779", ""); a.status/100 != 2 {
		t.Fatalf("ban rm: %d %s", a.status, a.body)
	}
	if backend == "redis" {
		check("unknown", "its reason is not known", "")
		// Redis down: the explanation stands, from the ledger, and says
		// the ban store could not be read (before, explain failed whole).
		rs.Kill()
		var x struct {
			Rule string
			Ban  *struct{ State, Unavailable string }
		}
		query(t, &x, "explain", refused, "--config", g.config)
		if x.Rule != "ban" || x.Ban == nil || x.Ban.State != "unknown" || x.Ban.Unavailable == "" {
			t.Errorf("explain with Redis down: %+v (ban %+v)", x, x.Ban)
		}
	} else {
		check("lifted", "lifted since", reason)
	}
}
