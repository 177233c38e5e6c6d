package bench

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/store/memory/disk"
)

// Rows (e) and (e-fast) keep state in memory whatever the lab config
// says; row (e-snap) gets its own directory and interval.
func TestStateDirRows(t *testing.T) {
	src, err := os.ReadFile("../../../examples/lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := DeriveLabConfig(src, "http://127.0.0.1:4321", "")
	if err != nil {
		t.Fatal(err)
	}
	if c := loadConfig(t, b); c.Store.Memory.Dir != "" || c.Ledger.Dir != "" {
		t.Fatalf("row (e) keeps state in %q, a ledger in %q, want neither", c.Store.Memory.Dir, c.Ledger.Dir)
	}
	if c := loadConfig(t, src); c.Ledger.Dir == "" {
		t.Fatal("examples/lab.yaml has no ledger: this test proves nothing")
	}
	l, err := WithLedgerDir(b, "/tmp/l")
	if err != nil {
		t.Fatal(err)
	}
	if c := loadConfig(t, l); c.Ledger.Dir != "/tmp/l" || c.Store.Memory.Dir != "" {
		t.Fatalf("row (e-ledger): ledger %q, state %q", c.Ledger.Dir, c.Store.Memory.Dir)
	}
	b, err = WithStateDir(b, "/tmp/x", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if c := loadConfig(t, b); c.Store.Memory.Dir != "/tmp/x" || c.Store.Memory.SnapshotInterval != 5*time.Second {
		t.Fatalf("row (e-snap) store: %+v", c.Store.Memory)
	}
}

func TestPreloadState(t *testing.T) {
	dir := t.TempDir()
	if err := PreloadState(context.Background(), dir, 1000, time.Now()); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, disk.SnapshotFile)); err != nil || fi.Size() < 16*1000 {
		t.Fatalf("snapshot of 1000 keys: %v %v", fi, err)
	}
}

// Row (e) leaves out the detector and the budgets naming provenances; row
// (e-prov) puts them back, every detector rule in shadow mode.
func TestProvenanceRow(t *testing.T) {
	src, err := os.ReadFile("../../../examples/lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	full := loadConfig(t, src)
	provs := 0
	for _, b := range full.Ration.Budgets {
		if len(b.Provenance) > 0 {
			provs++
		}
	}
	if !full.Detect.Enabled || provs == 0 {
		t.Fatal("examples/lab.yaml has no detector or no provenance budget: this test proves nothing")
	}
	b, err := DeriveLabConfig(src, "http://127.0.0.1:4321", "")
	if err != nil {
		t.Fatal(err)
	}
	e := loadConfig(t, b)
	if e.Detect.Enabled || len(e.Ration.Budgets) != len(full.Ration.Budgets)-provs {
		t.Fatalf("row (e): detector %v, %d budgets; want none, %d", e.Detect.Enabled, len(e.Ration.Budgets), len(full.Ration.Budgets)-provs)
	}
	p, err := WithProvenanceAndDetector(b, src)
	if err != nil {
		t.Fatal(err)
	}
	ep := loadConfig(t, p)
	if !ep.Detect.Enabled || len(ep.Detect.Rules) != len(full.Detect.Rules) || len(ep.Ration.Budgets) != len(full.Ration.Budgets) {
		t.Fatalf("row (e-prov): detector %v with %d rules, %d budgets; want %d rules, %d budgets",
			ep.Detect.Enabled, len(ep.Detect.Rules), len(ep.Ration.Budgets), len(full.Detect.Rules), len(full.Ration.Budgets))
	}
	for _, r := range ep.Detect.Rules {
		if r.Mode != "shadow" {
			t.Errorf("row (e-prov): detector rule %s in mode %q, want shadow", r.Name, r.Mode)
		}
	}
}

// Row (e) runs without canaries; row (e-canary) has examples/lab.yaml's
// canary section back, its key from the variable the bench sets.
func TestCanaryRow(t *testing.T) {
	src, err := os.ReadFile("../../../examples/lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	full := loadConfig(t, src)
	if !full.Canary.Enabled() {
		t.Fatal("examples/lab.yaml has canaries off: this test proves nothing")
	}
	b, err := DeriveLabConfig(src, "http://127.0.0.1:4321", "")
	if err != nil {
		t.Fatal(err)
	}
	if e := loadConfig(t, b); e.Canary.Enabled() {
		t.Fatalf("row (e): canaries on (%+v)", e.Canary)
	}
	c, err := WithCanaries(b, src)
	if err != nil {
		t.Fatal(err)
	}
	ec := loadConfig(t, c)
	if !ec.Canary.Enabled() || ec.Canary.KeyEnv != CanaryKeyEnv || ec.Canary.Density != full.Canary.Density {
		t.Fatalf("row (e-canary): canary %+v, want examples/lab.yaml's %+v with key_env %s", ec.Canary, full.Canary, CanaryKeyEnv)
	}
	if len(ec.Ration.Budgets) != len(loadConfig(t, b).Ration.Budgets) || ec.Detect.Enabled {
		t.Fatal("row (e-canary) differs from row (e) by more than its canaries")
	}
}
