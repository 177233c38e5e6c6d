// Package redistest starts real redis-server processes for tests: one
// standalone server or a three-node Redis Cluster, on free loopback ports in
// a temporary directory, stopped at the test's cleanup.
//
// StartWith adds a password and a TLS port (with a throwaway CA) to a
// standalone server, to test how clients authenticate.
//
// It must never skip a test: a missing redis-server or redis-cli fails it with
// a message saying what to install. It never listens beyond 127.0.0.1.
package redistest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startTimeout bounds how long a server may take to answer PING.
const startTimeout = 15 * time.Second

// Server is one redis-server process.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	args []string
	// password is sent with AUTH by Do; empty: none.
	password string
	// tlsPort is 0 without TLS.
	tlsPort int
	caPEM   []byte

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// TLSAddr is the host:port of the server's TLS port, "" when started
// without TLS.
func (s *Server) TLSAddr() string {
	if s.tlsPort == 0 {
		return ""
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.tlsPort))
}

// CAFile is the PEM file of the CA that signed the server's certificate
// and ClientCertFiles', "" when started without TLS.
func (s *Server) CAFile() string {
	if s.tlsPort == 0 {
		return ""
	}
	return filepath.Join(s.dir, caFile)
}

// CAPEM is CAFile's content.
func (s *Server) CAPEM() []byte { return s.caPEM }

// ClientCertFiles are the PEM certificate and key of a client the TLS port
// accepts (signed by the CA), "" when started without TLS.
func (s *Server) ClientCertFiles() (cert, key string) {
	if s.tlsPort == 0 {
		return "", ""
	}
	return filepath.Join(s.dir, clientCertFile), filepath.Join(s.dir, clientKeyFile)
}

func lookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("redistest: %s not found in PATH (%v): these tests need a real Redis; install it (Debian/Ubuntu: apt-get install redis-server, which also brings redis-cli)", name, err)
	}
	return p
}

// freePorts asks the kernel for n distinct free loopback ports. Another
// process may take one before redis-server binds it; start then retries.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("redistest: find a free port: %v", err)
		}
		defer l.Close() // held until all are chosen, so they differ
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// startAttempts bounds the retries when a chosen port was taken meanwhile.
const startAttempts = 5

// Start runs a standalone redis-server with no persistence and the DEBUG
// command enabled for local clients (tests use DEBUG SLEEP to make it slow).
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, Options{}, nil, false)
}

// Options configure StartWith's server; the zero value is Start's.
type Options struct {
	// Password is required of every client (requirepass). Do sends it.
	Password string
	// TLS opens a TLS port (TLSAddr) beside the plain one (Addr, which Do
	// keeps using), with a server certificate for 127.0.0.1 and localhost
	// signed by a CA made for this server (CAFile). A client certificate is
	// optional.
	TLS bool
	// RequireClientCert makes the TLS port refuse clients without a
	// certificate signed by the CA (tls-auth-clients yes). Needs TLS.
	RequireClientCert bool
	// Port, when set, is the plain port to listen on (a test that has a
	// client dialling it before the server starts); otherwise one is chosen.
	Port int
}

// StartWith runs a standalone server as Start does, with opts.
func StartWith(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.RequireClientCert && !opts.TLS {
		t.Fatalf("redistest: RequireClientCert needs TLS")
	}
	return start(t, opts, nil, false)
}

