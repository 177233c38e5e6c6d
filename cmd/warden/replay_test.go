package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/warden-gw/warden/internal/replay"
)

// The table names the reasons not replayed in one order (replay.Reasons),
// those above zero only, however the map iterates.
func TestReplayTableReasonsInOrder(t *testing.T) {
	rep := &replay.Report{Accesses: 20, Replayed: 10,
		NotReplayed: map[string]int{"banned": 1, "identity": 2, "blocked_by_budget": 3, "request": 0, "superseded": 1, "store_admit": 3}}
	want := "10 replayed, 1 not (banned), 2 not (identity), 3 not (blocked_by_budget), 1 not (superseded), 3 not (store_admit)\n"
	for range 20 {
		var w bytes.Buffer
		if err := replayTable(&w, rep); err != nil {
			t.Fatal(err)
		}
		if line, _, _ := strings.Cut(w.String(), "\n"); !strings.HasSuffix(line+"\n", want) {
			t.Fatalf("first line %q, want it to end %q", line, want)
		}
	}
}
