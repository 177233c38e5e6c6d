package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// tool is an executable the benchmark needs and the Debian package that
// has it.
type tool struct{ bin, pkg string }

var (
	toolWrk   = tool{"wrk", "wrk"}
	toolNginx = tool{"nginx", "nginx-light"}
	toolRedis = tool{"redis-server", "redis-server"}
	toolPerf  = tool{"perf", "linux-perf"}
)

// lookTool finds bin in PATH or /usr/sbin.
func lookTool(bin string) (string, bool) {
	if p, err := exec.LookPath(bin); err == nil {
		return p, true
	}
	p := "/usr/sbin/" + bin
	if st, err := os.Stat(p); err == nil && !st.IsDir() {
		return p, true
	}
	return "", false
}

// ensureTool finds the tool or installs its Debian package when running as
// root; otherwise it says how to install it.
func ensureTool(ctx context.Context, t tool, logf func(string, ...any)) (string, error) {
	if p, ok := lookTool(t.bin); ok {
		return p, nil
	}
	if os.Geteuid() != 0 {
		return "", fmt.Errorf("bench: %s not found; install it (as root: apt-get install -y %s)", t.bin, t.pkg)
	}
	logf("installing %s (apt-get install -y %s)", t.bin, t.pkg)
	install := func() ([]byte, error) {
		cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "--no-install-recommends", t.pkg)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		return cmd.CombinedOutput()
	}
	if out, err := install(); err != nil {
		// A fresh image has no package lists yet.
		if uout, uerr := exec.CommandContext(ctx, "apt-get", "update").CombinedOutput(); uerr != nil {
			return "", fmt.Errorf("bench: apt-get update: %w: %s", uerr, lastLines(uout, 3))
		}
		if out, err = install(); err != nil {
			return "", fmt.Errorf("bench: apt-get install %s: %w: %s", t.pkg, err, lastLines(out, 3))
		}
	}
	if p, ok := lookTool(t.bin); ok {
		return p, nil
	}
	return "", fmt.Errorf("bench: %s still missing after installing %s", t.bin, t.pkg)
}

// version runs bin with args and returns the first line mentioning a
// version, for the machine description.
func version(bin string, args ...string) string {
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil && len(out) == 0 {
		return "unknown"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return strings.TrimSpace(line)
}

// cutAt keeps s up to sep.
func cutAt(s, sep string) string {
	before, _, _ := strings.Cut(s, sep)
	return before
}
