package e2e

import (
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/admin"
	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/dashboard"
	"github.com/warden-gw/warden/internal/refusal"
	"github.com/warden-gw/warden/internal/store/memory"
)

// The transparency page's "harvesting stopped", from the ledger a real
// gateway wrote in front of the lab platform: the next day (when the page
// is first asked for it), after the detector's bans are gone from the ban
// store, it counts the distinct identities the clients saw refused by a
// ban or the blocking budget, and no other refusal (a rate limit, an
// unverified credential).
func TestTransparencyStoppedFromGatewayLedger(t *testing.T) {
	dir := t.TempDir()
	cfg := strings.Replace(dashConfig(dir), "action: mask", "action: block", 1)
	up := startPlatform(t, 2000)
	g := startGateway(t, cfg, up)
	c := clientFrom("127.0.0.1")
	stopped := map[string]bool{} // facet=value, from the refusals the clients got
	other := 0
	get := func(path, account string) answer {
		hdr := map[string]string{"Authorization": "Bearer " + token(t, account)}
		if account == "" {
			hdr["Authorization"] = "Bearer not-a-token"
		}
		a := do(t, c, "GET", g.url+path, hdr)
		if a.status < 400 {
			return a
		}
		r := refusalOf(t, a)
		switch r.Rule {
		case refusal.RuleBan, "contact-account":
			if r.Facet != "account" {
				t.Fatalf("%s refused on facet %q", path, r.Facet)
			}
			stopped[r.Facet+"="+account] = true
		default:
			other++
		}
		return a
	}
	// Readers within their budget of 6.
	for u := range 4 {
		for i := range 3 {
			get(fmt.Sprintf("/v1/users/%d", 10+7*u+i), fmt.Sprint(100+u))
		}
	}
	// Readers past their budget, too slow for the detector: blocked.
	for u := range 3 {
		for i := range 8 {
			get(fmt.Sprintf("/v1/users/%d", 600+10*u+i), fmt.Sprint(800+u))
		}
	}
	// Harvesters opening everyone on a follower list: banned by the
	// detector's fan-out rule, then refused.
	for h := range 2 {
		var list struct {
			Users []struct {
				ID json.Number `json:"id"`
			} `json:"users"`
		}
		a := get(fmt.Sprintf("/v1/users/%d/followers", 40+h), fmt.Sprint(900+h))
		if err := json.Unmarshal([]byte(a.body), &list); err != nil || len(list.Users) < 8 {
			t.Fatalf("followers of %d: %d %v", 40+h, a.status, err)
		}
		for _, u := range list.Users[:8] {
			get("/v1/users/"+u.ID.String(), fmt.Sprint(900+h))
		}
	}
	// A rate limit, and a credential that does not verify: not counted.
	for range 4 {
		get("/v1/users/30/following", "700")
	}
	get("/v1/users/31", "")
	if other < 3 || len(stopped) != 5 {
		t.Fatalf("the clients saw %d identities refused for harvesting (%v), %d other refusals; want 5 and at least 3", len(stopped), stopped, other)
	}
	// The bans are gone by the next day (the detector's first lasts 10
	// minutes): lifted here. A harvester the budget blocked before the
	// detector saw its fan-out has no ban (404): it was stopped all the
	// same, by the budget's refusals.
	for h := range 2 {
		if a := adminDo(t, g, "DELETE", fmt.Sprintf("/v1/bans/account/%d", 900+h), ""); a.status >= 300 && a.status != 404 {
			t.Fatalf("lifting the ban of %d: %d %s", 900+h, a.status, a.body)
		}
	}
	g.p.Stop() // its ledger closed

	// The next day, the gateway's page on that ledger (a huge epsilon,
	// with a budget to pay for it: the exact count shows).
	conf, err := config.Load(g.config)
	if err != nil {
		t.Fatal(err)
	}
	conf.Ledger.Privacy.Researchers = map[string]string{dashboard.TransparencyResearcher: "1000000"}
	tomorrow := time.Now().UTC().AddDate(0, 0, 1)
	d, err := dashboard.New(dashboard.Options{Token: adminToken, Gatherer: prometheus.NewRegistry(), LedgerDir: dir,
		Config: func() *config.Config { return conf }, Now: func() time.Time { return tomorrow }, TransparencyEpsilon: big.NewRat(1000, 1)})
	if err != nil {
		t.Fatal(err)
	}
	// Its admin API, with a ban store of its own: the bans are gone.
	bans := memory.New(memory.Options{})
	defer bans.Close()
	a, err := admin.New(admin.Options{Token: adminToken, Gatherer: prometheus.NewRegistry(), Bans: bans, Dashboard: d})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	a.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/transparency", nil))
	m := regexp.MustCompile(`<p id="stopped"><b>(-?\d+)</b> ` + dashboard.StoppedName).FindStringSubmatch(w.Body.String())
	if w.Code != http.StatusOK || m == nil {
		t.Fatalf("transparency: %d\n%s", w.Code, w.Body.String())
	}
	if m[1] != fmt.Sprint(len(stopped)) {
		t.Errorf("the page counts %s identities refused for harvesting, the clients saw %d: %v", m[1], len(stopped), stopped)
	}
}
