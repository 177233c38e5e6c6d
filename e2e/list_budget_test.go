package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The story's fleet of aged accounts, each behind its own address, walks
// strangers' follower lists and opens 3 people from each list it fetches
// (under the fan-out cap). examples/lab.yaml's contact-list-account-day
// holds such an account at 50 people a day through strangers' lists;
// before, only contact-account-day's 200 did. The detector is off here:
// the fleet paces itself under its velocity rule (20 in 10 s), which this
// test need not wait out; what is tested is the budget. Its requests keep
// under the per-account rate limit (20 a second), as such a fleet's do.
func TestListBudgetHoldsAStrangersListWalker(t *testing.T) {
	platform := startPlatform(t, 2000)
	cfg, _ := labConfigWithDirs(t, t.TempDir())
	off := strings.Replace(cfg, "detect:\n  enabled: true", "detect:\n  enabled: false", 1)
	if off == cfg {
		t.Fatal("examples/lab.yaml: no detect section to turn off")
	}
	g := startGateway(t, off, platform)
	c := clientFrom("127.0.9.7")
	tok := token(t, "7") // a year old: past every account_age tier
	get := func(path string) answer {
		time.Sleep(60 * time.Millisecond) // under per-account's 20 a second
		return do(t, c, "GET", g.url+path, map[string]string{"Authorization": "Bearer " + tok})
	}
	opened, served := map[string]bool{"7": true}, 0
	for owner := 100; owner < 1000 && len(opened) <= 60; owner++ {
		a := get(fmt.Sprintf("/v1/users/%d/followers?limit=20", owner))
		if a.status != 200 {
			t.Fatalf("followers of %d: %d %s", owner, a.status, a.body)
		}
		var l listed
		if err := json.Unmarshal([]byte(a.body), &l); err != nil {
			t.Fatalf("followers of %d: %v", owner, err)
		}
		n := 0
		for _, u := range l.Users {
			if id, err := strconv.Atoi(u.ID); err != nil || id > 2000 {
				continue // a canary (the gateway's, counted by no budget), not one of the platform's people
			}
			if n == 3 || opened[u.ID] || len(opened) > 60 {
				continue
			}
			opened[u.ID], n = true, n+1
			p := get("/v1/users/" + u.ID)
			if contactServed(t, p) {
				served++
				continue
			}
			if m := p.header.Get("Warden-Masked"); !strings.Contains(m, "contact-list-account-day") {
				t.Fatalf("person %d (%s) opened from a stranger's list masked by %q, want contact-list-account-day", len(opened)-1, u.ID, m)
			}
		}
	}
	if len(opened)-1 < 55 {
		t.Fatalf("opened %d people from strangers' lists, want over 55", len(opened)-1)
	}
	if served != 50 {
		t.Errorf("%d of %d people opened from strangers' lists served with contact details, want the budget's 50", served, len(opened)-1)
	}
	// Its own network is not counted: a person it follows still comes
	// with contact details.
	fa := get("/v1/users/7/following?limit=50")
	var mine listed
	if err := json.Unmarshal([]byte(fa.body), &mine); err != nil || fa.status != http.StatusOK {
		t.Fatalf("own following: %d %v", fa.status, err)
	}
	i := slices.IndexFunc(mine.Users, func(u struct{ ID, Username string }) bool { return !opened[u.ID] })
	if i < 0 {
		t.Skip("account 7 follows no one not already opened") // never with the lab's seed 1
	}
	if p := get("/v1/users/" + mine.Users[i].ID); !contactServed(t, p) {
		t.Errorf("a person it follows masked past the strangers' lists budget: %s", p.header.Get("Warden-Masked"))
	}
}
