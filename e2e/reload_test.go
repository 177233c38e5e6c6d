package e2e

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestReloadCounted: warden_config_reloads_total counts each SIGHUP once:
// a file that is valid but whose pipeline cannot be built (its JWT secret's
// variable is not set) is refused, not also accepted; a change that needs a
// restart is refused and names the key; a good file is accepted.
func TestReloadCounted(t *testing.T) {
	up := newEcho(t)
	base := baseConfig("fast")
	g := startGateway(t, base, up.srv.URL)
	steps := []struct {
		name, file, log string
		ok, refused     int
	}{
		{"pipeline fails", strings.Replace(base, "secret_env: LAB_JWT_SECRET", "secret_env: WARDEN_E2E_NOT_SET", 1),
			"WARDEN_E2E_NOT_SET is not set", 0, 1},
		{"needs a restart", strings.Replace(base, "format: text", "format: json", 1),
			"changing log.format needs a restart", 0, 2},
		{"accepted", strings.Replace(base, "burst: 3", "burst: 1", 1), "config reloaded", 1, 2},
	}
	for _, s := range steps {
		if err := os.WriteFile(g.config, []byte(s.file), 0o600); err != nil {
			t.Fatal(err)
		}
		g.p.cmd.Process.Signal(syscall.SIGHUP)
		waitFor(t, g.p, s.log)
		// The count is taken before the log line is written.
		want := []string{fmt.Sprintf(`warden_config_reloads_total{result="ok"} %d`, s.ok),
			fmt.Sprintf(`warden_config_reloads_total{result="refused"} %d`, s.refused)}
		if got := metricLines(t, g, "warden_config_reloads_total"); !slices.Equal(got, want) {
			t.Fatalf("%s: reloads counted %q, want %q", s.name, got, want)
		}
	}
	// The accepted file is in force: burst 1.
	c := clientFrom("127.0.0.32")
	if a := do(t, c, "GET", g.url+"/limited/r", nil); a.status != 200 {
		t.Fatalf("first: %d", a.status)
	}
	if a := do(t, c, "GET", g.url+"/limited/r", nil); a.status != 429 {
		t.Fatalf("second after reload to burst 1: %d", a.status)
	}
}

// metricLines returns the sample lines of the admin /metrics page for
// metric name, in the page's order.
func metricLines(t *testing.T, g *gw, name string) []string {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(adminDo(t, g, "GET", "/metrics", "").body, "\n") {
		if strings.HasPrefix(l, name+"{") {
			lines = append(lines, l)
		}
	}
	return lines
}
