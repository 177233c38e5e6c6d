package nginx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"
)

// Config says how to run nginx.
type Config struct {
	// Listen is host:port to listen on; an empty or :0 port picks a free one.
	Listen string
	// Upstream is the proxied server, "http://host:port" or "host:port".
	Upstream string
	// RatePerSecond is the per-IP limit_req rate; 0 means no limit.
	RatePerSecond float64
	// Burst is limit_req's burst (served without delay, nodelay).
	Burst int
	// Deny lists addresses or CIDRs answered with 403.
	Deny []string
	// Dir holds the generated config, pid, logs and temp files; empty means
	// a new temporary directory, removed by Stop.
	Dir string
	// Workers is worker_processes; 0 means 1.
	Workers int
	// Binary is the nginx executable; empty means "nginx" from PATH, then
	// /usr/sbin/nginx.
	Binary string
}

// Server is a running nginx.
type Server struct {
	addr    string
	dir     string
	ownDir  bool
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	stderr  *bytes.Buffer
}

// Addr is the host:port nginx listens on.
func (s *Server) Addr() string { return s.addr }

// URL is the base URL of the server.
func (s *Server) URL() string { return "http://" + s.addr }

// Dir is where the config and logs are.
func (s *Server) Dir() string { return s.dir }

// findBinary locates nginx or says clearly that it is missing.
func findBinary(b string) (string, error) {
	if b != "" {
		return exec.LookPath(b)
	}
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx", nil
	}
	return "", errors.New("nginx: binary not found in PATH or /usr/sbin (install Debian's nginx-light: apt-get install nginx-light)")
}

// Start writes a config and starts nginx, returning once it accepts
// connections. Stop it with Stop.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	bin, err := findBinary(cfg.Binary)
	if err != nil {
		return nil, err
	}
	up, err := upstreamAddr(cfg.Upstream)
	if err != nil {
		return nil, err
	}
	for _, d := range cfg.Deny {
		if _, err := netip.ParsePrefix(d); err != nil {
			if _, err := netip.ParseAddr(d); err != nil {
				return nil, fmt.Errorf("nginx: deny entry %q is not an address or CIDR", d)
			}
		}
	}
	if cfg.RatePerSecond < 0 || cfg.Burst < 0 {
		return nil, fmt.Errorf("nginx: negative rate %v or burst %d", cfg.RatePerSecond, cfg.Burst)
	}
	s := &Server{dir: cfg.Dir, done: make(chan struct{}), stderr: &bytes.Buffer{}}
	if s.dir == "" {
		d, err := os.MkdirTemp("", "warden-nginx-")
		if err != nil {
			return nil, fmt.Errorf("nginx: temp dir: %w", err)
		}
		s.dir, s.ownDir = d, true
	} else if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, fmt.Errorf("nginx: dir %s: %w", s.dir, err)
	}
	listen := cfg.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		s.cleanup()
		return nil, fmt.Errorf("nginx: listen %q: %w", listen, err)
	}
	// A free port is found by binding :0 and closing; nginx cannot report
	// the port it picked. Retry a few times in case another process races.
	tries := 1
	if port == "0" || port == "" {
		tries = 5
	}
	var lastErr error
	for i := 0; i < tries; i++ {
		p := port
		if tries > 1 {
			p, err = freePort(host)
			if err != nil {
				s.cleanup()
				return nil, err
			}
		}
		s.addr = net.JoinHostPort(host, p)
		if lastErr = s.launch(ctx, bin, cfg, up); lastErr == nil {
			return s, nil
		}
	}
	s.cleanup()
	return nil, lastErr
}

func (s *Server) launch(ctx context.Context, bin string, cfg Config, up string) error {
	conf, err := render(cfg, s.addr, up, s.dir)
	if err != nil {
		return err
	}
	confPath := filepath.Join(s.dir, "nginx.conf")
	if err := os.WriteFile(confPath, conf, 0o644); err != nil {
		return fmt.Errorf("nginx: write config: %w", err)
	}
	s.stderr.Reset()
	s.done = make(chan struct{})
	cmd := exec.Command(bin, "-p", s.dir, "-c", confPath, "-e", filepath.Join(s.dir, "error.log"))
	cmd.Stdout = s.stderr
	cmd.Stderr = s.stderr
	// Its own process group, so Stop reaches the workers too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("nginx: start %s: %w", bin, err)
	}
	s.cmd = cmd
	go func() { s.waitErr = cmd.Wait(); close(s.done) }()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.done:
			log, _ := os.ReadFile(filepath.Join(s.dir, "error.log"))
			return fmt.Errorf("nginx: exited at start (%v): %s%s", s.waitErr, strings.TrimSpace(s.stderr.String()), lastLines(log, 5))
		case <-ctx.Done():
			s.kill()
			return ctx.Err()
		case <-deadline.C:
			s.kill()
			return fmt.Errorf("nginx: not accepting on %s after 10s", s.addr)
		case <-tick.C:
			c, err := net.DialTimeout("tcp", s.addr, 200*time.Millisecond)
			if err == nil {
				c.Close()
				return nil
			}
		}
	}
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return ""
	}
	return "\n" + strings.Join(lines, "\n")
}

