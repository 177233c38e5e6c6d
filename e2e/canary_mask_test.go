package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/warden-gw/warden/internal/canary"
)

// canaryMaskConfig is ledgerConfig with canaries on, the by-username
// route inspected as examples/lab.yaml does, and the contact budget at
// limit with action.
func canaryMaskConfig(front, dir string, limit int, action string) string {
	cfg := "front: " + front + "\n" + strings.Replace(ledgerConfig(dir, limit), "action: mask", "action: "+action, 1)
	cfg = strings.Replace(cfg, "inspect:\n  routes:\n", `inspect:
  routes:
    - route: "GET /v1/users/by-username/{username}"
      records: ["$"]
      id: id
      classes: {contact: [email, phone], profile: [username, full_name, bio, city]}
      lookup: username
`, 1)
	return cfg + "canary:\n  key_env: WARDEN_CANARY_KEY\n"
}

// profileShape is what a profile answer shows of the decisions made on
// it: status, its members, which are null, the _warden note (its
// request_id checked against X-Request-Id and left out) and the
// Warden-Masked header; for a refusal, its body with the request id left
// out and whether Retry-After was set.
type profileShape struct {
	Status      int
	Keys, Nulls []string
	Note        string
	Masked      string
	Refusal     string
	RetryAfter  bool
}

func shapeOf(t *testing.T, what string, a answer) profileShape {
	t.Helper()
	id := a.header.Get("X-Request-Id")
	s := profileShape{Status: a.status, Masked: a.header.Get("Warden-Masked"), RetryAfter: a.header.Get("Retry-After") != ""}
	if a.status != 200 {
		s.Refusal = strings.ReplaceAll(a.body, id, "ID")
		return s
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(a.body), &m); err != nil {
		t.Fatalf("%s: %v: %s", what, err, a.body)
	}
	for k, v := range m {
		s.Keys = append(s.Keys, k)
		if string(v) == "null" {
			s.Nulls = append(s.Nulls, k)
		}
	}
	slices.Sort(s.Keys)
	slices.Sort(s.Nulls)
	if raw, ok := m["_warden"]; ok {
		var note map[string]any
		if err := json.Unmarshal(raw, &note); err != nil {
			t.Fatalf("%s: _warden: %v", what, err)
		}
		if note["request_id"] != id {
			t.Fatalf("%s: _warden names request %v, X-Request-Id is %q", what, note["request_id"], id)
		}
		delete(note, "request_id")
		b, _ := json.Marshal(note)
		s.Note = string(b)
	}
	return s
}

