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
