package e2e

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/store/redis/redistest"
)

// Every refusal's request_id leads to `warden explain`, the ones warden
// makes at its edge too, before any rule is asked: a CONNECT, an
// ambiguous path, a body over the bound, an HTTP version it does not
// serve, a header over the bound, a header not read in time. On each front, through the real gateway in front of the lab
// platform: the body names rule request and the reason, and warden
// explain (the command's --json and table, and the admin API) finds the
// request under the body's id with its status, rule and reason, the
// peer's ip and net, the account only where it was identified, the route
// where the path matched one, and no budget or rate limit rows.
func TestEdgeRefusalsExplained(t *testing.T) {
	up := startPlatform(t, 200)
	for _, front := range fronts {
		t.Run(front, func(t *testing.T) {
			// Logged at info, in JSON: the refused lines are read.
			cfg := "front: " + front + "\nserver: {max_header_bytes: 4096, max_body_bytes: 2048, read_header_timeout: 1s}\n" +
				strings.Replace(ledgerConfig(t.TempDir(), 6), "log: {format: text, level: warn}", "log: {format: json}", 1)
			g := startGateway(t, cfg, up)
			bearer := "Authorization: Bearer " + token(t, "41") + "\r\n"
			type edge struct {
				name, request string
				status        int
				reason, route string
				account       bool
			}
			cases := []edge{
				{"CONNECT", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n" + bearer + "\r\n", 405, "connect", "", true},
				// An encoded slash: one segment to warden, two to the
				// platform. The raw path is the route's; the token was read.
				{"ambiguous path", "GET /v1/users/7%2F8 HTTP/1.1\r\nHost: api.test\r\n" + bearer + "Connection: close\r\n\r\n", 400, "ambiguous_path", "GET /v1/users/{id}", true},
				// Over max_body_bytes by its Content-Length: the header was
				// read (POST: no route of the map).
				{"body too large", "POST /v1/users/7 HTTP/1.1\r\nHost: api.test\r\n" + bearer + "Content-Length: 4096\r\nConnection: close\r\n\r\n" +
					strings.Repeat("b", 4096), 413, "body_too_large", "", true},
			}
			cases = append(cases,
				// On std, net/http's own 505, replaced by warden's on a
				// cleartext connection: the peer alone.
				edge{"HTTP/9.9", "GET /v1/users/7 HTTP/9.9\r\nHost: api.test\r\n" + bearer + "\r\n", 505, "malformed", "", front != "std"},
				// Nothing of the header is read: the peer alone.
				edge{"header too large", "GET /v1/users/7 HTTP/1.1\r\nHost: api.test\r\n" + bearer + "X-Pad: " + strings.Repeat("a", 8192) + "\r\n\r\n", 431, "header_too_large", "", false},
				// Half a header, then nothing until read_header_timeout (1s;
				// read_timeout is 60s, rawFrom waits 10s); on std net/http
				// would close without an answer.
				edge{"read timeout", "GET /v1/users/7 HTTP/1.1\r\nHost: api.test\r\n" + bearer, 408, "read_timeout", "", false})
			if front == "std" {
				// Past the slack warden gives net/http (64 KiB): net/http's
				// own 431, replaced by warden's.
				cases = append(cases, edge{"header far too large", "GET /v1/users/7 HTTP/1.1\r\nHost: api.test\r\n" + bearer + "X-Pad: " + strings.Repeat("a", 80<<10) + "\r\n\r\n", 431, "header_too_large", "", false})
			}
			const peer = "127.0.8.1"
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					a := rawFrom(t, g, peer, c.request)
					r := refusalOf(t, a)
					if a.status != c.status || r.Rule != "request" || r.Facet != c.reason || a.header.Get("X-Request-Id") != r.RequestID {
						t.Fatalf("%d %s (X-Request-Id %q), want %d by rule request, reason %s", a.status, a.body, a.header.Get("X-Request-Id"), c.status, c.reason)
					}
					// Logged as every refusal is: one "refused" line with
					// its id, status, rule and reason, never the token.
					line := refusedLine(t, g, r.RequestID)
					if line["level"] != "INFO" || line["status"] != float64(c.status) || line["rule"] != "request" || line["facet"] != c.reason {
						t.Errorf("refused line %v, want level INFO, status %d, rule request, facet %s", line, c.status, c.reason)
					}
					x, raw := explainFound(t, g, r.RequestID)
					want := map[string]string{"ip": peer, "net": "127.0.8.0/24"}
					if c.account { // the header was read: its fingerprint too
						want["account"] = "41"
						want["fingerprint"] = x.Identity["fingerprint"]
					}
					if x.Decision != "refused" || x.Status != c.status || x.Rule != "request" || x.Facet != c.reason || x.Route != c.route ||
						x.RequestID != r.RequestID || !reflect.DeepEqual(x.Identity, want) || c.account && want["fingerprint"] == "" ||
						len(x.Budgets) != 0 || len(x.RateLimits) != 0 {
						t.Fatalf("explain %s: %s\nwant status %d, rule request, reason %s, route %q, identity %v, no budget or limit rows",
							r.RequestID, raw, c.status, c.reason, c.route, want)
					}
					// The admin API answers the same JSON; the table says it.
					var fromAPI, fromCLI any
					api := adminDo(t, g, "GET", "/v1/ledger/explain?id="+r.RequestID, "")
					json.Unmarshal([]byte(api.body), &fromAPI)
					json.Unmarshal(raw, &fromCLI)
					if api.status != 200 || !reflect.DeepEqual(fromAPI, fromCLI) {
						t.Errorf("admin explain: %d %s\nwarden explain: %s", api.status, api.body, raw)
					}
					table, err := exec.Command(binPath, "explain", r.RequestID, "--config", g.config).CombinedOutput()
					if err != nil || !strings.Contains(string(table), fmt.Sprintf("refused (status %d): rule request, reason %s", c.status, c.reason)) ||
						!strings.Contains(string(table), "ip="+peer) {
						t.Errorf("explain table (%v):\n%s", err, table)
					}
				})
			}
			// Each is counted as every refusal is, by rule and reason (the
			// metrics endpoint): a CONNECT too, which breaks no server
			// bound and so is not among warden_bad_requests_total's.
			m := adminDo(t, g, "GET", "/metrics", "").body
			perReason := map[string]int{}
			for _, c := range cases {
				perReason[c.reason]++
			}
			for reason, n := range perReason {
				if want := fmt.Sprintf(`warden_refusals_total{facet=%q,rule="request"} %d`, reason, n); !strings.Contains(m, want+"\n") {
					t.Errorf("metrics lack %s:\n%s", want, grepLines(m, "warden_refusals_total"))
				}
			}
			if strings.Contains(m, `reason="connect"`) {
				t.Errorf("CONNECT counted as a broken bound:\n%s", grepLines(m, "warden_bad_requests_total"))
			}
		})
	}
}