// TestCanaryMaskedAsReal: a canary profile (by id and by username) is
// masked, or refused, exactly when a real one is, so an account whose
// contact budget is spent cannot tell canaries apart by what comes back
// unmasked; and fetching canaries spends nothing of the budget. On every
// front.
func TestCanaryMaskedAsReal(t *testing.T) {
	up := startPlatform(t, 2000)
	c, err := canary.NewWithKeys(canary.Config{KeyEnv: "X"}, canaryKey)
	if err != nil {
		t.Fatal(err)
	}
	var cans []string // paths of canary profiles
	for j := uint32(1); j <= 3; j++ {
		p := c.Canary(0, j)
		cans = append(cans, fmt.Sprint("/v1/users/", p.ID), "/v1/users/by-username/"+p.Username)
	}
	cl := clientFrom("127.0.0.1")
	tok := accountToken(t, 21)
	get := func(t *testing.T, g *gw, path string) profileShape {
		t.Helper()
		a := do(t, cl, "GET", g.url+path, map[string]string{"Authorization": tok})
		if a.status == 200 && slices.Contains(cans, path) {
			var p struct{ ID, Username string }
			_ = json.Unmarshal([]byte(a.body), &p)
			if _, ok := c.Verify(p.ID, p.Username, "", ""); !ok {
				t.Fatalf("%s: not a canary: %s", path, a.body)
			}
		}
		return shapeOf(t, path, a)
	}
	same := func(t *testing.T, real profileShape, path string, s profileShape) {
		t.Helper()
		if fmt.Sprintf("%+v", s) != fmt.Sprintf("%+v", real) {
			t.Fatalf("%s answered\n  %+v\na real profile\n  %+v", path, s, real)
		}
	}

	// Past the unreferenced rule's budget a real profile the account was
	// shown in a list is still served, and so is a canary (shown in lists,
	// never linked): a canary masked there would stand out.
	t.Run("unreferenced", func(t *testing.T) {
		cfg := canaryMaskConfig("loop", t.TempDir(), 100, "mask")
		cfg = strings.Replace(cfg, `links: ["$.users[*].id"]`, `links: ["$.users[*].id", "$.users[*].username"]`, 1)
		cfg = strings.Replace(cfg, "ledger: {dir:", "  unreferenced: {facet: account, limit: 1, window: 24h, action: mask, classes: [contact]}\nledger: {dir:", 1)
		g := startGateway(t, cfg, up)
		a := do(t, cl, "GET", g.url+"/v1/users/5/followers?limit=50", map[string]string{"Authorization": tok})
		var pg struct{ Users []labUser }
		if err := json.Unmarshal([]byte(a.body), &pg); a.status != 200 || err != nil {
			t.Fatalf("followers: %d %v %s", a.status, err, a.body)
		}
		shown := map[string]bool{}
		listed := ""
		for _, u := range pg.Users {
			shown[u.ID] = true
			if _, ok := c.Verify(u.ID, u.Username, "", ""); !ok && u.ID != "21" {
				listed = u.ID
			}
		}
		var never []string
		for id := 1999; len(never) < 2; id-- {
			if !shown[fmt.Sprint(id)] {
				never = append(never, fmt.Sprint("/v1/users/", id))
			}
		}
		get(t, g, never[0])
		if s := get(t, g, never[1]); !slices.Equal(s.Nulls, []string{"email", "phone"}) {
			t.Fatalf("past the unreferenced budget, an id never shown: %+v", s)
		}
		real := get(t, g, "/v1/users/"+listed)
		if real.Status != 200 || len(real.Nulls) != 0 {
			t.Fatalf("an id shown in a list: %+v", real)
		}
		for _, p := range cans {
			same(t, real, p, get(t, g, p))
		}
	})
	for _, front := range fronts {
		t.Run(front+"/mask", func(t *testing.T) {
			g := startGateway(t, canaryMaskConfig(front, t.TempDir(), 3, "mask"), up)
			first := get(t, g, "/v1/users/1")
			if first.Status != 200 || len(first.Nulls) != 0 || first.Note != "" || first.Masked != "" {
				t.Fatalf("within budget, a real profile: %+v", first)
			}
			for _, p := range cans {
				same(t, first, p, get(t, g, p)) // within budget: unmasked, as a real one
			}
			get(t, g, "/v1/users/2") // one unit left
			for _, p := range cans {
				same(t, first, p, get(t, g, p))
			}
			// The canaries spent nothing: the last unit still serves a real one.
			if s := get(t, g, "/v1/users/3"); fmt.Sprintf("%+v", s) != fmt.Sprintf("%+v", first) {
				t.Fatalf("the last unit of the budget, after canaries: %+v", s)
			}
			spent := get(t, g, "/v1/users/4")
			if !slices.Equal(spent.Nulls, []string{"email", "phone"}) || !strings.Contains(spent.Note, "contact-account") || spent.Masked == "" {
				t.Fatalf("past the budget, a real profile: %+v", spent)
			}
			for _, p := range cans {
				same(t, spent, p, get(t, g, p)) // masked as the real one
			}
		})

		t.Run(front+"/block", func(t *testing.T) {
			g := startGateway(t, canaryMaskConfig(front, t.TempDir(), 1, "block"), up)
			// The canary first: it takes nothing, so the one unit is left for
			// the real profile after it.
			canFirst := get(t, g, cans[0])
			first := get(t, g, "/v1/users/1")
			if first.Status != 200 || len(first.Nulls) != 0 {
				t.Fatalf("within budget, a real profile after a canary: %+v", first)
			}
			same(t, first, cans[0], canFirst)
			spent := get(t, g, "/v1/users/2")
			if spent.Status != 429 || !strings.Contains(spent.Refusal, "contact-account") || !spent.RetryAfter {
				t.Fatalf("past a block budget, a real profile: %+v", spent)
			}
			for _, p := range cans {
				same(t, spent, p, get(t, g, p)) // refused as the real one
			}
		})
	}
}
