package chserver

import (
	"context"
	"strings"
	"testing"
)

// TestStartKillRestart starts the server, kills it, and starts it again
// on the same ports and data.
func TestStartKillRestart(t *testing.T) {
	s := ForTest(t)
	if !strings.HasPrefix(s.Version, "1") && !strings.HasPrefix(s.Version, "2") {
		t.Fatalf("version %q", s.Version)
	}
	ctx := context.Background()
	if _, err := s.Query(ctx, "CREATE TABLE t (x UInt8) ENGINE = MergeTree() ORDER BY x", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Query(ctx, "INSERT INTO t VALUES (7)", nil); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	if _, err := s.Query(ctx, "SELECT 1", nil); err == nil {
		t.Fatal("a killed server answered")
	}
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Query(ctx, "SELECT sum(x) FROM t", nil); err != nil || got != "7" {
		t.Fatalf("after restart: %q %v", got, err)
	}
}
