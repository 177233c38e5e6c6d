package chserver

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
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

// TestSettingsLogsExit checks that queries run with the profile's
// settings (a load of 100,000,000 rows needs them), that the server
// writes its logs where LogPaths says, and that a server that ends on its
// own is reported with how it ended.
func TestSettingsLogsExit(t *testing.T) {
	s := ForTest(t)
	ctx := context.Background()
	got, err := s.Query(ctx, "SELECT name, value FROM system.settings WHERE name IN ('max_threads', 'max_memory_usage', 'max_memory_usage_for_all_queries', 'max_insert_block_size', 'background_pool_size', 'http_receive_timeout', 'http_send_timeout') ORDER BY name", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "background_pool_size\t4\nhttp_receive_timeout\t3600\nhttp_send_timeout\t3600\nmax_insert_block_size\t1048576\n" +
		"max_memory_usage\t4000000000\nmax_memory_usage_for_all_queries\t8000000000\nmax_threads\t2"
	if got != want {
		t.Fatalf("settings:\n%s\nwant\n%s", got, want)
	}
	if _, err := s.Query(ctx, "SELECT nonsense()", nil); err == nil {
		t.Fatal("an unknown function answered")
	}
	for _, p := range s.LogPaths()[1:] {
		if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
			t.Fatalf("log %s: %v", p, err)
		}
	}
	if tail := s.LogTail(20); !strings.Contains(tail, "nonsense") {
		t.Fatalf("the error log's tail does not name the failed query: %q", tail)
	}
	now, peak := s.RSS()
	if now <= 0 || peak < now {
		t.Fatalf("RSS %d, peak %d", now, peak)
	}
	if err := s.Exited(); err != nil {
		t.Fatalf("a running server: %v", err)
	}
	if err := syscall.Kill(s.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-s.Done()
	if err := s.Exited(); err == nil || !strings.Contains(err.Error(), "signal: killed") {
		t.Fatalf("a killed server: %v", err)
	}
}

// TestNotTheSystemServer: Debian's `service clickhouse-server stop` (in
// .ci/run) must not match a test's server. start-stop-daemon --test says
// whom it would signal, and signals no one.
func TestNotTheSystemServer(t *testing.T) {
	s := ForTest(t)
	ssd, err := exec.LookPath("start-stop-daemon")
	if err != nil {
		t.Skip("no start-stop-daemon: no Debian service to stop servers")
	}
	for _, sys := range Paths {
		if _, err := os.Stat(sys); err != nil {
			continue
		}
		out, _ := exec.Command(ssd, "--stop", "--test", "--exec", sys).CombinedOutput()
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasSuffix(strings.TrimSpace(line), fmt.Sprintf(" %d.", s.Pid())) {
				t.Fatalf("stopping the system's %s would stop this server: %s", sys, line)
			}
		}
	}
}
