package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/canary"
)

// TestCanaryRequestsRecorded: a canary look-up that warden refuses (the
// account's contact budget spent, action block: 429) is recorded, so its
// request id leads to warden explain with its rule, as every refusal's
// does; and the canary traffic recorded names no canary in the ledger:
// who-took of real and canary ids, took-by's served, masked, subjects and
// lists, and reach of real and canary authors are what the real traffic
// alone made them (took-by's accesses count every request, the canary
// ones too).
func TestCanaryRequestsRecorded(t *testing.T) {
	up := startPlatform(t, 2000)
	dir := t.TempDir()
	g := startGateway(t, canaryMaskConfig("loop", dir, 3, "block"), up)
	c, err := canary.NewWithKeys(canary.Config{KeyEnv: "X"}, canaryKey)
	if err != nil {
		t.Fatal(err)
	}
	cl := clientFrom("127.0.0.1")
	const acct = "21"
	auth := map[string]string{"Authorization": accountToken(t, 21)}
	requests := 0
	get := func(path string, want int) answer {
		t.Helper()
		a := do(t, cl, "GET", g.url+path, auth)
		if a.status != want {
			t.Fatalf("%s: %d, want %d: %s", path, a.status, want, a.body)
		}
		requests++
		return a
	}
	// Real traffic: followers lists, posts, and 3 profiles, which spend
	// the contact budget (3).
	for id := 1; id <= 20; id++ {
		get(fmt.Sprintf("/v1/users/%d/followers?limit=50", id), 200)
	}
	for id := 1; id <= 5; id++ {
		get(fmt.Sprintf("/v1/users/%d/posts?limit=50", id), 200)
	}
	for id := 1; id <= 3; id++ {
		get(fmt.Sprintf("/v1/users/%d", id), 200)
	}
	await := func(n int) tookBy {
		t.Helper()
		var tb tookBy
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if query(t, &tb, "ledger", "took-by", "account", acct, "--ledger", dir); tb.Accesses == n {
				return tb
			}
			if time.Now().After(deadline) {
				t.Fatalf("took-by %s: %d accesses, want %d", acct, tb.Accesses, n)
			}
		}
	}
	var can canary.Profile
	for j := uint32(1); ; j++ {
		if can = c.Canary(0, j); can.Followers > 0 && can.Posts > 0 {
			break
		}
	}
	canID := fmt.Sprint(can.ID)
	subjects := []string{"1", "2", "3", canID}
	type view struct {
		TookBy tookBy
		Who    map[string]whoTook
		Reach  map[string]any
	}
	look := func(tb tookBy) view {
		t.Helper()
		v := view{TookBy: tb, Who: map[string]whoTook{}}
		v.TookBy.Accesses, v.TookBy.First, v.TookBy.Last = 0, nil, nil // they count requests: compared apart
		for _, s := range subjects {
			var w whoTook
			query(t, &w, "ledger", "who-took", s, "--ledger", dir)
			v.Who[s] = w
		}
		query(t, &v.Reach, "reach", "--authors", "1,2,3,4,5,"+canID, "--ledger", dir)
		return v
	}
	before := look(await(requests))
	if len(before.Who["1"].Rows) != 1 || before.TookBy.Lists == 0 {
		t.Fatalf("the real traffic's ledger: %+v", before)
	}

	// Canary traffic: its profile (refused by the spent budget, by id
	// and by username), its followers and its posts (no contact class:
	// served).
	var refused []answer
	refused = append(refused, get("/v1/users/"+canID, http.StatusTooManyRequests), get("/v1/users/by-username/"+can.Username, http.StatusTooManyRequests))
	get("/v1/users/"+canID+"/followers?limit=50", 200)
	get("/v1/users/"+canID+"/posts?limit=50", 200)
	tb := await(requests)
	if after := look(tb); fmt.Sprintf("%+v", after) != fmt.Sprintf("%+v", before) {
		t.Fatalf("canary traffic changed the ledger's answers:\nbefore %+v\nafter  %+v", before, after)
	}

	for _, a := range refused {
		var body struct {
			Rule, Facet string
			RequestID   string `json:"request_id"`
		}
		if err := json.Unmarshal([]byte(a.body), &body); err != nil || body.Rule == "" || body.RequestID != a.header.Get("X-Request-Id") {
			t.Fatalf("refusal body %s (%v)", a.body, err)
		}
		code, out, errOut := runWarden(t, "", nil, "explain", body.RequestID, "--config", g.config, "--json")
		if code != 0 {
			t.Fatalf("warden explain %s: exit %d: %s%s", body.RequestID, code, out, errOut)
		}
		var x struct {
			Route, Decision, Rule, Facet string
			Status                       int
			Records                      int
			Identity                     map[string]string
			Budgets                      []struct {
				Name        string
				Seen, Limit int
				Applied     bool
			}
		}
		if err := json.Unmarshal([]byte(out), &x); err != nil {
			t.Fatalf("warden explain: %v: %s", err, out)
		}
		if x.Status != 429 || x.Decision != "refused" || x.Rule != body.Rule || x.Facet != body.Facet || x.Records != 0 || x.Identity["account"] != acct ||
			len(x.Budgets) != 1 || x.Budgets[0].Seen != 3 || x.Budgets[0].Limit != 3 || !x.Budgets[0].Applied {
			t.Fatalf("warden explain %s: %s", body.RequestID, out)
		}
	}
}

// TestCanaryMaskedExplained: a canary profile masked past the account's
// contact budget (its contact null, Warden-Masked set) is explained as
// masked, as a real profile masked by the same budget is, with the budget
// applied. Its Access names no record (a canary is never a real subject),
// so explain, which judged "masked" by the records alone, said "served"
// of an answer the client got masked.
func TestCanaryMaskedExplained(t *testing.T) {
	up := startPlatform(t, 2000)
	g := startGateway(t, canaryMaskConfig("loop", t.TempDir(), 2, "mask"), up)
	c, err := canary.NewWithKeys(canary.Config{KeyEnv: "X"}, canaryKey)
	if err != nil {
		t.Fatal(err)
	}
	cl := clientFrom("127.0.0.1")
	auth := map[string]string{"Authorization": accountToken(t, 23)}
	for id := 1; id <= 2; id++ { // the budget's 2 contacts
		if a := do(t, cl, "GET", fmt.Sprintf("%s/v1/users/%d", g.url, id), auth); a.status != 200 || a.header.Get("Warden-Masked") != "" {
			t.Fatalf("profile %d within the budget: %d %v %s", id, a.status, a.header, a.body)
		}
	}
	real := do(t, cl, "GET", g.url+"/v1/users/3", auth)
	can := do(t, cl, "GET", fmt.Sprint(g.url, "/v1/users/", c.Canary(0, 1).ID), auth)
	for name, a := range map[string]answer{"real": real, "canary": can} {
		if a.status != 200 || a.header.Get("Warden-Masked") == "" {
			t.Fatalf("%s profile past the budget: %d %v %s, want masked", name, a.status, a.header, a.body)
		}
		x, raw := explainFound(t, g, a.header.Get("X-Request-Id"))
		var rows struct {
			Budgets []struct {
				Name    string `json:"name"`
				Applied bool   `json:"applied"`
			} `json:"budgets"`
		}
		_ = json.Unmarshal(raw, &rows)
		applied := false
		for _, b := range rows.Budgets {
			applied = applied || b.Applied
		}
		if x.Decision != "masked" || x.Status != 200 || !applied {
			t.Errorf("explain of the %s profile masked past the budget: %s\nwant decision masked, the budget applied", name, raw)
		}
	}
}
