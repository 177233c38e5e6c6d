package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
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

// The default demo: platform and warden as children, the mix against
// both, then both keep serving until interrupted, and are gone after.
// With --ledger-dir the ledger is where it says, queryable while the demo
// serves, and kept after it (0700); a directory that exists is refused.
func TestDemoServesUntilInterruptedThenCleansUp(t *testing.T) {
	bin := buildWarden(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ledgerDir := filepath.Join(t.TempDir(), "demo-ledger")
	if out, err := exec.CommandContext(ctx, bin, "demo", "--exit", "--ledger-dir", t.TempDir()).CombinedOutput(); err == nil || !strings.Contains(string(out), "exists") {
		t.Errorf("demo --ledger-dir on a directory that exists: %v\n%s", err, out)
	}
	cmd := exec.CommandContext(ctx, bin, "demo", "--profiles", "3000", "--duration", "2s",
		"--platform-addr", "127.0.0.1:0", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
		"-p", "users.count=50", "-p", "fleet.bots=20", "--ledger-dir", ledgerDir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	var platURL, gwURL, ledgerLine string
	for sc.Scan() {
		l := sc.Text()
		out.WriteString(l + "\n")
		if u, ok := strings.CutPrefix(l, "lab platform: "); ok {
			platURL = u
		}
		if u, ok := strings.CutPrefix(l, "warden:       "); ok {
			gwURL, _, _ = strings.Cut(u, " ")
		}
		if u, ok := strings.CutPrefix(l, "ledger:       "); ok {
			ledgerLine = u
		}
		if l == "serving until Ctrl-C" {
			break
		}
	}
	if platURL == "" || gwURL == "" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("no addresses printed:\n%s\nstderr:\n%s", out.String(), stderr.String())
	}
	for _, want := range []string{"| **fleet** | harvest (profiles) |", "with warden (examples/lab.yaml)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	for _, u := range []string{platURL, gwURL} {
		resp, err := http.Get(u + "/healthz")
		if err != nil {
			t.Fatalf("%s while the demo serves: %v", u, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s/healthz: %d", u, resp.StatusCode)
		}
	}
	if !strings.HasPrefix(ledgerLine, ledgerDir+" (kept after the demo") {
		t.Errorf("ledger line %q, want %s kept", ledgerLine, ledgerDir)
	}
	if out, err := exec.Command(bin, "ledger", "verify", "--ledger", ledgerDir).CombinedOutput(); err != nil || !strings.Contains(string(out), ": ok") {
		t.Errorf("verify the demo's ledger while it serves: %v\n%s", err, out)
	}
	cmd.Process.Signal(os.Interrupt)
	go io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		t.Errorf("demo after Ctrl-C: %v\n%s", err, stderr.String())
	}
	if info, err := os.Stat(ledgerDir); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("the demo's ledger after it ended: %v %v, want a directory 0700", info, err)
	}
	for _, u := range []string{platURL, gwURL} {
		if _, err := net.Dial("tcp", strings.TrimPrefix(u, "http://")); err == nil {
			t.Errorf("%s still accepts after the demo ended", u)
		}
	}
}

// A demo with --config FILE starts afresh, as the embedded config's does:
// the file's store.memory.dir and ledger.dir (examples/lab.yaml's are
// relative, warden-state and warden-ledger in the working directory) go
// in the run's own directory, removed with it. Before, they were used as
// written, and the bans and budgets of one demo refused the next one's
// harvesters from the start. --keep-state uses them as written.
func TestDemoConfigFileStartsAfresh(t *testing.T) {
	bin := buildWarden(t)
	lab, err := os.ReadFile("../../examples/lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	wd := t.TempDir()
	if err := os.WriteFile(filepath.Join(wd, "lab.yaml"), lab, 0o600); err != nil {
		t.Fatal(err)
	}
	demo := func(extra ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append([]string{"demo", "--exit", "--config", "lab.yaml", "--compare", "warden",
			"--profiles", "3000", "--duration", "2s", "--scenario", "users,naive", "-p", "users.count=20",
			"--platform-addr", "127.0.0.1:0", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"}, extra...)...)
		cmd.Dir = wd
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if out, err := cmd.Output(); err != nil {
			t.Fatalf("demo %v: %v\n%s\nstderr:\n%s", extra, err, out, stderr.String())
		}
		return stderr.String()
	}
	stateDirs := func() (in []string) {
		for _, d := range []string{"warden-state", "warden-ledger"} {
			if _, err := os.Stat(filepath.Join(wd, d)); err == nil {
				in = append(in, d)
			}
		}
		return in
	}
	if log := demo(); !strings.Contains(log, "lab.yaml's store.memory.dir and ledger.dir replaced by the run's own directory") {
		t.Errorf("the demo does not say where the state went:\n%s", log)
	}
	if in := stateDirs(); len(in) != 0 {
		t.Errorf("after a demo on lab.yaml the working directory holds %v, want the run's own state removed with it", in)
	}
	if log := demo("--keep-state"); !strings.Contains(log, "as written (--keep-state)") {
		t.Errorf("the demo with --keep-state does not say so:\n%s", log)
	}
	if in := stateDirs(); len(in) != 2 {
		t.Errorf("after a demo with --keep-state the working directory holds %v, want warden-state and warden-ledger", in)
	}
}