// start runs one server. A cluster node also needs its bus port; it is
// chosen free like the client port rather than left at Redis's default of
// port+10000, which another test's server may hold.
func start(t testing.TB, opts Options, extra []string, clusterBus bool) *Server {
	t.Helper()
	bin := lookPath(t, "redis-server")
	var err error
	for range startAttempts {
		s := &Server{t: t, bin: bin, dir: t.TempDir(), password: opts.Password}
		nports := 1
		if clusterBus {
			nports++
		}
		if opts.TLS {
			nports++
		}
		ports := freePorts(t, nports)
		s.port = ports[0]
		if opts.Port != 0 {
			s.port = opts.Port
		}
		s.args = []string{
			"--port", strconv.Itoa(s.port),
			"--bind", "127.0.0.1",
			"--dir", s.dir,
			"--save", "",
			"--appendonly", "no",
			"--daemonize", "no",
			"--enable-debug-command", "local",
			"--logfile", filepath.Join(s.dir, "redis.log"),
		}
		if clusterBus {
			s.args = append(s.args, "--cluster-port", strconv.Itoa(ports[1]))
		}
		if opts.Password != "" {
			s.args = append(s.args, "--requirepass", opts.Password)
		}
		if opts.TLS {
			s.tlsPort = ports[nports-1]
			if s.caPEM, err = writePKI(s.dir); err != nil {
				t.Fatalf("redistest: %v", err)
			}
			auth := "optional"
			if opts.RequireClientCert {
				auth = "yes"
			}
			s.args = append(s.args,
				"--tls-port", strconv.Itoa(s.tlsPort),
				"--tls-cert-file", filepath.Join(s.dir, serverCertFile),
				"--tls-key-file", filepath.Join(s.dir, serverKeyFile),
				"--tls-ca-cert-file", filepath.Join(s.dir, caFile),
				"--tls-auth-clients", auth,
			)
		}
		s.args = append(s.args, extra...)
		if err = s.launch(); err == nil {
			t.Cleanup(s.Kill)
			return s
		}
		if !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	t.Fatalf("redistest: %v", err)
	return nil
}

func (s *Server) launch() error {
	cmd := exec.Command(s.bin, s.args...)
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server on port %d: %w", s.port, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(startTimeout)
	for {
		if _, err := s.Do("PING"); err == nil {
			break
		}
		select {
		case <-done:
			return fmt.Errorf("redis-server on port %d exited at start; its log: %s", s.port, s.logTail())
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("redis-server on port %d did not answer PING within %v; its log: %s", s.port, startTimeout, s.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	go func() { <-done; s.mu.Lock(); s.cmd = nil; s.mu.Unlock() }()
	return nil
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// Kill stops the server at once (SIGKILL), as a crash would. Idempotent.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	// Wait until the ports are free, so Restart can bind them.
	for _, addr := range []string{s.Addr(), s.TLSAddr()} {
		if addr != "" {
			waitClosed(addr)
		}
	}
}

// waitClosed waits, up to about 12 s, until nothing accepts on addr.
func waitClosed(addr string) {
	for range 200 {
		c, err := net.DialTimeout("tcp", addr, 50*time.Millisecond)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
}

// Restart starts the server again on the same port, empty (no persistence).
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	if err := s.launch(); err != nil {
		s.t.Fatalf("redistest: restart: %v", err)
	}
}

// Do sends one command over a fresh plain connection, authenticated first
// when the server has a password, and returns its reply as text (arrays
// joined by newlines), or the server's error.
func (s *Server) Do(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	if s.password != "" {
		if _, err := roundTrip(c, r, "AUTH", s.password); err != nil {
			return "", fmt.Errorf("AUTH: %w", err)
		}
	}
	return roundTrip(c, r, args...)
}

// roundTrip sends one command on c and reads its reply from r.
func roundTrip(c net.Conn, r *bufio.Reader, args ...string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	return readReply(r)
}

func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", fmt.Errorf("redis: %s", line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", err
		}
		parts := make([]string, 0, max(n, 0))
		for range n {
			p, err := readReply(r)
			if err != nil {
				return "", err
			}
			parts = append(parts, p)
		}
		return strings.Join(parts, "\n"), nil
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}

// Cluster is a Redis Cluster of three masters, no replicas.
type Cluster struct {
	Nodes []*Server
}

// Addrs are the nodes' host:port, for a client's seed list.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr()
	}
	return out
}

// StartCluster runs three cluster-enabled servers and joins them with
// redis-cli --cluster create, then waits until every node reports
// cluster_state:ok.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	cli := lookPath(t, "redis-cli")
	c := &Cluster{}
	for range 3 {
		c.Nodes = append(c.Nodes, start(t, Options{}, []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000",
		}, true))
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	out, err := exec.Command(cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(startTimeout)
	for _, n := range c.Nodes {
		for {
			info, err := n.Do("CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redistest: node %s not ready within %v: %q, %v", n.Addr(), startTimeout, info, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}
