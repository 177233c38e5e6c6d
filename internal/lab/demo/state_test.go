package demo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The demo keeps warden's state and its ledger on disk, in its own
// directory: each demo starts afresh, and the embedded config's relative
// dirs are not used.
func TestDemoStateDir(t *testing.T) {
	dir := t.TempDir()
	path, _, _, err := wardenConfig("", dir, filepath.Join(dir, "admin-token"), "s3cret", "pk-1", false)
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

// A config of the user's keeps every byte but its state directories,
// which move into the demo's directory wherever and however they are
// written; one freshState cannot move is an error naming the key, not a
// run on the old state.
func TestFreshState(t *testing.T) {
	const dir = "/tmp/demo-x"
	state, ledger := `"/tmp/demo-x/warden-state"`, `"/tmp/demo-x/warden-ledger"`
	for _, c := range []struct {
		name, in, want string
		moved          int
	}{
		{"plain", "store:\n  memory:\n    dir: warden-state   # here\nledger:\n  dir: warden-ledger\n",
			"store:\n  memory:\n    dir: " + state + "   # here\nledger:\n  dir: " + ledger + "\n", 2},
		{"quoted", "ledger: {dir: 'it''s', queue: 5}\nstore: {memory: {dir: \"a\\\"b\"}}\n",
			"ledger: {dir: " + ledger + ", queue: 5}\nstore: {memory: {dir: " + state + "}}\n", 2},
		{"after a wide character", "log: {level: info} # é\nledger: {dir: é/l}\n",
			"log: {level: info} # é\nledger: {dir: " + ledger + "}\n", 1},
		{"unset or empty", "store:\n  memory:\n    dir: \"\"\n", "store:\n  memory:\n    dir: \"\"\n", 0},
		{"a number", "ledger:\n  dir: 2026\n", "ledger:\n  dir: " + ledger + "\n", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, moved, err := freshState([]byte(c.in), dir)
			if err != nil || string(out) != c.want || len(moved) != c.moved {
				t.Fatalf("%q %q %v, want %q and %d moved", out, moved, err, c.want, c.moved)
			}
		})
	}
	for _, in := range []string{"ledger:\n  dir: &d warden-ledger\n", "ledger:\n  dir: |\n    warden-ledger\n", "ledger:\n  dir: !!str x\n"} {
		if _, _, err := freshState([]byte(in), dir); err == nil || !strings.Contains(err.Error(), "ledger.dir") {
			t.Errorf("%q: %v, want an error naming ledger.dir", in, err)
		}
	}
}
