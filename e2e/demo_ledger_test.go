package e2e

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/lab/demo"
	"github.com/warden-gw/warden/internal/lab/sim"
)

// labConfigWithDirs is examples/lab.yaml with its state and ledger in dir.
func labConfigWithDirs(t *testing.T, dir string) (cfg, ledgerDir string) {
	t.Helper()
	b, err := os.ReadFile("../examples/lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ledgerDir = filepath.Join(dir, "ledger")
	cfg = strings.Replace(string(b), "dir: warden-ledger", "dir: "+ledgerDir, 1)
	cfg = strings.Replace(cfg, "dir: warden-state", "dir: "+filepath.Join(dir, "state"), 1)
	if cfg == string(b) || !strings.Contains(cfg, ledgerDir) {
		t.Fatal("examples/lab.yaml: no ledger dir to replace")
	}
	return cfg, ledgerDir
}

// The demo's ledger lines: the simulator's mix through the real gateway
// (examples/lab.yaml) in front of the real lab platform, then every
// figure the demo prints from the ledger checked against the figure the
// simulator counted from the answers its clients received. Each
// population stops at its request bound (never cut off by the clock), so
// every answer warden sent was read by its client; the gateway is stopped
// (its ledger flushed) before the ledger is read.
func TestDemoLedgerFiguresMatchTheSimulator(t *testing.T) {
	const n = 3000
	maxReq := int64(300)
	if v, err := strconv.ParseInt(os.Getenv("E2E_DEMO_REQUESTS"), 10, 64); err == nil && v > 0 {
		maxReq = v // a longer run by hand
	}
	up := startPlatform(t, n)
	cfg, ledgerDir := labConfigWithDirs(t, t.TempDir())
	g := startGateway(t, cfg, up)

	authors, err := demo.NamedAuthors(n, 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	truth, err := sim.TruthOf(n, 1)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	rep, err := sim.Run(ctx, sim.Options{Target: g.url, Truth: truth, JWTSecret: "lab-secret", Seed: 1,
		Scenarios: []string{"users", "partner", "fleet", "nat-harvester"}, Authors: authors,
		Duration: 60 * time.Second, MaxRequests: maxReq,
		Params: map[string]string{"users.count": "40", "users.think": "20ms", "users.session-gap": "50ms",
			"partner.key": partnerKey, "partner.rate": "500", "fleet.bots": "20", "fleet.rate": "500", "nat-harvester.rate": "500"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Populations {
		if p.Requests != maxReq {
			t.Fatalf("%s sent %d requests, want its bound %d (the run must end by the bounds, not the clock)", p.Name, p.Requests, maxReq)
		}
	}
	dropped := int64(-1)
	if m := adminDo(t, g, "GET", "/metrics", ""); m.status == 200 {
		sc := bufio.NewScanner(strings.NewReader(m.body))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), `warden_recorder_dropped_total{recorder="ledger"} `); ok {
				f, _ := strconv.ParseFloat(v, 64)
				dropped = int64(f)
			}
		}
	}
	g.p.Stop() // the ledger takes what is queued, then syncs

	fig, err := demo.LedgerFigures(ledgerDir, n, rep.Served, dropped)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	fig.Write(&out)
	t.Logf("\n%s", out.String())
	if fig.SimCutOff != 0 {
		t.Fatalf("%d requests cut off by the clock: the run must end by its bounds", fig.SimCutOff)
	}
	if dropped != 0 {
		t.Fatalf("warden dropped %d Accesses: the figures cannot agree", dropped)
	}
	if rep.Served.Reach == 0 || rep.Served.Impressions == 0 {
		t.Fatalf("the named authors reached nobody (%d people, %d posts): the check would be empty", rep.Served.Reach, rep.Served.Impressions)
	}
	if fig.Reach != fig.SimReach || int64(fig.Impressions) != fig.SimImpressions {
		t.Errorf("reach: ledger %d people, %d posts; simulator %d, %d", fig.Reach, fig.Impressions, fig.SimReach, fig.SimImpressions)
	}
	if len(fig.Takers) == 0 {
		t.Fatal("the ledger names no taker of contact details")
	}
	for _, tk := range fig.Takers {
		if tk.Ledger != tk.Sim {
			t.Errorf("account %s: ledger %d profiles' contact details, simulator %d", tk.Account, tk.Ledger, tk.Sim)
		}
	}
	// Every account, not only the top ones, both ways.
	accts := rep.Served.ContactAccounts()
	for _, a := range accts {
		if got, want := fig.Contact[a], rep.Served.Contact(a); got != want {
			t.Errorf("account %s: ledger %d profiles' contact details, simulator %d", a, got, want)
		}
	}
	for a, n := range fig.Contact {
		if rep.Served.Contact(a) == 0 {
			t.Errorf("account %s: ledger %d profiles' contact details, the simulator counted none", a, n)
		}
	}
	t.Logf("%d accounts' contact details compared", len(accts))
	if fig.Takers[0].Ledger != fig.SimTop.Count {
		t.Errorf("most taken: ledger %d (account %s), simulator %d (account %s)", fig.Takers[0].Ledger, fig.Takers[0].Account, fig.SimTop.Count, fig.SimTop.Account)
	}
	if p := fig.Private; p == nil || p.Exact || p.Interval.Low > p.Reach || p.Interval.High < p.Reach || p.Budget.Researcher != demo.DemoResearcher {
		t.Errorf("DP answer %+v", fig.Private)
	}
	if !strings.Contains(out.String(), "reach of the 10 most-followed accounts") || !strings.Contains(out.String(), "most contact details taken") {
		t.Errorf("the lines lack their labels:\n%s", out.String())
	}
}