// An upstream that gave no answer on a route the map does not inspect:
// warden's 502 names rule upstream and its request id, and warden explain
// finds it (no route), on each front.
func TestUnmappedUpstreamFailureExplained(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	for _, front := range fronts {
		t.Run(front, func(t *testing.T) {
			g := startGateway(t, "front: "+front+"\n"+ledgerConfig(t.TempDir(), 6), dead)
			a := do(t, clientFrom("127.0.8.2"), "GET", g.url+"/elsewhere", nil)
			r := refusalOf(t, a)
			if a.status != 502 || r.Rule != "upstream" {
				t.Fatalf("upstream down: %d %s", a.status, a.body)
			}
			x, raw := explainFound(t, g, r.RequestID)
			if x.Decision != "upstream_failed" || x.Status != 502 || x.Rule != "upstream" || x.Route != "" || x.Identity["ip"] != "127.0.8.2" {
				t.Fatalf("explain %s: %s", r.RequestID, raw)
			}
		})
	}
}

// refusedLine is the gateway's "refused" log line (JSON) of request id,
// awaited 10 s; it fails the test if the line names the bearer token of
// token(t, "41") or appears more than once.
func refusedLine(t *testing.T, g *gw, id string) map[string]any {
	t.Helper()
	secret := token(t, "41")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var found []map[string]any
		out := g.p.Output()
		for _, l := range strings.Split(out, "\n") {
			if !strings.Contains(l, id) {
				continue
			}
			if strings.Contains(l, secret) {
				t.Fatalf("a log line names the bearer token: %s", l)
			}
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "refused" && m["request_id"] == id {
				found = append(found, m)
			}
		}
		switch {
		case len(found) == 1:
			return found[0]
		case len(found) > 1:
			t.Fatalf("%d refused lines for %s:\n%s", len(found), id, grepLines(out, id))
		case time.Now().After(deadline):
			t.Fatalf("no refused line for %s:\n%s", id, out)
		}
	}
}

