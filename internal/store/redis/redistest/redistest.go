// Package redistest starts real redis-server processes for tests: one
// standalone server or a Redis Cluster of three masters (StartCluster),
// with replicas to test failover (StartClusterWith), on free loopback ports
// in a temporary directory, stopped at the test's cleanup.
//
// StartWith adds a password and a TLS port (with a throwaway CA) to a
// standalone server, to test how clients authenticate.
//
// It must never skip a test: a missing redis-server or redis-cli fails it with
// a message saying what to install. It never listens beyond 127.0.0.1.
package redistest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
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

// Pause stops the server's process (SIGSTOP) without closing its
// connections: a hung Redis, whose clients wait for their timeouts.
func (s *Server) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() { s.signal(syscall.SIGCONT) }

func (s *Server) signal(sig os.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		if err := s.cmd.Process.Signal(sig); err != nil {
			s.t.Errorf("redistest: %v: %v", sig, err)
		}
	}
}

// Running reports whether the server's process is up (not killed).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Do sends one command over a fresh plain connection, authenticated first
// when the server has a password, and returns its reply as text (arrays
// joined by newlines), or the server's error.
func (s *Server) Do(args ...string) (string, error) {
	out, err := s.DoAll(args)
	if err != nil {
		return "", err
	}
	return out[0], nil
}

// DoAll sends commands one after the other on one fresh connection, as Do
// sends one, and returns their replies; it stops at the first error. One
// connection matters to commands that depend on what the same client did
// before, as WAIT does.
func (s *Server) DoAll(cmds ...[]string) ([]string, error) {
	c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	if s.password != "" {
		if _, err := roundTrip(c, r, "AUTH", s.password); err != nil {
			return nil, fmt.Errorf("AUTH: %w", err)
		}
	}
	out := make([]string, 0, len(cmds))
	for _, args := range cmds {
		reply, err := roundTrip(c, r, args...)
		if err != nil {
			return out, err
		}
		out = append(out, reply)
	}
	return out, nil
}

// WaitReplicas writes a marker key on the server (key must hash to a slot it
// serves), then, on the same connection, runs WAIT n timeout, and returns
// how many replicas acknowledged. WAIT waits for the writes of its own
// connection only: on a connection that wrote nothing it returns at once
// with every connected replica, whatever it has received. The marker makes
// it cover every write the server took before it, since one replication
// stream carries them in order.
func (s *Server) WaitReplicas(key string, n int, timeout time.Duration) (int, error) {
	out, err := s.DoAll(
		[]string{"SET", key, "redistest-wait"},
		[]string{"WAIT", strconv.Itoa(n), strconv.FormatInt(timeout.Milliseconds(), 10)},
	)
	if err != nil {
		return 0, fmt.Errorf("SET then WAIT on %s: %w", s.Addr(), err)
	}
	return strconv.Atoi(out[1])
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

// Cluster is a Redis Cluster: three masters, and the replicas
// StartClusterWith asked for. Roles change on failover: ask MasterOf and
// ReplicasOf rather than relying on the order of Nodes.
type Cluster struct {
	// Nodes are every node, in the order they were started.
	Nodes []*Server

	t        testing.TB
	replicas int
}

// Addrs are the nodes' host:port, for a client's seed list.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr()
	}
	return out
}

// ClusterOptions configure StartClusterWith; the zero value is StartCluster's.
type ClusterOptions struct {
	// Replicas per master. With replicas, a master that dies is replaced by
	// its replica after about NodeTimeout plus one or two seconds.
	Replicas int
	// NodeTimeout is cluster-node-timeout: how long a node may not answer
	// before it is judged failed. Default 2s without replicas, 1s with
	// (a failover then happens within a few seconds).
	NodeTimeout time.Duration
	// PartialCoverage sets cluster-require-full-coverage no: while a
	// master is failed and not yet replaced, the other masters keep
	// serving their slots. With Redis's default (yes) every node refuses
	// every key (CLUSTERDOWN) from when the master is judged failed until
	// its replica takes over.
	PartialCoverage bool
}

// clusterMasters is the number of masters every cluster has.
const clusterMasters = 3

// clusterTimeout bounds redis-cli --cluster create.
const clusterTimeout = 30 * time.Second

// StartCluster runs three cluster-enabled servers and joins them with
// redis-cli --cluster create, then waits until every node reports
// cluster_state:ok.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	return StartClusterWith(t, ClusterOptions{})
}

