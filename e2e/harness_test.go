package e2e

import (
	"bufio"
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
	"syscall"
	"testing"
	"time"
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
)

// proc is a warden child process with its output collected.
type proc struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	out   strings.Builder
	lines chan string
	done  chan struct{}
}

func (p *proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// start runs warden with args and waits for a stdout line matching ready.
func start(t *testing.T, ready *regexp.Regexp, env []string, args ...string) (*proc, []string) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(os.Environ(), env...)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	p := &proc{cmd: cmd, lines: make(chan string, 1024), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start warden %v: %v", args, err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("warden %s output:\n%s", args[0], p.Output())
		}
	})
	deadline := time.After(30 * time.Second)
	for {
		select {
		case l := <-p.lines:
			if m := ready.FindStringSubmatch(l); m != nil {
				return p, m
			}
		case <-p.done:
			t.Fatalf("warden %v exited before ready:\n%s", args, p.Output())
		case <-deadline:
			t.Fatalf("warden %v not ready in 30s:\n%s", args, p.Output())
		}
	}
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
	p, m := start(t, gatewayReady, []string{"WARDEN_ADMIN_TOKEN=" + adminToken, "LAB_JWT_SECRET=lab-secret", "LAB_PARTNER_KEY=" + partnerKey},
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
