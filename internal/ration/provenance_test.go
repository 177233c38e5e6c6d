package ration

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/store/memory"
)

// feed is a lab feed page with one post by each author.
func feed(authors ...int) []byte {
	b := []byte(`{"posts":[`)
	for i, a := range authors {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, `{"id":"%d","author":{"id":"%d","username":"user_%d","full_name":"User %d","follower_count":1,"is_business":false},"text":"hi","created_at":"2026-11-23T10:00:00Z","like_count":0}`, 9000+i, a, a, a)
	}
	return append(b, `],"next_cursor":null}`...)
}

func provBudget(name string, limit int, provs ...inspect.Provenance) BudgetConfig {
	b := contactBudget(name, "account", limit)
	b.Provenance = provs
	return b
}

// TestProvenanceBudgets: a budget naming provenances counts only look-ups
// of ids shown that way; an id keeps the best way it was shown; the
// caller's own profile is social.
func TestProvenanceBudgets(t *testing.T) {
	l := loadLab(t)
	cfg := Config{
		Budgets: []BudgetConfig{
			provBudget("contact-search", 2, inspect.Search),
			provBudget("contact-strangers", 1, inspect.List, inspect.Unreferenced),
		},
		Unreferenced: &Unreferenced{}, // counts only; the link memory's facet and ttl
	}
	e := newEnv(t, cfg, l.Inspect)
	id := account("7")
	e.get(t0, id, "/v1/search?q=us", followers(100, 101, 102, 104))
	e.get(t0, id, "/v1/users/9/followers", followers(200, 201))
	e.get(t0, id, "/v1/feed", feed(400))
	e.get(t0, id, "/v1/users/7/following", followers(300, 104)) // its own list: social
	steps := []struct {
		path   string
		id     int
		prov   string
		served bool
	}{
		{"/v1/users/100", 100, "search", true},
		{"/v1/users/by-username/user_101", 101, "search", true},
		{"/v1/users/102", 102, "search", false}, // third found through search
		{"/v1/users/104", 104, "social", true},  // in search, then in its own following
		{"/v1/users/300", 300, "social", true},
		{"/v1/users/400", 400, "social", true}, // a feed's author
		{"/v1/users/200", 200, "list", true},
		{"/v1/users/201", 201, "list", false},         // second from a stranger's list
		{"/v1/users/500", 500, "unreferenced", false}, // never shown: a stranger too
		{"/v1/users/7", 7, "", true},                  // its own profile: no link memory read
		{"/v1/users/100", 100, "search", true},        // a re-view is free
	}
	for _, s := range steps {
		body := profile(s.id)
		out := e.get(t0.Add(time.Minute), id, s.path, body)
		if got := served(t, out, body); got != s.served {
			t.Errorf("%s: served %v, want %v (%s)", s.path, got, s.served, out.Body)
		}
		if out.Access.Provenance != s.prov {
			t.Errorf("%s: provenance %q, want %q", s.path, out.Access.Provenance, s.prov)
		}
	}
	// Another account was shown nothing: all its look-ups are strangers'.
	other := account("8")
	if body := profile(100); !served(t, e.get(t0, other, "/v1/users/100", body), body) {
		t.Error("another account's first unreferenced look-up masked")
	}
	if body := profile(101); served(t, e.get(t0, other, "/v1/users/101", body), body) {
		t.Error("another account's search provenance leaked from account 7")
	}
}

// TestSaturationCostsTheIdentity: an identity that reads more ids than its
// link memory holds finds later ids unreferenced, never shown: its search
// hits then count against the unreferenced rule, not as search.
func TestSaturationCostsTheIdentity(t *testing.T) {
	l := loadLab(t)
	st := memory.New(memory.Options{SweepEvery: -1, LinkCapacity: 200})
	t.Cleanup(func() { st.Close() })
	cfg := Config{
		Budgets:      []BudgetConfig{provBudget("contact-search", 20, inspect.Search)},
		Unreferenced: &Unreferenced{Limit: 1, Window: 24 * time.Hour, Classes: []string{"contact"}},
	}
	r, err := newR(cfg, l.Inspect, st, NewMetrics(prometheus.NewRegistry()), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, r: r}
	id := account("7")
	// Strangers' lists, cheap (no contact in them): 100 ids a page, each
	// linked by id and username, 2,000 ids in all.
	for page := range 20 {
		ids := make([]int, 50)
		for i := range ids {
			ids[i] = 10_000 + page*50 + i
		}
		e.get(t0, id, "/v1/users/9/followers", followers(ids...))
	}
	e.get(t0, id, "/v1/search?q=us", followers(100, 101, 102))
	n := 0
	for _, p := range []int{100, 101, 102} {
		body := profile(p)
		out := e.get(t0.Add(time.Minute), id, fmt.Sprintf("/v1/users/%d", p), body)
		if out.Access.Provenance != "unreferenced" {
			t.Errorf("%d found after saturation: provenance %q, want unreferenced", p, out.Access.Provenance)
		}
		if served(t, out, body) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d of 3 look-ups after saturation served, want 1 (the unreferenced rule's limit)", n)
	}
	// Ids never shown, probed at random, are never reported shown.
	for p := 50_000; p < 50_100; p++ {
		if out := e.get(t0.Add(time.Minute), id, fmt.Sprintf("/v1/users/%d", p), profile(p)); out.Access.Provenance != "unreferenced" {
			t.Fatalf("never-shown %d: provenance %q", p, out.Access.Provenance)
		}
	}
}
