package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/warden-gw/warden/internal/canary"
)

// canaryConfig is ledgerConfig with canaries on (key from the harness's
// WARDEN_CANARY_KEY) and no budgets in the way.
func canaryConfig(dir string) string {
	return ledgerConfig(dir, 1_000_000) + `canary:
  key_env: WARDEN_CANARY_KEY
`
}

// canaryLab starts a 2,000-profile lab platform and a gateway serving
// config(dir) in front of it; c is the harness key's Canaries (to verify
// what comes back), cl a client from 127.0.0.1.
func canaryLab(t *testing.T, config func(dir string) string) (up string, g *gw, c *canary.Canaries, cl *http.Client) {
	t.Helper()
	up = startPlatform(t, 2000)
	g = startGateway(t, config(t.TempDir()), up)
	c, err := canary.NewWithKeys(canary.Config{KeyEnv: "X"}, canaryKey)
	if err != nil {
		t.Fatal(err)
	}
	return up, g, c, clientFrom("127.0.0.1")
}

func accountToken(t *testing.T, acct int) string {
	return "Bearer " + labToken(t, jwt.MapClaims{"sub": fmt.Sprint(acct), "created": time.Now().Add(-400 * 24 * time.Hour).Unix(), "iat": time.Now().Unix()})
}

type labUser struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	FullName string `json:"full_name"`
	// FollowerCount is a summary's follower_count (a take's count column).
	FollowerCount int `json:"follower_count"`
	// Of is the id whose followers list it was taken from (harvest), for
	// a take's follows table.
	Of string `json:"-"`
}

// TestCanariesServed: followers pages through the real gateway carry
// canaries (about 1% of the records of pages with room below their limit, verified by the key, the same on a
// re-read); a canary's profile, by-username, followers and posts are
// answered, and the same for a second account as for the first.
func TestCanariesServed(t *testing.T) {
	_, g, c, cl := canaryLab(t, canaryConfig)
	tokA, tokB := accountToken(t, 11), accountToken(t, 12)
	page := func(tok, list string) []labUser {
		a := do(t, cl, "GET", g.url+"/v1/users/"+list+"/followers?limit=50", map[string]string{"Authorization": tok})
		if a.status != 200 {
			t.Fatalf("followers %s: %d %s", list, a.status, a.body)
		}
		var pg struct{ Users []labUser }
		if err := json.Unmarshal([]byte(a.body), &pg); err != nil {
			t.Fatal(err)
		}
		return pg.Users
	}
	records, found := 0, map[string]labUser{}
	for id := 1; id <= 400; id++ {
		us := page(tokA, fmt.Sprint(id))
		for _, u := range us {
			records++
			if _, ok := c.Verify(u.ID, u.Username, "", ""); ok {
				found[u.ID] = u
			}
		}
	}
	if d := float64(len(found)) / float64(records); len(found) == 0 || d > 0.02 {
		t.Fatalf("%d canaries in %d records", len(found), records)
	}
	t.Logf("%d canaries in %d records (%.2f%%)", len(found), records, 100*float64(len(found))/float64(records))
	for id := 1; id <= 40; id++ { // a re-read changes nothing
		a, b := page(tokA, fmt.Sprint(id)), page(tokA, fmt.Sprint(id))
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("list %d changed on a re-read", id)
		}
	}
	n := 0
	for id, u := range found {
		if n++; n > 5 {
			break
		}
		for _, path := range []string{"/v1/users/" + id, "/v1/users/by-username/" + u.Username, "/v1/users/" + id + "/followers?limit=3", "/v1/users/" + id + "/posts?limit=2"} { // following: the config's burst limit applies to canaries as to anyone
			a := do(t, cl, "GET", g.url+path, map[string]string{"Authorization": tokA})
			b := do(t, cl, "GET", g.url+path, map[string]string{"Authorization": tokB})
			if a.status != 200 || a.body != b.body || !json.Valid([]byte(a.body)) {
				t.Fatalf("%s: %d %q, second account %d %q", path, a.status, a.body, b.status, b.body)
			}
			if strings.Contains(path, "followers") && !strings.Contains(a.body, `"users":[`) {
				t.Fatalf("%s: %s", path, a.body)
			}
		}
		// Without an account a canary is refused as a real profile is
		// (the platform's 401): warden answering it would tell it apart.
		// A username in capitals is looked up as the platform does.
		real := do(t, cl, "GET", g.url+"/v1/users/5", nil)
		for _, path := range []string{"/v1/users/" + id, "/v1/users/by-username/" + u.Username, "/v1/users/" + id + "/followers?limit=3", "/v1/search?q=" + u.Username} {
			if a := do(t, cl, "GET", g.url+path, nil); a.status != real.status || a.body != real.body || real.status != 401 {
				t.Fatalf("%s without an account: %d %q; a real profile's: %d %q", path, a.status, a.body, real.status, real.body)
			}
		}
		lower := do(t, cl, "GET", g.url+"/v1/users/by-username/"+u.Username, map[string]string{"Authorization": tokA})
		if upper := do(t, cl, "GET", g.url+"/v1/users/by-username/"+strings.ToUpper(u.Username), map[string]string{"Authorization": tokA}); upper.status != 200 || upper.body != lower.body {
			t.Fatalf("by-username %s: %d %q", strings.ToUpper(u.Username), upper.status, upper.body)
		}
		var prof struct{ Email, Phone, Username string }
		_ = json.Unmarshal([]byte(do(t, cl, "GET", g.url+"/v1/users/"+id, map[string]string{"Authorization": tokB}).body), &prof)
		if _, ok := c.Verify(id, prof.Username, prof.Email, prof.Phone); !ok || prof.Email == "" || prof.Phone == "" {
			t.Fatalf("canary %s's profile does not verify: %+v", id, prof)
		}
	}
}