// StartClusterWith runs three masters and opts.Replicas replicas of each,
// joined with redis-cli --cluster create, and waits until the cluster is
// healthy: every node reports cluster_state:ok and knows every other one
// with its role, and every replica's link to its master is up (its initial
// sync is done).
func StartClusterWith(t testing.TB, opts ClusterOptions) *Cluster {
	t.Helper()
	if opts.Replicas < 0 {
		t.Fatalf("redistest: ClusterOptions.Replicas %d is negative", opts.Replicas)
	}
	timeout := opts.NodeTimeout
	if timeout <= 0 {
		timeout = 2 * time.Second
		if opts.Replicas > 0 {
			timeout = time.Second
		}
	}
	cli := lookPath(t, "redis-cli")
	c := &Cluster{t: t, replicas: opts.Replicas}
	extra := []string{
		"--cluster-enabled", "yes",
		"--cluster-config-file", "nodes.conf",
		"--cluster-node-timeout", strconv.FormatInt(timeout.Milliseconds(), 10),
	}
	if opts.PartialCoverage {
		extra = append(extra, "--cluster-require-full-coverage", "no")
	}
	if opts.Replicas > 0 {
		// A master otherwise waits 5 s for more replicas before it sends
		// the first one its data.
		extra = append(extra, "--repl-diskless-sync-delay", "0")
	}
	for range clusterMasters * (1 + opts.Replicas) {
		c.Nodes = append(c.Nodes, start(t, Options{}, extra, true))
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(opts.Replicas), "--cluster-yes")
	out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(startTimeout)
	for _, n := range c.Nodes {
		for {
			problem := c.nodeUnhealthy(n)
			if problem == "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redistest: cluster node %s not healthy within %v: %s", n.Addr(), startTimeout, problem)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c
}

// nodeUnhealthy says what is not yet right with n in a cluster just
// created, "" when nothing.
func (c *Cluster) nodeUnhealthy(n *Server) string {
	info, err := n.Do("CLUSTER", "INFO")
	if err != nil {
		return fmt.Sprintf("CLUSTER INFO: %v", err)
	}
	if !strings.Contains(info, "cluster_state:ok") {
		return "cluster_state is not ok"
	}
	if c.replicas == 0 {
		return "" // StartCluster's readiness, as it always was
	}
	view, err := clusterView(n)
	if err != nil {
		return err.Error()
	}
	var replicas int
	for _, v := range view {
		if v.has("handshake") || v.has("noaddr") || v.has("fail?") || v.has("fail") {
			return fmt.Sprintf("it sees node %s with flags %s", v.addr, v.flags)
		}
		if v.has("slave") {
			replicas++
		}
	}
	if len(view) != len(c.Nodes) || replicas != clusterMasters*c.replicas {
		return fmt.Sprintf("it knows %d nodes, %d of them replicas; want %d and %d", len(view), replicas, len(c.Nodes), clusterMasters*c.replicas)
	}
	if me := view.self(); me != nil && me.has("slave") {
		repl, err := n.Do("INFO", "replication")
		if err != nil {
			return fmt.Sprintf("INFO replication: %v", err)
		}
		if !strings.Contains(repl, "master_link_status:up") {
			return "its link to its master is not up"
		}
	}
	return ""
}

// clusterNode is one line of CLUSTER NODES.
type clusterNode struct {
	id     string
	addr   string // host:port, without the bus port
	flags  string // comma-separated: myself, master, slave, fail?, fail...
	master string // the master's id for a replica, "-" for a master
	slots  [][2]int
}

func (n *clusterNode) has(flag string) bool {
	for f := range strings.SplitSeq(n.flags, ",") {
		if f == flag {
			return true
		}
	}
	return false
}

func (n *clusterNode) serves(slot int) bool {
	for _, r := range n.slots {
		if r[0] <= slot && slot <= r[1] {
			return true
		}
	}
	return false
}

type clusterNodes []clusterNode

func (v clusterNodes) self() *clusterNode {
	for i := range v {
		if v[i].has("myself") {
			return &v[i]
		}
	}
	return nil
}

// clusterView is the cluster as n sees it (CLUSTER NODES).
func clusterView(n *Server) (clusterNodes, error) {
	out, err := n.Do("CLUSTER", "NODES")
	if err != nil {
		return nil, fmt.Errorf("CLUSTER NODES on %s: %w", n.Addr(), err)
	}
	var view clusterNodes
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 {
			return nil, fmt.Errorf("CLUSTER NODES on %s: unexpected line %q", n.Addr(), line)
		}
		addr, _, _ := strings.Cut(f[1], "@")
		addr, _, _ = strings.Cut(addr, ",") // a hostname may follow
		cn := clusterNode{id: f[0], addr: addr, flags: f[2], master: f[3]}
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") {
				continue // a slot being migrated or imported
			}
			lo, hi, ok := strings.Cut(r, "-")
			if !ok {
				hi = lo
			}
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("CLUSTER NODES on %s: bad slot range %q", n.Addr(), r)
			}
			cn.slots = append(cn.slots, [2]int{a, b})
		}
		view = append(view, cn)
	}
	return view, nil
}

