package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	labproc "github.com/warden-gw/warden/internal/lab/proc"
	"github.com/warden-gw/warden/internal/store/redis/redistest"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// TestMain builds warden once for every test in the package.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "warden-e2e")
	if err != nil {
		panic(err)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		binPath = filepath.Join(dir, "warden")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/warden").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build warden: %v\n%s", err, out)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

const (
	adminToken = "e2e-admin-token-0123456789"
	partnerKey = "e2e-partner-key-0123456789" // registered as app partner-app where a config says so
	canaryKey  = "e2e-canary-key-0123456789"  // canary.key_env WARDEN_CANARY_KEY where a config turns canaries on
)

// proc is a warden child process with its output collected.
type proc struct {
	*labproc.Process
	cmd  *exec.Cmd       // for the tests' signals and exit codes
	done <-chan struct{} // closed once it has exited
}

// start runs warden with args and waits for a line of its output matching
// ready; it is stopped when the test ends.
func start(t *testing.T, ready *regexp.Regexp, env []string, args ...string) (*proc, []string) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(os.Environ(), env...)
	lp, err := labproc.Start(t.Context(), cmd, labproc.Options{Name: "warden " + args[0], Ready: ready})
	if err != nil {
		t.Fatalf("warden %v: %v", args, err)
	}
	p := &proc{Process: lp, cmd: cmd, done: lp.Done()}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("warden %s output:\n%s", args[0], p.Output())
		}
	})
	return p, p.Ready()
}

var (
	platformReady = regexp.MustCompile(`^lab-platform listening on (\S+) `)
	gatewayReady  = regexp.MustCompile(`^warden listening on (\S+) \(upstream \S+, admin (\S+), front (\w+)\)`)
)

// startPlatform runs the lab platform with n profiles; it returns its URL.
func startPlatform(t *testing.T, n int) string {
	_, m := start(t, platformReady, nil, "lab-platform", "--addr", "127.0.0.1:0", "--profiles", fmt.Sprint(n), "--seed", "1", "--jwt-secret", "lab-secret")
	return "http://" + m[1]
}

// gw is a running gateway.
type gw struct {
	p      *proc
	url    string
	admin  string
	front  string
	config string
}

// startGateway writes cfg to a file and serves it in front of upstream.
func startGateway(t *testing.T, cfg, upstream string) *gw {
	t.Helper()
	path := filepath.Join(t.TempDir(), "warden.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p, m := start(t, gatewayReady, []string{"WARDEN_ADMIN_TOKEN=" + adminToken, "LAB_JWT_SECRET=lab-secret", "LAB_PARTNER_KEY=" + partnerKey, "WARDEN_CANARY_KEY=" + canaryKey},
		"serve", "--config", path, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--upstream", upstream)
	return &gw{p: p, url: "http://" + m[1], admin: "http://" + m[2], front: m[3], config: path}
}

// clientFrom returns an HTTP client whose connections come from local
// address ip (any 127.0.0.0/8 address works on Linux loopback).
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableCompression: true}}
}

type answer struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, c *http.Client, method, url string, hdr map[string]string) answer {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), method, url, nil)
	for k, v := range hdr {
		if strings.EqualFold(k, "host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

func adminDo(t *testing.T, g *gw, method, path, body string) answer {
	t.Helper()
	req, _ := http.NewRequest(method, g.admin+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("admin %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// storeSection is a config's store section on backend: "" for "memory"
// (the default), or a redis-server of the test's own for "redis".
func storeSection(t *testing.T, backend string) string {
	t.Helper()
	if backend != "redis" {
		return ""
	}
	return fmt.Sprintf("store:\n  backend: redis\n  redis: {addrs: [%s]}\n", redistest.Start(t).Addr())
}