// edgeExplanation is what the test reads of warden explain's JSON.
type edgeExplanation struct {
	RequestID  string            `json:"request_id"`
	Route      string            `json:"route"`
	Status     int               `json:"status"`
	Decision   string            `json:"decision"`
	Rule       string            `json:"rule"`
	Facet      string            `json:"facet"`
	Identity   map[string]string `json:"identity"`
	Budgets    []any             `json:"budgets"`
	RateLimits []any             `json:"rate_limits"`
}

// explainFound runs warden explain ID --json on the gateway's ledger until
// it finds the request: the writer hands an Access over within a second
// (30 s: a hang, not a pace).
func explainFound(t *testing.T, g *gw, id string) (edgeExplanation, []byte) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out, err := exec.Command(binPath, "explain", id, "--config", g.config, "--json").Output()
		if err == nil {
			var x edgeExplanation
			if err := json.Unmarshal(out, &x); err != nil {
				t.Fatalf("explain %s: %v\n%s", id, err, out)
			}
			return x, out
		}
		var stderr []byte
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		if !strings.Contains(string(stderr), "no request") || time.Now().After(deadline) {
			t.Fatalf("explain %s: %v\n%s%s", id, err, out, stderr)
		}
	}
}

// rawFrom sends request, as written, on a connection from local address
// ip and reads the answer.
func rawFrom(t *testing.T, g *gw, ip, request string) answer {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", strings.TrimPrefix(g.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%q: %v", request[:min(len(request), 40)], err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// Slow-loris: a client sending its request header a byte at a time is cut
// off at read_header_timeout, counted from the header's first byte (on the
// fast front, from the connection's start for its first request), not
// served at read_timeout's pace; a body sent slowly but within read_timeout
// still arrives whole. On every front: the std front's net/http closes
// a stalled header without an answer, and warden answers 408 first (on a
// cleartext connection, stdConn; its header timeout runs from the
// connection's start for the first request, and from the first bytes
// after an answer). The trickle is a byte every quarter of the header timeout; the bounds are
// generous: the answer is awaited 10s, read_timeout is 60s.
func TestSlowHeaderCut(t *testing.T) {
	const hdrTimeout = time.Second
	mux := http.NewServeMux()
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d", n)
	})
	mux.HandleFunc("/ping", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "pong") })
	up := httptest.NewServer(mux)
	t.Cleanup(up.Close)
	header := "GET /ping HTTP/1.1\r\nHost: api.test\r\nX-Pad: " + strings.Repeat("p", 200) + "\r\n\r\n" // 60s and more at the trickle's pace
	for _, front := range fronts {
		t.Run(front, func(t *testing.T) {
			g := startGateway(t, "front: "+front+"\nserver: {read_header_timeout: "+hdrTimeout.String()+", read_timeout: 60s, idle_timeout: 30s}\n", up.URL)
			addr := strings.TrimPrefix(g.url, "http://")
			cut := func(t *testing.T, conn net.Conn, br *bufio.Reader) {
				t.Helper()
				stop := trickle(conn, header, hdrTimeout/4)
				defer stop()
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("trickled header: %v, want 408 within %v", err, hdrTimeout)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				r := refusalOf(t, answer{resp.StatusCode, resp.Header, string(b)})
				if resp.StatusCode != 408 || r.Rule != "request" || r.Facet != "read_timeout" {
					t.Fatalf("trickled header: %d %s, want 408 by rule request, reason read_timeout", resp.StatusCode, b)
				}
			}
			dial := func(t *testing.T) (net.Conn, *bufio.Reader) {
				t.Helper()
				conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { conn.Close() })
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				return conn, bufio.NewReader(conn)
			}
			t.Run("first request", func(t *testing.T) {
				conn, br := dial(t)
				cut(t, conn, br)
			})
			// On a keep-alive connection, after an answer: the header
			// timeout runs from the next request's first byte.
			t.Run("after an answer", func(t *testing.T) {
				conn, br := dial(t)
				io.WriteString(conn, "GET /ping HTTP/1.1\r\nHost: api.test\r\n\r\n")
				readPong(t, br)
				cut(t, conn, br)
			})
			// Pipelined: the next request's first bytes came with the one
			// before, and no more. On the std front they sat in net/http's
			// buffer when the connection went idle, unseen by stdConn, so
			// the stall was closed without an answer (a partial request
			// line) or answered 400 malformed (a partial header line).
			for name, next := range map[string]string{"partial header line": "GET /ping HTTP/1.1\r\nHo", "partial request line": "GET /pi"} {
				t.Run("pipelined, "+name, func(t *testing.T) {
					conn, br := dial(t)
					io.WriteString(conn, "GET /ping HTTP/1.1\r\nHost: api.test\r\n\r\n"+next)
					readPong(t, br)
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						t.Fatalf("stalled pipelined request: %v, want 408 within %v", err, hdrTimeout)
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if r := refusalOf(t, answer{resp.StatusCode, resp.Header, string(b)}); resp.StatusCode != 408 || r.Rule != "request" || r.Facet != "read_timeout" {
						t.Fatalf("stalled pipelined request: %d %s, want 408 by rule request, reason read_timeout", resp.StatusCode, b)
					}
				})
			}
			// The header at once, the body over 2.5 header timeouts: within
			// read_timeout, served whole.
			t.Run("slow body", func(t *testing.T) {
				conn, br := dial(t)
				const body = "0123456789"
				io.WriteString(conn, "POST /upload HTTP/1.1\r\nHost: api.test\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n")
				stop := trickle(conn, body, hdrTimeout/4)
				defer stop()
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(b) != strconv.Itoa(len(body)) {
					t.Fatalf("slow body: %d %s, want 200 and the upstream's count %d", resp.StatusCode, b, len(body))
				}
			})
			// A connection that sends nothing has no request to answer: it
			// is closed without one at read_header_timeout from its start
			// (1s), not at idle_timeout (30s here: past the 10s the answer
			// is awaited) nor read_timeout.
			t.Run("nothing sent", func(t *testing.T) {
				conn, _ := dial(t)
				b, err := io.ReadAll(conn)
				if err != nil || len(b) != 0 {
					t.Fatalf("silent connection: %q, %v; want closed without an answer", b, err)
				}
			})
		})
	}
}

