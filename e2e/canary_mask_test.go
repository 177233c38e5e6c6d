package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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
	var getAs func(t *testing.T, g *gw, tok, path string) profileShape
	get := func(t *testing.T, g *gw, path string) profileShape {
		t.Helper()
		return getAs(t, g, tok, path)
	}
	getAs = func(t *testing.T, g *gw, tok, path string) profileShape {
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

	// shownCanary fetches followers pages as tok until one shows it a
	// canary beside at least three real records (not tok's account, own);
	// it returns the canary, those records and the page's path.
	shownCanary := func(t *testing.T, g *gw, tok, own string) (labUser, []labUser, string) {
		t.Helper()
		for n := 1; n <= 80; n++ {
			path := fmt.Sprintf("/v1/users/%d/followers?limit=50", n)
			a := do(t, cl, "GET", g.url+path, map[string]string{"Authorization": tok})
			var pg struct{ Users []labUser }
			if err := json.Unmarshal([]byte(a.body), &pg); a.status != 200 || err != nil {
				t.Fatalf("%s: %d %v %s", path, a.status, err, a.body)
			}
			var can *labUser
			var real []labUser
			for _, u := range pg.Users {
				if _, ok := c.Verify(u.ID, u.Username, "", ""); ok {
					if can == nil {
						can = &u
					}
				} else if u.ID != own {
					real = append(real, u)
				}
			}
			if can != nil && len(real) >= 3 {
				return *can, real, path
			}
		}
		t.Fatal("no canary in 80 followers pages")
		return labUser{}, nil, ""
	}
	profiles := func(u labUser) []string {
		return []string{"/v1/users/" + u.ID, "/v1/users/by-username/" + u.Username}
	}
	withLinks := func(cfg, ration string) string {
		cfg = strings.Replace(cfg, `links: ["$.users[*].id"]`, `links: ["$.users[*].id", "$.users[*].username"]`, 1)
		return strings.Replace(cfg, "ledger: {dir:", ration+"ledger: {dir:", 1)
	}

	// Cross-account look-ups: B looks up records from A's take, the real
	// one and the canary both never shown to B. Past B's unreferenced
	// budget both are masked alike; a canary B was shown in a list is
	// served as a real record B was shown (the canaries inserted into an
	// answer are linked in the identity's link memory as its ids are).
	t.Run("unreferenced", func(t *testing.T) {
		g := startGateway(t, withLinks(canaryMaskConfig("loop", t.TempDir(), 100, "mask"),
			"  unreferenced: {facet: account, limit: 1, window: 24h, action: mask, classes: [contact]}\n"), up)
		tokB := accountToken(t, 22)
		canA, realA, _ := shownCanary(t, g, tok, "21")
		var never []string
		for id := 1999; len(never) < 2; id-- {
			if s := fmt.Sprint(id); s != realA[0].ID && s != "22" {
				never = append(never, "/v1/users/"+s)
			}
		}
		if s := getAs(t, g, tokB, never[0]); s.Status != 200 || len(s.Nulls) != 0 {
			t.Fatalf("within the unreferenced budget, an id never shown: %+v", s)
		}
		getAs(t, g, tokB, never[1])
		masked := getAs(t, g, tokB, profiles(realA[0])[0])
		if !slices.Equal(masked.Nulls, []string{"email", "phone"}) || !strings.Contains(masked.Note, "unreferenced") {
			t.Fatalf("past B's unreferenced budget, a real record of A's take: %+v", masked)
		}
		same(t, masked, profiles(realA[0])[1], getAs(t, g, tokB, profiles(realA[0])[1]))
		for _, p := range profiles(canA) {
			same(t, masked, p, getAs(t, g, tokB, p)) // masked as the real one
		}
		// A, shown both, past nothing: both served alike.
		servedA := getAs(t, g, tok, profiles(realA[0])[0])
		for _, p := range profiles(canA) {
			same(t, servedA, p, getAs(t, g, tok, p))
		}
		canB, realB, _ := shownCanary(t, g, tokB, "22")
		served := getAs(t, g, tokB, profiles(realB[0])[0])
		if served.Status != 200 || len(served.Nulls) != 0 || served.Masked != "" {
			t.Fatalf("past B's unreferenced budget, a record B was shown: %+v", served)
		}
		for _, p := range profiles(canB) {
			same(t, served, p, getAs(t, g, tokB, p)) // served as the real one
		}
		// A canary's own list (its followers, canaries) links what it
		// shows as a real profile's list does: B looks one up served.
		for j := uint32(1); ; j++ {
			if j > 20 {
				t.Fatal("no canary with followers among the first 20")
			}
			path := fmt.Sprint("/v1/users/", c.Canary(0, j).ID, "/followers")
			a := do(t, cl, "GET", g.url+path, map[string]string{"Authorization": tokB})
			var pg struct{ Users []labUser }
			if err := json.Unmarshal([]byte(a.body), &pg); a.status != 200 || err != nil {
				t.Fatalf("%s: %d %v %s", path, a.status, err, a.body)
			}
			if len(pg.Users) == 0 {
				continue
			}
			for _, p := range profiles(pg.Users[0]) {
				same(t, served, p, getAs(t, g, tokB, p)) // shown in a list: served
			}
			break
		}
	})

	// The fan-out cap: past the cap of people opened from one answer a
	// canary is masked as a real record is, and opening a canary counts
	// one open, as a real record's does.
	t.Run("fanout", func(t *testing.T) {
		g := startGateway(t, withLinks(canaryMaskConfig("loop", t.TempDir(), 100, "mask"),
			"  unreferenced: {facet: account}\n  fanout_cap: {limit: 2, window: 10m, classes: [contact]}\n"), up)
		can, real, page := shownCanary(t, g, tok, "21")
		open := func(u labUser) profileShape { return get(t, g, profiles(u)[0]) }
		first := open(real[0])
		if first.Status != 200 || len(first.Nulls) != 0 || first.Masked != "" {
			t.Fatalf("the first open from an answer: %+v", first)
		}
		open(real[1])
		past := open(real[2])
		if !slices.Equal(past.Nulls, []string{"email", "phone"}) || past.Masked == "" {
			t.Fatalf("the third open from an answer, past a cap of 2: %+v", past)
		}
		for _, p := range profiles(can) {
			same(t, past, p, get(t, g, p)) // masked as the real one
		}
		// A fresh answer of the same page (its own to the cap, the same
		// canary): the canary is the first open, a real record the
		// second, and the next real record is past the cap.
		again, _, _ := shownCanary(t, g, tok, "21")
		if again != can {
			t.Fatalf("the page again: canary %+v, was %+v (%s)", again, can, page)
		}
		same(t, first, profiles(can)[0], get(t, g, profiles(can)[0]))
		same(t, first, profiles(can)[1], get(t, g, profiles(can)[1])) // the same person: no second open
		if s := open(real[0]); fmt.Sprintf("%+v", s) != fmt.Sprintf("%+v", first) {
			t.Fatalf("the second open of an answer, after a canary: %+v", s)
		}
		if s := open(real[1]); fmt.Sprintf("%+v", s) != fmt.Sprintf("%+v", past) {
			t.Fatalf("the third open of an answer, the first a canary: %+v, want %+v", s, past)
		}
	})
	// warden replay under the same config: the canary's open spent the
	// answer's cap, but the ledger names no canary, so the replay cannot
	// count it and reports the real record capped after it as no longer
	// masked. Its caveats say so, with the number of canary look-ups the
	// window held; before, they named the unreferenced rule alone and the
	// row read as a change the config would make.
	t.Run("fanout/replay", func(t *testing.T) {
		dir := t.TempDir()
		cfg := withLinks(canaryMaskConfig("loop", dir, 100, "mask"),
			"  unreferenced: {facet: account}\n  fanout_cap: {limit: 2, window: 10m, classes: [contact]}\n")
		g := startGateway(t, cfg, up)
		can, real, _ := shownCanary(t, g, tok, "21")
		get(t, g, profiles(can)[0])
		get(t, g, profiles(real[0])[0])
		last := do(t, cl, "GET", g.url+profiles(real[1])[0], map[string]string{"Authorization": tok})
		if last.header.Get("Warden-Masked") == "" {
			t.Fatalf("the third open from an answer, the first a canary, past a cap of 2: %d %s", last.status, last.body)
		}
		id := last.header.Get("X-Request-Id")
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if code, _, _ := runWarden(t, "", nil, "explain", id, "--ledger", dir); code == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("request %s not in the ledger after 30 s", id)
			}
		}
		file := filepath.Join(t.TempDir(), "same.yaml")
		if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		var rep struct {
			NoLongerMasked []struct{ Rule string } `json:"no_longer_masked"`
			Caveats        []string                `json:"caveats"`
		}
		code, out, errOut := runWarden(t, "", []string{"WARDEN_CANARY_KEY=" + canaryKey, "LAB_JWT_SECRET=lab-secret"}, "replay", "--config", file, "--ledger", dir, "--json")
		if code != 0 || json.Unmarshal([]byte(out), &rep) != nil {
			t.Fatalf("replay: exit %d\n%s%s", code, out, errOut)
		}
		want := "fanout-cap: 1 look-up of a canary in the window"
		if !slices.ContainsFunc(rep.Caveats, func(c string) bool { return strings.HasPrefix(c, want) }) {
			t.Errorf("replay of a canary's open under the same config: caveats %q, want one starting %q (no longer masked: %+v)", rep.Caveats, want, rep.NoLongerMasked)
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
