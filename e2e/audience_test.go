package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/lab/platform"
	"github.com/warden-gw/warden/internal/ledger"
)

// TestAudienceCountsThePlatformsFollowers runs warden audience against
// the real lab platform process and checks every figure against the
// platform's ground truth (the same seed, built in process).
func TestAudienceCountsThePlatformsFollowers(t *testing.T) {
	const n = 2000
	up := startPlatform(t, n)
	truth, err := platform.New(platform.Options{Profiles: n, Seed: 1, JWTSecret: "lab-secret"})
	if err != nil {
		t.Fatal(err)
	}
	// Three popular accounts (lists of several pages) and two others.
	var accts []string
	for id := 1; id <= n && len(accts) < 3; id++ {
		if len(truth.Followers(id)) > 60 {
			accts = append(accts, strconv.Itoa(id))
		}
	}
	others := []string{"11", "12"}
	follows := map[int32]int{}
	for _, a := range accts {
		id, _ := strconv.Atoi(a)
		for _, f := range truth.Followers(id) {
			follows[f]++
		}
	}
	inB := map[int32]bool{}
	for _, a := range others {
		id, _ := strconv.Atoi(a)
		for _, f := range truth.Followers(id) {
			inB[f] = true
		}
	}
	both := 0
	for f := range follows {
		if inB[f] {
			both++
		}
	}
	atLeast := map[int]int{}
	for _, k := range follows {
		for i := 1; i <= k; i++ {
			atLeast[i]++
		}
	}

	tok, err := platform.MintToken("lab-secret", "1", time.Now().Add(-48*time.Hour), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// A ledger with nothing in it yet (as a gateway's is before traffic):
	// its budget for DP answers is kept there.
	ledgerDir := t.TempDir()
	if l, err := ledger.Open(ledger.Options{Dir: ledgerDir}); err != nil {
		t.Fatal(err)
	} else {
		l.Close()
	}
	run := func(extra ...string) map[string]any {
		t.Helper()
		args := append([]string{"audience", "--upstream", up, "--credential-env", "E2E_SERVICE_TOKEN", "--rate", "500",
			"--accounts", accts[0] + "," + accts[1] + "," + accts[2], "--overlap", others[0] + "," + others[1], "--dose",
			"--ledger", ledgerDir, "--json"}, extra...)
		cmd := exec.Command(binPath, args...)
		cmd.Env = append(os.Environ(), "E2E_SERVICE_TOKEN="+tok)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("warden %v: %v\n%s", args, err, out)
		}
		var v map[string]any
		if err := json.Unmarshal(out, &v); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return v
	}
	got := run()
	num := func(v any) int { f, _ := v.(float64); return int(f) }
	if num(got["audience"]) != len(follows) || got["exact"] != true {
		t.Fatalf("audience %v, the platform says %d", got["audience"], len(follows))
	}
	o := got["overlap"].(map[string]any)
	if num(o["a"]) != len(follows) || num(o["b"]) != len(inB) || num(o["both"]) != both || num(o["either"]) != len(follows)+len(inB)-both {
		t.Errorf("overlap %v; want a %d b %d both %d", o, len(follows), len(inB), both)
	}
	for _, d := range got["dose"].([]any) {
		d := d.(map[string]any)
		if num(d["people"]) != atLeast[num(d["k"])] {
			t.Errorf("dose %v, want %d", d, atLeast[num(d["k"])])
		}
	}
	if r, ok := got["reach"].(map[string]any); !ok || num(r["reach"]) != 0 {
		t.Errorf("reach split over an empty ledger: %v", got["reach"])
	}

	// With DP: noisy figures with intervals, the guarantee, the budget;
	// the same question again is the same answer and costs nothing.
	p1 := run("--dp-epsilon", "1", "--researcher", "alice")
	p2 := run("--dp-epsilon", "1", "--researcher", "alice")
	b1, b2 := p1["budget"].(map[string]any), p2["budget"].(map[string]any)
	if p1["exact"] != false || p1["interval"] == nil || p1["privacy"].(map[string]any)["guarantee"] == "" ||
		p1["remaining_budget"] != "0.5" || b1["repeat"] != false {
		t.Fatalf("private answer: %v", p1)
	}
	if p2["audience"] != p1["audience"] || b2["repeat"] != true || p2["remaining_budget"] != "0.5" {
		t.Fatalf("repeat: %v then %v", p1, p2)
	}
	iv := p1["interval"].(map[string]any)
	if a := len(follows); num(iv["low"]) > a || num(iv["high"]) < a {
		t.Logf("the 95%% interval %v missed %d (it may, one time in twenty)", iv, a)
	}
	if _, err := os.Stat(ledgerDir + "/privacy-budgets.json"); err != nil {
		t.Fatal(err)
	}
}