// trickle writes s to conn a byte every pace, in the background, until it
// is written, a write fails, or stop is called.
func trickle(conn net.Conn, s string, pace time.Duration) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(pace)
		defer tick.Stop()
		for i := 0; i < len(s); i++ {
			if _, err := io.WriteString(conn, s[i:i+1]); err != nil {
				return
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}

// A client that pipelines requests far ahead of its answers on the loop
// front (over 1 MiB unread) gets the answers in flight, then one refusal
// (429, rule request, reason pipelined_too_far, with its id, Connection:
// close) that is logged, counted and explained like the edge's others,
// and the connection closes; it was cut without an answer before.
func TestEdgePipelinedTooFar(t *testing.T) {
	up := startPlatform(t, 200)
	g := startGateway(t, "front: loop\n"+strings.Replace(ledgerConfig(t.TempDir(), 6), "log: {format: text, level: warn}", "log: {format: json}", 1), up)
	const peer = "127.0.8.4"
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(peer)}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", strings.TrimPrefix(g.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	req := "GET /v1/users/7 HTTP/1.1\r\nHost: api.test\r\nX-Pad: " + strings.Repeat("p", 1000) + "\r\n\r\n"
	sent := make(chan int)
	go func() {
		n := 0
		for n < 3<<20 {
			if _, err := io.WriteString(conn, req); err != nil {
				break // the connection closed: the refusal is on its way
			}
			n += len(req)
		}
		sent <- n
	}()
	br := bufio.NewReader(conn)
	var statuses []int
	var last answer
	closed := false
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			break
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
		last, closed = answer{resp.StatusCode, resp.Header, string(b)}, resp.Close
	}
	n := <-sent
	if len(statuses) == 0 || len(statuses) > 200 || last.status != 429 || !closed {
		t.Fatalf("%d bytes pipelined: %d answers, the last %d (Connection: close %v) %s; want a few, the last a 429 closing the connection",
			n, len(statuses), last.status, closed, last.body)
	}
	r := refusalOf(t, last)
	if r.Rule != "request" || r.Facet != "pipelined_too_far" || last.header.Get("X-Request-Id") != r.RequestID {
		t.Fatalf("last answer %s, want rule request, reason pipelined_too_far, with its id", last.body)
	}
	line := refusedLine(t, g, r.RequestID)
	if line["status"] != float64(429) || line["rule"] != "request" || line["facet"] != "pipelined_too_far" {
		t.Errorf("refused line %v", line)
	}
	x, raw := explainFound(t, g, r.RequestID)
	if x.Decision != "refused" || x.Status != 429 || x.Rule != "request" || x.Facet != "pipelined_too_far" ||
		!reflect.DeepEqual(x.Identity, map[string]string{"ip": peer, "net": "127.0.8.0/24"}) || len(x.RateLimits) != 0 {
		t.Fatalf("explain %s: %s", r.RequestID, raw)
	}
	m := adminDo(t, g, "GET", "/metrics", "").body
	for _, want := range []string{`warden_refusals_total{facet="pipelined_too_far",rule="request"} 1`,
		`warden_bad_requests_total{front="loop",reason="pipelined_too_far"} 1`} {
		if !strings.Contains(m, want+"\n") {
			t.Errorf("metrics lack %s:\n%s", want, grepLines(m, "pipelined"))
		}
	}
}

