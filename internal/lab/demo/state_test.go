package demo

import (
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The demo keeps warden's state and its ledger on disk, in its own
// directory: each demo starts afresh, and the embedded config's relative
// dirs are not used.
func TestDemoStateDir(t *testing.T) {
	dir := t.TempDir()
	path, _, err := wardenConfig("", dir, filepath.Join(dir, "admin-token"), "s3cret", "pk-1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Store struct {
			Memory struct {
				Dir string `yaml:"dir"`
			} `yaml:"memory"`
		} `yaml:"store"`
		Ledger struct {
			Dir string `yaml:"dir"`
		} `yaml:"ledger"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "warden-state"); c.Store.Memory.Dir != want {
		t.Fatalf("store.memory.dir %q, want %q", c.Store.Memory.Dir, want)
	}
	if want := filepath.Join(dir, "warden-ledger"); c.Ledger.Dir != want {
		t.Fatalf("ledger.dir %q, want %q", c.Ledger.Dir, want)
	}
}