// node is the Server listening on addr, nil if none of the cluster's.
func (c *Cluster) node(addr string) *Server {
	for _, n := range c.Nodes {
		if n.Addr() == addr {
			return n
		}
	}
	return nil
}

// anyRunning is a node that is up, to ask about the cluster.
func (c *Cluster) anyRunning() *Server {
	c.t.Helper()
	for _, n := range c.Nodes {
		if n.Running() {
			return n
		}
	}
	c.t.Fatalf("redistest: no cluster node is running")
	return nil
}

// Slot is the hash slot of key (CLUSTER KEYSLOT).
func (c *Cluster) Slot(key string) int {
	c.t.Helper()
	n := c.anyRunning()
	out, err := n.Do("CLUSTER", "KEYSLOT", key)
	if err != nil {
		c.t.Fatalf("redistest: CLUSTER KEYSLOT on %s: %v", n.Addr(), err)
	}
	slot, err := strconv.Atoi(out)
	if err != nil {
		c.t.Fatalf("redistest: CLUSTER KEYSLOT on %s: reply %q: %v", n.Addr(), out, err)
	}
	return slot
}

// MasterOf is the node that serves key's slot, as a running node sees it.
func (c *Cluster) MasterOf(key string) *Server {
	c.t.Helper()
	slot := c.Slot(key)
	n := c.anyRunning()
	view, err := clusterView(n)
	if err != nil {
		c.t.Fatalf("redistest: %v", err)
	}
	for _, v := range view {
		if v.has("master") && v.serves(slot) {
			if s := c.node(v.addr); s != nil {
				return s
			}
			c.t.Fatalf("redistest: slot %d is served by %s, not a node of this cluster", slot, v.addr)
		}
	}
	c.t.Fatalf("redistest: %s sees no master for slot %d", n.Addr(), slot)
	return nil
}

// ReplicasOf are the replicas of master, as master sees them.
func (c *Cluster) ReplicasOf(master *Server) []*Server {
	c.t.Helper()
	view, err := clusterView(master)
	if err != nil {
		c.t.Fatalf("redistest: %v", err)
	}
	me := view.self()
	if me == nil {
		c.t.Fatalf("redistest: CLUSTER NODES on %s has no myself line", master.Addr())
	}
	var out []*Server
	for _, v := range view {
		if v.master == me.id {
			if s := c.node(v.addr); s != nil {
				out = append(out, s)
			}
		}
	}
	return out
}

// WaitFailover waits, up to timeout, until a running node other than old
// serves key's slot, as every running node sees it, and every running node
// reports cluster_state:ok; it returns the new master. Kill old first.
func (c *Cluster) WaitFailover(key string, old *Server, timeout time.Duration) *Server {
	c.t.Helper()
	slot := c.Slot(key)
	deadline := time.Now().Add(timeout)
	for {
		m, problem := c.failedOver(slot, old)
		if problem == "" {
			return m
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("redistest: slot %d not failed over from %s within %v: %s", slot, old.Addr(), timeout, problem)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// failedOver returns slot's new master when every running node agrees on
// one that is not old and is up, or says what is not yet so.
func (c *Cluster) failedOver(slot int, old *Server) (*Server, string) {
	var agreed *Server
	for _, n := range c.Nodes {
		if !n.Running() {
			continue
		}
		info, err := n.Do("CLUSTER", "INFO")
		if err != nil {
			return nil, fmt.Sprintf("CLUSTER INFO on %s: %v", n.Addr(), err)
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return nil, fmt.Sprintf("%s: cluster_state is not ok", n.Addr())
		}
		view, err := clusterView(n)
		if err != nil {
			return nil, err.Error()
		}
		var m *Server
		for _, v := range view {
			if v.has("master") && !v.has("fail") && v.serves(slot) {
				m = c.node(v.addr)
			}
		}
		switch {
		case m == nil:
			return nil, fmt.Sprintf("%s sees no live master for the slot", n.Addr())
		case m == old || !m.Running():
			return nil, fmt.Sprintf("%s still sees %s as its master", n.Addr(), m.Addr())
		case agreed != nil && m != agreed:
			return nil, fmt.Sprintf("nodes disagree: %s and %s", agreed.Addr(), m.Addr())
		}
		agreed = m
	}
	if agreed == nil {
		return nil, "no node is running"
	}
	return agreed, ""
}