// Over TLS, what net/http refuses itself stays its own (text, no id), out
// of warden's reach, but is counted: a connection closing with a request
// net/http read and never handed to warden adds one to
// warden_bad_requests_total{front="std",reason="net_http"}; a served
// request, and a connection that sends nothing, add none.
func TestStdTLSNetHTTPCounted(t *testing.T) {
	up := newEcho(t)
	certFile, keyFile := selfSigned(t, t.TempDir())
	cfg := strings.Replace(baseConfig("std"), "front: std", "front: std\ntls: {cert_file: "+certFile+", key_file: "+keyFile+"}", 1)
	g := startGateway(t, cfg, up.srv.URL)
	addr := strings.TrimPrefix(g.url, "http://")
	dial := func() *tls.Conn {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return c
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := hc.Get(strings.Replace(g.url, "http://", "https://", 1) + "/ok")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	hc.CloseIdleConnections()
	dial().Close() // nothing sent
	c := dial()
	io.WriteString(c, "GET /x HTTP/9.9\r\nHost: api.test\r\n\r\n")
	resp, err = http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 505 {
		t.Fatalf("HTTP/9.9 over TLS: %v %v, want net/http's 505", resp, err)
	}
	c.Close()
	want := `warden_bad_requests_total{front="std",reason="net_http"} 1`
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		m := adminDo(t, g, "GET", "/metrics", "").body
		if strings.Contains(m, want+"\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics lack %s:\n%s", want, grepLines(m, "warden_bad_requests_total"))
		}
	}
}

