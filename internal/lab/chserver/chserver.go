// Package chserver starts Debian's clickhouse-server (18.16 in Debian 12)
// for tests and benchmarks: its own directory, config and free loopback
// ports, so nothing the machine runs is touched. It is the one place that
// knows how; `warden bench ledger` and the ClickHouse tests use it.
//
// It must never listen beyond 127.0.0.1 or use the system's server.
package chserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Paths is where Debian's clickhouse-server package puts the binary.
var Paths = []string{"/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server", "/usr/bin/clickhouse"}

// ErrNotInstalled says how to get the server.
var ErrNotInstalled = errors.New("clickhouse-server not found (Debian: apt-get install clickhouse-server clickhouse-client; .ci/run installs it)")

// Find returns the server binary, "" when none is installed.
func Find() string {
	if p, err := exec.LookPath("clickhouse-server"); err == nil {
		return p
	}
	for _, p := range Paths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

const config = `<yandex>
  <logger><level>warning</level><console>1</console></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>%d</http_port>
  <tcp_port>%d</tcp_port>
  <path>%s/</path>
  <tmp_path>%s/tmp/</tmp_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
</yandex>
`

const users = `<yandex>
  <profiles><default><max_memory_usage>8000000000</max_memory_usage></default></profiles>
  <users>
    <default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default>
    <warden><password>%s</password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></warden>
  </users>
  <quotas><default></default></quotas>
</yandex>
`

// Server is one clickhouse-server process.
type Server struct {
	Bin      string
	Dir      string // its config, data and log
	HTTPPort int
	TCPPort  int
	Version  string
	// Password is the password of the user "warden" (the user "default"
	// has none); both accept 127.0.0.1 only.
	Password string
	cmd      *exec.Cmd
	done     chan struct{}
}

// Addr is the HTTP interface's address.
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.HTTPPort) }

// Start starts a server in dir (made when missing) on two free loopback
// ports and waits until it answers (at most 60 s).
func Start(ctx context.Context, dir string) (*Server, error) {
	bin := Find()
	if bin == "" {
		return nil, ErrNotInstalled
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, err
	}
	s := &Server{Bin: bin, Dir: dir, HTTPPort: freePort(), TCPPort: freePort(), Password: "warden-test"}
	if err := os.WriteFile(filepath.Join(dir, "config.xml"), fmt.Appendf(nil, config, s.HTTPPort, s.TCPPort, dir+"/data", dir+"/data"), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "users.xml"), fmt.Appendf(nil, users, s.Password), 0o600); err != nil {
		return nil, err
	}
	return s, s.run(ctx)
}

// run starts the process with the files in s.Dir and waits for it.
func (s *Server) run(ctx context.Context) error {
	args := []string{"--config-file=" + filepath.Join(s.Dir, "config.xml")}
	if filepath.Base(s.Bin) == "clickhouse" {
		args = append([]string{"server"}, args...)
	}
	cmd := exec.Command(s.Bin, args...)
	logf, err := os.OpenFile(filepath.Join(s.Dir, "server.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr, cmd.Dir = logf, logf, s.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", s.Bin, err)
	}
	logf.Close()
	s.cmd, s.done = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(s.done) }()
	for i := 0; ; i++ {
		v, err := s.Query(ctx, "SELECT version()", nil)
		if err == nil {
			s.Version = v
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("%s exited at start; log: %s", s.Bin, s.logTail())
		default:
		}
		if i >= 600 || ctx.Err() != nil {
			s.Kill()
			return fmt.Errorf("%s did not answer within 60 s: %v; log: %s", s.Bin, err, s.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "server.log"))
	l := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(l) > 5 {
		l = l[len(l)-5:]
	}
	return strings.Join(l, " | ")
}

// Stop ends the server gracefully (SIGTERM; SIGKILL after 20 s).
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// Kill ends the server outright (SIGKILL), as a crash would.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart starts the server again on the same directory and ports.
func (s *Server) Restart(ctx context.Context) error {
	if s.cmd != nil {
		return errors.New("chserver: restart of a running server")
	}
	return s.run(ctx)
}

// Query runs q over the HTTP interface as the user "default", with body
// as its input, and returns the output without its last newline.
func (s *Server) Query(ctx context.Context, q string, body io.Reader) (string, error) {
	if body == nil {
		body = strings.NewReader("")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+s.Addr()+"/?query="+url.QueryEscape(q), body)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		first, _, _ := strings.Cut(q, "\n")
		return "", fmt.Errorf("clickhouse: %s: %s", first, strings.TrimSpace(string(b)))
	}
	return strings.TrimSpace(string(b)), nil
}

// ForTest starts a server for t in a temporary directory and stops it
// when t ends. A missing binary fails t with how to install it: the
// ClickHouse tests are part of the suite, not skipped.
func ForTest(t testing.TB) *Server {
	t.Helper()
	s, err := Start(context.Background(), t.TempDir())
	if err != nil {
		t.Fatalf("clickhouse: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
