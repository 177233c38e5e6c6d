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

	"github.com/warden-gw/warden/internal/lab/platform"
)

// A budget with account_age tiers (6 a day, 2 under a day old): a young
// account's third contact is masked by the tier's limit, and warden
// explain, the admin API and the dashboard's page show the limit that
// held (2, the tier under 24h), not the budget's 6; an aged account's
// look-up shows no tier applied.
func TestExplainShowsAgeTier(t *testing.T) {
	dir := t.TempDir()
	cfg := strings.Replace(ledgerConfig(dir, 6), "window: 24h, action: mask}",
		"window: 24h, action: mask, account_age: [{younger_than: 24h, limit: 2}, {younger_than: 720h, limit: 4}]}", 1)
	g := startGateway(t, cfg, startPlatform(t, 2000))
	young, err := platform.MintToken("lab-secret", "51", time.Now().Add(-time.Hour), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	c := clientFrom("127.0.6.11")
	var masked, served string
	for i := range 3 {
		a := do(t, c, "GET", fmt.Sprintf("%s/v1/users/%d", g.url, 60+i), map[string]string{"Authorization": "Bearer " + young})
		if i == 2 {
			if !strings.Contains(a.body, `"email":null`) {
				t.Fatalf("the young account's third contact was not masked: %s", a.body)
			}
			masked = a.header.Get("X-Request-Id")
		}
	}
	a := do(t, c, "GET", g.url+"/v1/users/70", map[string]string{"Authorization": "Bearer " + token(t, "52")})
	served = a.header.Get("X-Request-Id")

	op := clientFrom("127.0.6.12")
	op.Jar, _ = cookiejar.New(nil)
	if r, err := op.PostForm(g.admin+"/login", url.Values{"token": {adminToken}, "csrf": {csrfOf(t, op, g, "/login")}}); err != nil {
		t.Fatal(err)
	} else {
		r.Body.Close()
	}
	for _, tt := range []struct {
		id          string
		seen, limit int
		youngerThan string
		applied     bool
		page        string
	}{
		{masked, 2, 2, "24h0m0s", true, "<td>2 / 2 (account younger than 24h0m0s; 6 past it)</td>"},
		{served, 0, 6, "", false, "<td>0 / 6 (age tiers; none applied)</td>"},
	} {
		var api answer
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if api = adminDo(t, g, "GET", "/v1/ledger/explain?id="+tt.id, ""); api.status != http.StatusNotFound || time.Now().After(deadline) {
				break
			}
		}
		var fromAPI, fromCLI any
		if err := json.Unmarshal([]byte(api.body), &fromAPI); err != nil || api.status != 200 {
			t.Fatalf("admin explain %s: %d %s", tt.id, api.status, api.body)
		}
		query(t, &fromCLI, "explain", tt.id, "--config", g.config)
		if !reflect.DeepEqual(fromAPI, fromCLI) {
			t.Errorf("%s: the admin API and warden explain differ:\n%s\n%v", tt.id, api.body, fromCLI)
		}
		var x struct {
			Budgets []struct {
				Name         string
				Seen, Limit  int
				LimitApplied int    `json:"limit_applied"`
				YoungerThan  string `json:"younger_than"`
				TierUnknown  bool   `json:"tier_unknown"`
				Applied      bool
			}
		}
		json.Unmarshal([]byte(api.body), &x)
		if len(x.Budgets) != 1 {
			t.Fatalf("%s: %s", tt.id, api.body)
		}
		b := x.Budgets[0]
		if b.Seen != tt.seen || b.Limit != 6 || b.LimitApplied != tt.limit || b.YoungerThan != tt.youngerThan || b.TierUnknown || b.Applied != tt.applied {
			t.Errorf("%s: budget row %+v, want seen %d, limit applied %d (tier %q), applied %v", tt.id, b, tt.seen, tt.limit, tt.youngerThan, tt.applied)
		}
		if page := do(t, op, "GET", g.admin+"/explain?id="+tt.id, nil); page.status != 200 || !strings.Contains(page.body, tt.page) {
			t.Errorf("%s: the page has no %q (%d):\n%s", tt.id, tt.page, page.status, page.body)
		}
	}
}
