package e2e

import (
	"encoding/json"
	"fmt"
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

func accountToken(t *testing.T, acct int) string {
	return "Bearer " + labToken(t, jwt.MapClaims{"sub": fmt.Sprint(acct), "created": time.Now().Add(-400 * 24 * time.Hour).Unix(), "iat": time.Now().Unix()})
}

type labUser struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	FullName string `json:"full_name"`
}

// TestCanariesServed: followers pages through the real gateway carry
// canaries (about 0.75% of records, verified by the key, the same on a
// re-read); a canary's profile, by-username, followers and posts are
// answered, and the same for a second account as for the first.
func TestCanariesServed(t *testing.T) {
	up := startPlatform(t, 2000)
	g := startGateway(t, canaryConfig(t.TempDir()), up)
	c, err := canary.NewWithKeys(canary.Config{KeyEnv: "X"}, canaryKey)
	if err != nil {
		t.Fatal(err)
	}
	cl := clientFrom("127.0.0.1")
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
		var prof struct{ Email, Phone, Username string }
		_ = json.Unmarshal([]byte(do(t, cl, "GET", g.url+"/v1/users/"+id, map[string]string{"Authorization": tokB}).body), &prof)
		if _, ok := c.Verify(id, prof.Username, prof.Email, prof.Phone); !ok || prof.Email == "" || prof.Phone == "" {
			t.Fatalf("canary %s's profile does not verify: %+v", id, prof)
		}
	}
}
