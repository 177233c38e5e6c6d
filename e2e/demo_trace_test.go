package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/canary"
	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/lab/demo"
	"github.com/warden-gw/warden/internal/lab/sim"
)

// The demo's trace step: the simulator's harvesters through the real
// gateway (examples/lab.yaml, canaries on) in front of the real lab
// platform keep their take as they receive it; the take is traced against
// the ledger as the demo does, and every identity accused is one the
// simulator knows harvested (precision). Each population stops at its
// request bound; legitimate users read lists beside them. The demo's
// config rations the harvesters to a few canaries each, too few to
// accuse; a config with the budgets out of the way lets them take enough
// that the canaries can name them, so precision is tested on accusations
// too.
func TestDemoTraceNamesOnlyHarvesters(t *testing.T) {
	const n = 3000
	maxReq := int64(4000)
	if v, err := strconv.ParseInt(os.Getenv("E2E_DEMO_TRACE_REQUESTS"), 10, 64); err == nil && v > 0 {
		maxReq = v // a longer run by hand
	}
	up := startPlatform(t, n)
	for _, tc := range []struct {
		name        string
		cfg         func(dir string) (cfg, ledgerDir string)
		wantAccused bool
	}{
		{"examples/lab.yaml", func(dir string) (string, string) { return labConfigWithDirs(t, dir) }, false},
		{"budgets out of the way", func(dir string) (string, string) {
			l := filepath.Join(dir, "ledger")
			return canaryConfig(l), l
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) { demoTrace(t, up, n, maxReq, tc.cfg, tc.wantAccused) })
	}
}

func demoTrace(t *testing.T, up string, n int, maxReq int64, mkConfig func(dir string) (string, string), wantAccused bool) {
	dir := t.TempDir()
	cfg, ledgerDir := mkConfig(dir)
	g := startGateway(t, cfg, up)
	truth, err := sim.TruthOf(n, 1)
	if err != nil {
		t.Fatal(err)
	}
	takePath := filepath.Join(dir, "take.ndjson")
	f, err := os.Create(takePath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := sim.Run(ctx, sim.Options{Target: g.url, Truth: truth, JWTSecret: "lab-secret", Seed: 1,
		Scenarios: []string{"users", "fleet", "nat-harvester"}, Duration: 150 * time.Second, MaxRequests: maxReq, Take: f,
		Params: map[string]string{"users.count": "40", "users.think": "5ms", "users.session-gap": "5ms",
			"fleet.bots": "3", "fleet.rate": "2000", "nat-harvester.rate": "2000"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Populations {
		if p.Requests != maxReq {
			t.Fatalf("%s sent %d requests, want its bound %d (the run must end by the bounds, not the clock)", p.Name, p.Requests, maxReq)
		}
	}
	g.p.Stop() // the ledger takes what is queued, then syncs

	wc, err := config.Load(g.config)
	if err != nil {
		t.Fatal(err)
	}
	c, err := canary.NewWithKeys(wc.Canary, canaryKey)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := demo.TraceTake(takePath, ledgerDir, c, rep.Taken)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	tr.Write(&out)
	t.Logf("\n%s", out.String())
	if tr.Report.Records != rep.Taken.Records || rep.Taken.Records == 0 {
		t.Fatalf("traced %d records, the harvesters kept %d", tr.Report.Records, rep.Taken.Records)
	}
	if tr.Report.CanariesFound == 0 {
		t.Fatal("the take holds no canary: the check would be empty")
	}
	// Recall: every harvester that took at least 200 distinct profiles
	// is named by the ledger, accused or not.
	missed, of := tr.Missed()
	if len(missed) > 0 {
		t.Fatalf("harvesters that took at least %d profiles, not named: %+v", tr.Report.NamedMin, missed)
	}
	// The demo's budgets may hold every harvester under 200 (how far
	// each gets depends on the machine's pace); with the budgets out of
	// the way each takes thousands, so recall is tested there.
	if of == 0 && wantAccused {
		t.Fatalf("no harvester took %d profiles: recall would be untested", tr.Report.NamedMin)
	}
	if bad := tr.Innocent(); len(bad) > 0 {
		t.Fatalf("accused identities that did not harvest: %+v", bad)
	}
	if wantAccused && len(tr.Report.Accused) == 0 {
		t.Fatal("nobody accused: precision would be untested")
	}
	for _, a := range tr.Report.Accused {
		t.Logf("accused %s %s: score %.1f (threshold %.1f), %d canaries", a.Facet, a.Value, a.Score, a.Threshold, a.Canaries)
	}
	if !strings.Contains(out.String(), "HARVESTER (simulator)") || !strings.Contains(out.String(), "ledger coverage") {
		t.Errorf("the lines lack their labels:\n%s", out.String())
	}
}