// searchConfig is canaryConfig with the search route inspected (its
// answers recorded and seeded) and no rate limit in the way.
func searchConfig(dir string) string {
	cfg := strings.Replace(canaryConfig(dir), "inspect:\n  routes:\n", `inspect:
  routes:
    - route: "GET /v1/search"
      records: ["$.users[*]"]
      id: id
      classes: {profile: [username, full_name]}
      links: ["$.users[*].id"]
      cursor: cursor
`, 1)
	return strings.Replace(cfg, "  - {name: following-burst, facet: account, rate: 1/h, burst: 2, routes: [\"GET /v1/users/{id}/following\"]}\n", "  - {name: roomy, facet: account, rate: 100000/s, burst: 100000}\n", 1)
}

// searchQueries are two-letter queries: every first and last name of the
// lab starts with one of them, and many match nothing.
func searchQueries() []string {
	var qs []string
	for _, a := range "abcdefghijklmnoprstvwyz" {
		for _, b := range "aeiouhlnr" {
			qs = append(qs, string(a)+string(b))
		}
	}
	return qs
}

// searchAll pages through the answers to each query with one account and
// returns every record served, with the query it answered.
func searchAll(t *testing.T, cl *http.Client, base, tok string, qs []string) (out []labUser, query []string) {
	t.Helper()
	for _, q := range qs {
		cursor := ""
		for range 1000 {
			u := base + "/v1/search?limit=50&q=" + url.QueryEscape(q)
			if cursor != "" {
				u += "&cursor=" + url.QueryEscape(cursor)
			}
			a := do(t, cl, "GET", u, map[string]string{"Authorization": tok})
			if a.status != 200 {
				t.Fatalf("%s: %d %s", u, a.status, a.body)
			}
			var pg struct {
				Users []labUser
				Next  *string `json:"next_cursor"`
			}
			if err := json.Unmarshal([]byte(a.body), &pg); err != nil {
				t.Fatal(err)
			}
			for _, us := range pg.Users {
				out, query = append(out, us), append(query, q)
			}
			if pg.Next == nil {
				break
			}
			cursor = *pg.Next
		}
	}
	return out, query
}

// TestCanariesSearch: search answers through the real gateway carry
// canaries that match the query as the platform's search does (username
// or lower-case full name starts with it), verified by the key, at most 2
// a page, the same on a re-read; a search for a found canary's username
// answers it, the same for a second account; and each canary's
// follower_count and following_count equal the lengths of the lists warden
// serves for it, paged to the end.
func TestCanariesSearch(t *testing.T) {
	_, g, c, cl := canaryLab(t, searchConfig)
	tokA, tokB := accountToken(t, 11), accountToken(t, 12)
	us, qs := searchAll(t, cl, g.url, tokA, searchQueries())
	found := map[string]labUser{}
	for i, u := range us {
		if _, ok := c.Verify(u.ID, u.Username, "", ""); !ok {
			continue
		}
		if !strings.HasPrefix(u.Username, qs[i]) && !strings.HasPrefix(strings.ToLower(u.FullName), qs[i]) {
			t.Fatalf("canary %s (%s) in the answer to %q, which it does not match", u.Username, u.FullName, qs[i])
		}
		found[u.ID] = u
	}
	t.Logf("%d canaries in %d search records (%.2f%%)", len(found), len(us), 100*float64(len(found))/float64(len(us)))
	if d := float64(len(found)) / float64(len(us)); len(found) < 5 || d > 0.02 {
		t.Fatalf("%d canaries in %d search records", len(found), len(us))
	}
	again, _ := searchAll(t, cl, g.url, tokA, searchQueries()[:40])
	if fmt.Sprint(again) != fmt.Sprint(us[:len(again)]) {
		t.Fatal("search answers changed on a re-read")
	}
	n := 0
	for id, u := range found {
		if n++; n > 6 {
			break
		}
		a := do(t, cl, "GET", g.url+"/v1/search?q="+u.Username, map[string]string{"Authorization": tokA})
		b := do(t, cl, "GET", g.url+"/v1/search?q="+u.Username, map[string]string{"Authorization": tokB})
		if a.status != 200 || a.body != b.body || !strings.Contains(a.body, `"id":"`+id+`"`) {
			t.Fatalf("search for %s: %d %s; second account %s", u.Username, a.status, a.body, b.body)
		}
		var prof struct {
			Followers int `json:"follower_count"`
			Following int `json:"following_count"`
		}
		if err := json.Unmarshal([]byte(do(t, cl, "GET", g.url+"/v1/users/"+id, map[string]string{"Authorization": tokB}).body), &prof); err != nil {
			t.Fatal(err)
		}
		for _, l := range []struct {
			name string
			want int
		}{{"followers", prof.Followers}, {"following", prof.Following}} {
			got := 0
			cursor := ""
			for range 100 {
				path := g.url + "/v1/users/" + id + "/" + l.name + "?limit=50"
				if cursor != "" {
					path += "&cursor=" + url.QueryEscape(cursor)
				}
				a := do(t, cl, "GET", path, map[string]string{"Authorization": tokA})
				var pg struct {
					Users []labUser
					Next  *string `json:"next_cursor"`
				}
				if err := json.Unmarshal([]byte(a.body), &pg); a.status != 200 || err != nil {
					t.Fatalf("%s: %d %s", path, a.status, a.body)
				}
				got += len(pg.Users)
				if pg.Next == nil {
					break
				}
				cursor = *pg.Next
			}
			if got != l.want {
				t.Fatalf("canary %s: %s lists %d, its profile says %d", id, l.name, got, l.want)
			}
		}
	}
}
