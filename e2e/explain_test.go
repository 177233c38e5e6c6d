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
)

// A served, a masked and a refused request and the platform's own 404,
// explained by warden explain, the admin API and the dashboard's page: the
// command and the API answer the same JSON, and the page shows its
// decision and budget. The 404 is the upstream's answer, passed on: not a
// refusal.
func TestExplainSameInCommandAPIAndPage(t *testing.T) {
	g := startLab(t).g
	ids := map[string]string{} // decision -> request id
	c, auth := clientFrom("127.0.6.1"), map[string]string{"Authorization": "Bearer " + token(t, "41")}
	for i := range 8 { // contact details of 8 profiles on a budget of 6
		a := do(t, c, "GET", fmt.Sprintf("%s/v1/users/%d", g.url, 50+i), auth)
		switch i {
		case 0:
			ids["served"] = a.header.Get("X-Request-Id")
		case 7:
			ids["masked"] = a.header.Get("X-Request-Id")
		}
	}
	for i := range 3 { // following-burst: 2, then refused
		if a := do(t, c, "GET", fmt.Sprintf("%s/v1/users/%d/following", g.url, 50+i), auth); a.status == http.StatusTooManyRequests {
			ids["refused"] = a.header.Get("X-Request-Id")
		}
	}
	// The platform has no user 0: its 404 goes out as it came.
	if a := do(t, c, "GET", g.url+"/v1/users/0", auth); a.status != http.StatusNotFound || strings.Contains(a.body, `"rule"`) {
		t.Fatalf("user 0: %d %s", a.status, a.body)
	} else {
		ids["upstream_error"] = a.header.Get("X-Request-Id")
	}
	if len(ids) != 4 || ids["served"] == "" || ids["masked"] == "" || ids["upstream_error"] == "" {
		t.Fatalf("request ids %v", ids)
	}

	op := clientFrom("127.0.6.2")
	op.Jar, _ = cookiejar.New(nil)
	if r, err := op.PostForm(g.admin+"/login", url.Values{"token": {adminToken}, "csrf": {csrfOf(t, op, g, "/login")}}); err != nil {
		t.Fatal(err)
	} else {
		r.Body.Close()
	}
	for decision, id := range ids {
		// The ledger's writer hands over within a second; the API is polled
		// until it holds the request (30 s: a hang, not a pace).
		var api answer
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if api = adminDo(t, g, "GET", "/v1/ledger/explain?id="+id, ""); api.status != http.StatusNotFound || time.Now().After(deadline) {
				break
			}
		}
		var fromAPI, fromCLI any
		if err := json.Unmarshal([]byte(api.body), &fromAPI); err != nil || api.status != 200 {
			t.Fatalf("%s: admin explain: %d %s", decision, api.status, api.body)
		}
		query(t, &fromCLI, "explain", id, "--config", g.config)
		if !reflect.DeepEqual(fromAPI, fromCLI) {
			t.Errorf("%s: the admin API and warden explain differ:\n%s\n%v", decision, api.body, fromCLI)
		}
		var x struct {
			Decision, Rule string
			Status         int
			Budgets        []struct {
				Name, Value string
				Seen, Limit int
				Applied     bool
			}
			RateLimits []struct {
				Name, Window string
				Seen, Admits int
				Applied      bool
			} `json:"rate_limits"`
		}
		json.Unmarshal([]byte(api.body), &x)
		// following-burst (1/h, burst 2, the following route only) had seen
		// the two following look-ups before the third, which it refused; the
		// users look-ups are not its route's.
		burst := -1
		for _, r := range x.RateLimits {
			if r.Name == "following-burst" {
				burst = r.Seen
				if r.Window != "2h0m0s" || r.Admits != 4 || r.Applied != (decision == "refused") {
					t.Errorf("%s: following-burst's row %+v", decision, r)
				}
			}
		}
		if decision == "refused" && burst != 2 || decision != "refused" && burst != -1 {
			t.Errorf("%s: following-burst seen %d (-1: no row): %s", decision, burst, api.body)
		}
		// Before the first look-up the budget had counted nothing; before the
		// eighth, the refusal and the 404, the 6 profiles served unmasked.
		seen := map[string]int{"served": 0, "masked": 6, "refused": 6, "upstream_error": 6}[decision]
		wantStatus, wantRule := map[string]int{"served": 200, "masked": 200, "refused": 429, "upstream_error": 404}[decision], ""
		if decision == "refused" {
			wantRule = "following-burst"
		}
		if x.Decision != decision || x.Status != wantStatus || x.Rule != wantRule || len(x.Budgets) != 1 || x.Budgets[0].Name != "contact-account" || x.Budgets[0].Value != "41" ||
			x.Budgets[0].Seen != seen || x.Budgets[0].Limit != 6 || x.Budgets[0].Applied != (decision == "masked") {
			t.Errorf("%s: %s", decision, api.body)
			continue
		}
		page := do(t, op, "GET", g.admin+"/explain?id="+id, nil)
		b := x.Budgets[0]
		for _, want := range []string{"<b>" + decision + "</b>", "<td>contact-account</td>", fmt.Sprintf("<td>%d / %d</td>", b.Seen, b.Limit)} {
			if page.status != 200 || !strings.Contains(page.body, want) {
				t.Errorf("%s: the page has no %q (%d):\n%s", decision, want, page.status, page.body)
			}
		}
	}
}
