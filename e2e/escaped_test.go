package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// escapedProfile is a profile as an upstream may write it: every member
// name that the route map names spelt with \u escapes (any JSON client
// reads them as id, email, phone), the rest plain.
func escapedProfile(id int) string {
	return fmt.Sprintf(`{"\u0069d":"%d","username":"u%d","em\u0061il":"u%d@example.org","\u0070\u0068\u006F\u006e\u0065":"+1 555 %04d","full_name":"User %d"}`,
		id, id, id, id, id)
}

func plainProfile(id int) string {
	return fmt.Sprintf(`{"id":"%d","username":"u%d","email":"u%d@example.org","phone":"+1 555 %04d","full_name":"User %d"}`, id, id, id, id, id)
}

// escapedUpstream answers GET /v1/users/{id}: odd ids with escaped names,
// even ids plain.
func escapedUpstream(t *testing.T) string {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.PathValue("id"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		body := plainProfile(id)
		if id%2 == 1 {
			body = escapedProfile(id)
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, body)
	})
	// Followers lists whose ids are escaped (the values, and for 9 the
	// member name too): 100's show 5 and 9, 77's (the test's caller's
	// own) show 15.
	mux.HandleFunc("GET /v1/users/{id}/followers", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.PathValue("id") {
		case "100":
			fmt.Fprint(w, `{"users":[{"id":"\u0035","username":"u5"},{"\u0069d":"\u0039","username":"u9"}]}`)
		case "77":
			fmt.Fprint(w, `{"users":[{"id":"\u0031\u0035","username":"u15"}]}`)
		default:
			fmt.Fprint(w, `{"users":[]}`)
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

// Member names written with escapes are the names they spell: past the
// budget their contact fields come back nulled and noted exactly as plain
// ones, the escaped profiles count against the budget as plain ones do,
// and the ledger records their class, served and masked.
func TestEscapedNamesMasked(t *testing.T) {
	upstream := escapedUpstream(t)
	const limit = 3
	for _, front := range fronts {
		t.Run(front, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ledger")
			g := startGateway(t, contactBudgetConfig(front, limit)+"ledger: {dir: "+dir+"}\n", upstream)
			hdr := http.Header{"Authorization": {"Bearer " + token(t, "77")}}
			c := &http.Client{Transport: &http.Transport{DisableCompression: true}}
			// 10, 12 plain and 11 escaped fill the budget; past it,
			// escaped (13, 15) and plain (14, 16) are masked alike; the
			// re-views 11 and 10 are free.
			ids := []int{10, 11, 12, 13, 14, 15, 11, 10, 16}
			served, masked := map[int]bool{}, map[int]bool{}
			for i, id := range ids {
				got := fetchProfile(t, c, g.url, id, hdr, false)
				var want map[string]any
				if err := json.Unmarshal([]byte(plainProfile(id)), &want); err != nil {
					t.Fatal(err)
				}
				past := i >= limit && id != 10 && id != 11
				if !past {
					if got.header.Get("Warden-Masked") != "" || fmt.Sprint(got.fields) != fmt.Sprint(want) {
						t.Fatalf("answer %d (profile %d): changed within the budget: %v\n%s", i, id, got.header, got.raw)
					}
					served[id] = true
					continue
				}
				masked[id] = true
				if got.header.Get("Warden-Masked") != "1; rules=contact-account" {
					t.Fatalf("answer %d (profile %d): Warden-Masked %q past the budget: %s", i, id, got.header.Get("Warden-Masked"), got.raw)
				}
				note, _ := got.fields["_warden"].(map[string]any)
				if note == nil || fmt.Sprint(note["masked"]) != "[email phone]" || fmt.Sprint(note["rules"]) != "[contact-account]" {
					t.Fatalf("answer %d (profile %d): note %v", i, id, got.fields["_warden"])
				}
				delete(got.fields, "_warden")
				want["email"], want["phone"] = nil, nil
				if fmt.Sprint(got.fields) != fmt.Sprint(want) {
					t.Fatalf("answer %d (profile %d): got %v, want %v", i, id, got.fields, want)
				}
				// The names stay as the upstream wrote them.
				if id%2 == 1 && !strings.Contains(got.raw, `"em\u0061il":null,"\u0070\u0068\u006F\u006e\u0065":null`) {
					t.Fatalf("answer %d (profile %d): names not as sent: %s", i, id, got.raw)
				}
			}
			var tb tookBy
			for try := 0; ; try++ {
				query(t, &tb, "ledger", "took-by", "account", "77", "--ledger", dir)
				if tb.Accesses == len(ids) {
					break
				}
				if try == 100 {
					t.Fatalf("ledger holds %d Accesses, the client was answered %d", tb.Accesses, len(ids))
				}
				time.Sleep(50 * time.Millisecond)
			}
			if tb.Served["contact"] != len(served) || tb.Masked["contact"] != len(masked) {
				t.Errorf("ledger: contact served %d, masked %d; the client was served %d, masked %d", tb.Served["contact"], tb.Masked["contact"], len(served), len(masked))
			}
			var wt whoTook
			query(t, &wt, "ledger", "who-took", "13", "--class", "contact", "--ledger", dir)
			if len(wt.Rows) != 0 {
				t.Errorf("who-took 13 --class contact: %+v; its contact was masked", wt.Rows)
			}
			query(t, &wt, "ledger", "who-took", "11", "--class", "contact", "--ledger", dir)
			if len(wt.Rows) != 1 || wt.Rows[0].Value != "77" {
				t.Errorf("who-took 11 --class contact: %+v, want account 77", wt.Rows)
			}
		})
	}
}

// escapedLinksConfig maps look-ups and followers lists (links: their ids;
// another's list shows them as list, one's own as social), with a budget
// of 1 contact a day of people found in lists and the unreferenced rule
// serving 1 look-up a day of an id never shown.
func escapedLinksConfig(front, dir string) string {
	return `front: ` + front + `
log: {format: text, level: warn}
identity:
  account: {secret_env: LAB_JWT_SECRET}
inspect:
  routes:
    - route: "GET /v1/users/{id}"
      records: ["$"]
      id: id
      classes: {contact: [email, phone]}
      lookup: id
    - route: "GET /v1/users/{id}/followers"
      records: ["$.users[*]"]
      id: id
      classes: {profile: [username]}
      links: ["$.users[*].id"]
      list: id
      provenance: list
      own_provenance: social
ration:
  budgets:
    - {name: contact-list, facet: account, class: contact, provenance: [list], limit: 1, window: 24h}
  unreferenced: {facet: account, limit: 1, window: 24h}
ledger: {dir: ` + dir + `}
`
}

// TestEscapedIDReferenced: an id an upstream's list wrote escaped
// ("\u0035") is the id it spells in the link memory. Through the real
// gateway on every front: account 77 is shown 5 and 9 in another's
// followers list and 15 in its own; its look-ups of them are referenced
// (the ledger's Access says so, and explain), 5 and 9 with provenance list
// (the list budget counts them: 5 served, 9 past it), 15 social (neither
// counted nor unreferenced: served); ids never shown, 7 and 13, are
// unreferenced (7 within that rule's 1, 13 masked by it).
func TestEscapedIDReferenced(t *testing.T) {
	upstream := escapedUpstream(t)
	for _, front := range fronts {
		t.Run(front, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ledger")
			g := startGateway(t, escapedLinksConfig(front, dir), upstream)
			c := clientFrom("127.0.9.3")
			hdr := map[string]string{"Authorization": "Bearer " + token(t, "77")}
			for _, list := range []string{"100", "77"} {
				if a := do(t, c, "GET", g.url+"/v1/users/"+list+"/followers", hdr); a.status != 200 || !strings.Contains(a.body, `\u00`) {
					t.Fatalf("followers of %s: %d %s (the ids as the upstream wrote them)", list, a.status, a.body)
				}
			}
			ids := map[string]string{} // look-up -> request id
			for _, c2 := range []struct {
				id, rule     string // rule: "" served, else the rule that masked
				unreferenced bool
			}{
				{"5", "", false},
				{"9", "contact-list", false},
				{"15", "", false},
				{"7", "", true},
				{"13", "unreferenced", true},
			} {
				a := do(t, c, "GET", g.url+"/v1/users/"+c2.id, hdr)
				served := contactServed(t, a)
				if m := a.header.Get("Warden-Masked"); served != (c2.rule == "") || c2.rule != "" && !strings.Contains(m, "rules="+c2.rule) {
					t.Errorf("look-up of %s: contact served %v, Warden-Masked %q; want masked by %q", c2.id, served, m, c2.rule)
				}
				ids[c2.id] = a.header.Get("X-Request-Id")
				var x struct{ Unreferenced bool }
				for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
					api := adminDo(t, g, "GET", "/v1/ledger/explain?id="+ids[c2.id], "")
					if api.status == http.StatusNotFound && time.Now().Before(deadline) {
						continue
					}
					if err := json.Unmarshal([]byte(api.body), &x); err != nil || api.status != 200 {
						t.Fatalf("explain of the look-up of %s: %d %s", c2.id, api.status, api.body)
					}
					break
				}
				if x.Unreferenced != c2.unreferenced {
					t.Errorf("look-up of %s: the ledger's unreferenced %v, want %v", c2.id, x.Unreferenced, c2.unreferenced)
				}
			}
		})
	}
}
