package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// safeBuffer is a bytes.Buffer a child process writes while the test reads.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// `warden serve --ledger-dir ""` turns the ledger off, with the warning
// serve gives for a config without ledger.dir, where before the empty
// value was taken for no flag at all and the config's ledger.dir stayed
// on. A --ledger-dir DIR still overrides the config's.
func TestServeLedgerDirEmptyTurnsLedgerOff(t *testing.T) {
	bin := buildWarden(t)
	dir := t.TempDir()
	cfgLedger, flagLedger := filepath.Join(dir, "config-ledger"), filepath.Join(dir, "flag-ledger")
	cfg := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\nupstream: {url: \"http://127.0.0.1:1\"}\nadmin: {listen: 127.0.0.1:0}\nledger: {dir: "+cfgLedger+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	serve := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append([]string{"serve", "--config", cfg}, args...)...)
		// A serve that does not stop is killed with its goroutines dumped.
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
		cmd.WaitDelay = 5 * time.Second
		cmd.Env = append(os.Environ(), "WARDEN_ADMIN_TOKEN=0123456789abcdef0123456789abcdef")
		var stderr safeBuffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		addr := ""
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "warden listening on "); ok {
				addr, _, _ = strings.Cut(a, " ")
				break
			}
		}
		if addr == "" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("serve %q never ready:\n%s", args, stderr.String())
		}
		cmd.Process.Signal(os.Interrupt)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("serve %q after SIGINT: %v\n%s", args, err, stderr.String())
		}
		return stderr.String()
	}
	exists := func(d string) bool { _, err := os.Stat(d); return err == nil }

	log := serve("--ledger-dir", "")
	if !strings.Contains(log, "ledger off") || strings.Contains(log, `"msg":"ledger on"`) {
		t.Errorf(`serve --ledger-dir "": no "ledger off" warning, or the ledger on:\n%s`, log)
	}
	if exists(cfgLedger) {
		t.Errorf(`serve --ledger-dir "" wrote the config's ledger.dir %s`, cfgLedger)
	}
	if log := serve("--ledger-dir", flagLedger); !strings.Contains(log, `"msg":"ledger on"`) || !exists(flagLedger) || exists(cfgLedger) {
		t.Errorf("serve --ledger-dir DIR: want the ledger in DIR alone:\n%s", log)
	}
}