func (s *Server) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
}

// Stop shuts nginx down (a fast shutdown, then a kill after 5 s) and
// removes the directory if Start created it.
func (s *Server) Stop() error {
	if s.cmd != nil && s.cmd.Process != nil {
		select {
		case <-s.done:
		default:
			_ = s.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.done:
			case <-time.After(5 * time.Second):
				s.kill()
			}
		}
		// Workers are in the same group; make sure none outlive the master.
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	}
	s.cleanup()
	return nil
}

func (s *Server) cleanup() {
	if s.ownDir && s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

func freePort(host string) (string, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", fmt.Errorf("nginx: find a free port on %s: %w", host, err)
	}
	defer l.Close()
	_, p, _ := net.SplitHostPort(l.Addr().String())
	return p, nil
}

func upstreamAddr(u string) (string, error) {
	if u == "" {
		return "", errors.New("nginx: no upstream")
	}
	if strings.Contains(u, "://") {
		pu, err := url.Parse(u)
		if err != nil {
			return "", fmt.Errorf("nginx: upstream %q: %w", u, err)
		}
		if pu.Scheme != "http" {
			return "", fmt.Errorf("nginx: upstream %q: only http is supported", u)
		}
		u = pu.Host
	}
	if _, _, err := net.SplitHostPort(u); err != nil {
		return "", fmt.Errorf("nginx: upstream %q: %w", u, err)
	}
	return u, nil
}

// rate renders a rate nginx accepts: whole requests per second, or per
// minute when below one per second or fractional.
func rate(r float64) string {
	if r == float64(int64(r)) {
		return strconv.FormatInt(int64(r), 10) + "r/s"
	}
	m := int64(r*60 + 0.5)
	if m < 1 {
		m = 1
	}
	return strconv.FormatInt(m, 10) + "r/m"
}

var confTmpl = template.Must(template.New("nginx.conf").Parse(`# generated by warden's lab; do not edit
worker_processes {{.Workers}};
daemon off;
master_process on;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;
{{if .Root}}user root;
{{end}}events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path {{.Dir}}/body;
  proxy_temp_path {{.Dir}}/proxy;
  fastcgi_temp_path {{.Dir}}/fastcgi;
  uwsgi_temp_path {{.Dir}}/uwsgi;
  scgi_temp_path {{.Dir}}/scgi;
  keepalive_requests 100000;
{{if .Rate}}  limit_req_zone $binary_remote_addr zone=perip:16m rate={{.Rate}};
  limit_req_status 429;
{{end}}  upstream platform {
    server {{.Upstream}};
    keepalive 128;
  }
  server {
    listen {{.Listen}};
    location / {
{{range .Deny}}      deny {{.}};
{{end}}{{if .Deny}}      allow all;
{{end}}{{if .Rate}}      limit_req zone=perip burst={{.Burst}} nodelay;
{{end}}      proxy_pass http://platform;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_buffering on;
    }
  }
}
`))

func render(cfg Config, listen, upstream, dir string) ([]byte, error) {
	w := cfg.Workers
	if w <= 0 {
		w = 1
	}
	data := struct {
		Workers  int
		Dir      string
		Root     bool
		Rate     string
		Burst    int
		Upstream string
		Listen   string
		Deny     []string
	}{w, dir, os.Geteuid() == 0, "", cfg.Burst, upstream, listen, cfg.Deny}
	if cfg.RatePerSecond > 0 {
		data.Rate = rate(cfg.RatePerSecond)
	}
	var b bytes.Buffer
	if err := confTmpl.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("nginx: render config: %w", err)
	}
	return b.Bytes(), nil
}
