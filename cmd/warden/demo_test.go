package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// row returns a population's two rows of the comparison table, one cell
// per target.
func row(table, name string) (score, reqs []string) {
	lines := strings.Split(table, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "| **"+name+"** |") && i+1 < len(lines) {
			return cells(l), cells(lines[i+1])
		}
	}
	return nil, nil
}

func cells(l string) []string {
	parts := strings.Split(l, "|") // "", name, what, cells..., ""
	if len(parts) < 4 {
		return nil
	}
	var out []string
	for _, p := range parts[3 : len(parts)-1] {
		out = append(out, strings.TrimSpace(p))
	}
	return out
}

// buildWarden builds this command, so that the demo can start its
// children from it (a test binary has no subcommands).
func buildWarden(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "warden")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func TestDemoAgainstPlatformAndNginx(t *testing.T) {
	bin := buildWarden(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	md := filepath.Join(t.TempDir(), "baseline.md")
	cmd := exec.CommandContext(ctx, bin, "demo", "--exit", "--profiles", "3000", "--duration", "2s",
		"--platform-addr", "127.0.0.1:0", "--scenario", "users,naive,account-rotation",
		"--compare", "platform,nginx,nginx-ban", "--ban-min", "5", "--markdown", md,
		"-p", "users.count=50", "-p", "account-rotation.accounts=20")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("demo: %v\nstderr:\n%s", err, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"| **naive** | harvest (profiles) |",
		"without protection",
		"nginx limit_req 10 r/s per IP, burst 20",
		"ban list",
		"| **users** | harm: users (requests) | **0.00%** (0.00%) |", // nothing refuses without protection
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	// The naive harvester's one address: never refused without protection,
	// limited by nginx, banned (nothing taken) once on the ban list.
	score, reqs := row(out, "naive")
	if len(score) != 3 || len(reqs) != 3 {
		t.Fatalf("naive rows %q / %q", score, reqs)
	}
	if !strings.HasSuffix(reqs[0], "never") || strings.HasSuffix(reqs[1], "never") {
		t.Errorf("naive first refusals %q, want never without protection and some with nginx", reqs)
	}
	if !strings.HasPrefix(score[2], "**0.00%**") {
		t.Errorf("naive harvest behind nginx with a ban list %q, want 0.00%%", score[2])
	}
	if !strings.Contains(stderr.String(), "starting the lab platform") {
		t.Errorf("no progress on stderr:\n%s", stderr.String())
	}
	if b, err := exec.Command("cat", md).Output(); err != nil || !strings.Contains(string(b), "Command: `warden demo") {
		t.Errorf("markdown file: %v\n%s", err, b)
	}
}