// A state store that fails at admission (Redis down, failure mode
// closed) refuses 503 with rule store and facet admit, and warden explain,
// through the real gateway's ledger, leaves those refusals out of the
// rate limits' seen (no limit was decided or spent) and gives them no
// rate limit rows: explain of the first request after Redis returns
// counts exactly the requests the gateway answered otherwise.
func TestStoreFailureExplained(t *testing.T) {
	rs := redistest.Start(t)
	platform := startPlatform(t, 200)
	cfg := storeOutageConfig(rs.Addr(), "1/m", 1000, t.TempDir())
	g := startGateway(t, cfg, platform)
	tok := token(t, "7")
	c := clientFrom("127.0.8.5")
	seen := 0 // what the limit counted: every answer but the store's at admission
	var admitRefusals []string
	get := func(id int) answer {
		a := do(t, c, "GET", fmt.Sprintf("%s/v1/users/%d", g.url, id), map[string]string{"Authorization": "Bearer " + tok})
		if a.status == 503 {
			if r := refusalOf(t, a); r.Rule == "store" && r.Facet == "admit" {
				admitRefusals = append(admitRefusals, r.RequestID)
				return a
			}
		}
		seen++
		return a
	}
	for i := range 3 {
		if a := get(1 + i); a.status != 200 {
			t.Fatalf("before the outage: %d %s", a.status, a.body)
		}
	}
	rs.Kill()
	for i := range 5 {
		get(10 + i)
	}
	if len(admitRefusals) == 0 {
		t.Fatal("no store refusal at admission while Redis was down")
	}
	rs.Restart()
	awaitContact(t, get, 50, time.Now().Add(15*time.Second), "Redis returned")
	last := get(60)
	if last.status != 200 {
		t.Fatalf("after the outage: %d %s", last.status, last.body)
	}
	seen-- // the last request is not in its own count
	x, raw := explainFound(t, g, last.header.Get("X-Request-Id"))
	var rows struct {
		RateLimits []struct {
			Name string `json:"name"`
			Seen int    `json:"seen"`
		} `json:"rate_limits"`
	}
	if err := json.Unmarshal(raw, &rows); err != nil || len(rows.RateLimits) != 1 || rows.RateLimits[0].Seen != seen {
		t.Fatalf("explain %s: %s\nwant per-account having seen %d (the %d store refusals at admission left out)", x.RequestID, raw, seen, len(admitRefusals))
	}
	x, raw = explainFound(t, g, admitRefusals[0])
	if x.Decision != "refused" || x.Status != 503 || x.Rule != "store" || x.Facet != "admit" || len(x.RateLimits) != 0 {
		t.Fatalf("explain %s: %s\nwant refused 503 by rule store, facet admit, no rate limit rows", admitRefusals[0], raw)
	}
}

// storeOutageConfig is a gateway on the Redis at addr that fails closed
// fast (a 300 ms timeout, the breaker open after 3 failures for 300 ms),
// with a per-account limit of rate and burst on the profile route and its
// ledger in dir: the store-outage tests' gateway.
func storeOutageConfig(addr, rate string, burst int, dir string) string {
	return fmt.Sprintf(`log: {format: text, level: warn}
identity:
  account: {secret_env: LAB_JWT_SECRET}
store:
  backend: redis
  redis: {addrs: [%s]}
  failure: {mode: closed, timeout: 300ms, breaker_failures: 3, breaker_cooldown: 300ms}
rate_limits:
  - {name: per-account, facet: account, rate: %s, burst: %d}
`+profileRoute+`ledger: {dir: %s}
`, addr, rate, burst, dir)
}

// readPong reads the answer to a first request on a connection: 200 pong.
func readPong(t *testing.T, br *bufio.Reader) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "pong" {
		t.Fatalf("first request: %d %s", resp.StatusCode, b)
	}
}
