// Package chserver starts Debian's clickhouse-server (18.16 in Debian 12)
// for tests and benchmarks: its own directory, config and free loopback
// ports, so nothing the machine runs is touched. It is the one place that
// knows how; `warden bench ledger` and the ClickHouse tests use it.
//
// Each server runs from its own copy of the binary (a system service
// stop matches the system's binary: ownCopy), logs to DIR/log (LogPaths;
// LogTail for an error's context), reports how it ended when it ended on
// its own (Exited), and runs queries with settings for a 2-core machine
// and a load of 100,000,000 rows (users).
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

// config is the server's: its own log and error log under log/ (kept,
// rotated at 100 MB, so a server that goes away leaves its reason where
// LogPaths says), and caches sized for a shared 2-core machine rather than
// 18.16's defaults (8 GiB of uncompressed cache, 5 GiB of marks).
const config = `<yandex>
  <logger>
    <level>information</level>
    <log>%[5]s/log/clickhouse-server.log</log>
    <errorlog>%[5]s/log/clickhouse-server.err.log</errorlog>
    <size>100M</size>
    <count>3</count>
  </logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>%[1]d</http_port>
  <tcp_port>%[2]d</tcp_port>
  <path>%[3]s/</path>
  <tmp_path>%[4]s/tmp/</tmp_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
  <keep_alive_timeout>30</keep_alive_timeout>
</yandex>
`

// users is the profile every query runs with. max_threads is the
// machine's 2 cores; a query may use 4 GB and all of them 8 GB, the
// server's whole budget on a 24 GiB machine shared with the gateway under
// test; an insert forms blocks of 1,048,576 rows (each a part per day it
// spans, so a load of 100,000,000 rows makes about 130 parts); merges run
// on 4 threads (18.16's 16 compete with the insert for 2 cores); the HTTP
// interface waits an hour for a long load's next bytes or OPTIMIZE's
// answer instead of 18.16's 30 minutes.
const users = `<yandex>
  <profiles><default>
    <max_threads>2</max_threads>
    <max_memory_usage>4000000000</max_memory_usage>
    <max_memory_usage_for_all_queries>8000000000</max_memory_usage_for_all_queries>
    <max_insert_block_size>1048576</max_insert_block_size>
    <background_pool_size>4</background_pool_size>
    <http_receive_timeout>3600</http_receive_timeout>
    <http_send_timeout>3600</http_send_timeout>
    <receive_timeout>3600</receive_timeout>
    <send_timeout>3600</send_timeout>
  </default></profiles>
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
	exit     error // cmd.Wait's, once done is closed
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
	bin, err := ownCopy(bin, dir)
	if err != nil {
		return nil, err
	}
	s := &Server{Bin: bin, Dir: dir, HTTPPort: freePort(), TCPPort: freePort(), Password: "warden-test"}
	if err := os.WriteFile(filepath.Join(dir, "config.xml"), fmt.Appendf(nil, config, s.HTTPPort, s.TCPPort, dir+"/data", dir+"/data", dir), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "users.xml"), fmt.Appendf(nil, users, s.Password), 0o600); err != nil {
		return nil, err
	}
	return s, s.run(ctx)
}

// ownCopy copies Debian's server binary (1.1 MB; its code is in
// libclickhouse.so) into dir and returns the copy's path. Debian's
// `service clickhouse-server stop` (which .ci/run calls) stops every
// process whose executable is /usr/sbin/clickhouse-server, matched by
// inode (start-stop-daemon --exec, no --user or pid file): a CI run
// anywhere on the machine would stop every test's and bench's server,
// SIGKILL 30 s after SIGTERM. A copy is another inode. Larger binaries
// (the all-in-one /usr/bin/clickhouse) run from where they are.
func ownCopy(bin, dir string) (string, error) {
	fi, err := os.Stat(bin)
	if err != nil || fi.Size() > 64<<20 {
		return bin, nil
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		return "", fmt.Errorf("chserver: copy %s: %w", bin, err)
	}
	p := filepath.Join(dir, filepath.Base(bin))
	if err := os.WriteFile(p, b, 0o700); err != nil {
		return "", fmt.Errorf("chserver: copy %s: %w", bin, err)
	}
	return p, nil
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
	done := s.done
	go func() { s.exit = cmd.Wait(); close(done) }()
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

// LogPaths are the server's logs: its stdout and stderr (what it prints
// before its logger is up, and a crash's last words), its log and its
// error log.
func (s *Server) LogPaths() []string {
	return []string{filepath.Join(s.Dir, "server.log"), filepath.Join(s.Dir, "log", "clickhouse-server.log"),
		filepath.Join(s.Dir, "log", "clickhouse-server.err.log")}
}

// LogTail is the last n lines of the error log, or of stdout and stderr
// when the error log has none: what to show beside an error from the
// server.
func (s *Server) LogTail(n int) string {
	p := s.LogPaths()
	var l []string
	for _, f := range []string{p[2], p[0]} {
		b, _ := os.ReadFile(f)
		for _, line := range strings.Split(string(b), "\n") {
			// An exception's stack frames ("12. /lib/...") would push
			// out the lines that say what went wrong.
			if line = strings.TrimSpace(line); line != "" && !stackFrame(line) {
				l = append(l, line)
			}
		}
		if len(l) > 0 {
			break
		}
	}
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, " | ")
}

// stackFrame says whether line is a frame of a stack trace: a number,
// a dot and a space.
func stackFrame(line string) bool {
	i := 0
	for i < len(line) && line[i] >= '0' && line[i] <= '9' {
		i++
	}
	return i > 0 && strings.HasPrefix(line[i:], ". ")
}

func (s *Server) logTail() string { return s.LogTail(5) }

// Exited says whether the process has ended on its own (neither Stop nor
// Kill): nil while it runs, else how it ended (exit status or signal) and
// its error log's last lines.
func (s *Server) Exited() error {
	if s.cmd == nil {
		return nil
	}
	select {
	case <-s.done:
		return fmt.Errorf("%s (pid %d) ended: %v; log %s: %s", s.Bin, s.cmd.Process.Pid, s.exit, s.LogPaths()[2], s.LogTail(10))
	default:
		return nil
	}
}

// Done is closed when the process has ended (on its own, or by Stop or
// Kill); nil before Start.
func (s *Server) Done() <-chan struct{} { return s.done }

// Pid is the process's id, 0 when it is not running.
func (s *Server) Pid() int {
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// RSS is the process's resident memory now and at its peak (VmRSS and
// VmHWM in /proc, bytes); zeros when it has ended or /proc is not Linux's.
func (s *Server) RSS() (now, peak int64) {
	if s.cmd == nil {
		return 0, 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		var kb int64
		fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb)
		if k == "VmRSS" {
			now = kb << 10
		} else {
			peak = kb << 10
		}
	}
	return now, peak
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
