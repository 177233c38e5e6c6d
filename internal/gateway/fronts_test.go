package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/refusal"
)

// fronts are the fronts a test runs on, each serving cleartext HTTP/1.1.
var fronts = []string{config.FrontLoop, config.FrontFast, config.FrontStd}

// A piece of an upstream's answer: after waits, write bytes.
type piece struct {
	after time.Duration
	bytes string
}

// scriptedUpstream answers every request with pieces, each written and
// flushed after its wait; a write that fails (warden gave up and closed)
// ends the answer.
func scriptedUpstream(t *testing.T, pieces []piece) string {
	t.Helper()
	up, _ := rawUpstream(t, func(_ *http.Request, w *bufio.Writer) bool { return writePieces(w, pieces) })
	return up
}

// scriptedTLSUpstream is scriptedUpstream over TLS, its https URL, and a
// setup that makes a fast front's gateway trust its certificate.
func scriptedTLSUpstream(t *testing.T, pieces []piece) (string, func(*Gateway)) {
	t.Helper()
	certs := httptest.NewTLSServer(http.NotFoundHandler()) // for its certificate, valid for 127.0.0.1
	t.Cleanup(certs.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up, _ := rawUpstreamOn(t, tls.NewListener(ln, certs.TLS.Clone()), func(_ *http.Request, w *bufio.Writer) bool {
		return writePieces(w, pieces)
	})
	roots := certs.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	return strings.Replace(up, "http://", "https://", 1), func(g *Gateway) {
		g.front.(*fastFront).upTLS.RootCAs = roots
	}
}

// writePieces writes pieces, each flushed after its wait; it returns false
// when a write fails (warden gave up and closed).
func writePieces(w *bufio.Writer, pieces []piece) bool {
	for _, p := range pieces {
		time.Sleep(p.after)
		if _, err := w.WriteString(p.bytes); err != nil || w.Flush() != nil {
			return false
		}
	}
	return true
}

// scriptedGateway serves yaml with front in front of an upstream that
// answers with pieces; front fast-https is the fast front with the
// upstream over TLS.
func scriptedGateway(t *testing.T, front, yaml string, pieces []piece) *loopGW {
	t.Helper()
	if front == "fast-https" {
		up, trust := scriptedTLSUpstream(t, pieces)
		return frontGateway(t, config.FrontFast, yaml, up, trust)
	}
	return frontGateway(t, front, yaml, scriptedUpstream(t, pieces))
}

// trickle is s as pieces of one byte, each after every.
func trickle(s string, every time.Duration) []piece {
	ps := make([]piece, len(s))
	for i := range s {
		ps[i] = piece{every, s[i : i+1]}
	}
	return ps
}

// upstream.response_header_timeout bounds the whole wait for the answer's
// header, from the request's send, on every front: an upstream that
// trickles its header a byte at a time, each byte well within the timeout,
// gets 504 (rule upstream) as a silent one does, where it held the client
// and a connection for as long as it kept trickling. A header that comes
// in pieces within the timeout passes, and so does a body that trickles
// past it or starts late after a late header (each wait for more of the
// body has its own bound).
func TestUpstreamHeaderDeadline(t *testing.T) {
	const timeout = 2 * time.Second
	yaml := "upstream: {response_header_timeout: 2s}\n"
	const header = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\n"
	cases := []struct {
		name   string
		pieces []piece
		status int
		body   string
	}{
		// 70 bytes at timeout/3 each: 47 s of trickling if nothing cuts it.
		{"header trickles", append(trickle(header, timeout/3), piece{0, "body"}), 504, ""},
		{"header in pieces within the timeout", []piece{{0, header[:10]}, {timeout / 4, header[10:]}, {0, "body"}}, 200, "body"},
		{"body trickles past the timeout", append([]piece{{0, header}}, trickle("body", timeout/3)...), 200, "body"},
		// The wait for the body is bounded from the header's end, not by
		// what the header left of its deadline.
		{"body pauses after a late header", []piece{{0, header[:10]}, {timeout * 6 / 10, header[10:]}, {timeout * 6 / 10, "body"}}, 200, "body"},
	}
	// The fast front serves an https upstream too: its header is read
	// through TLS.
	for _, front := range append(fronts, "fast-https") {
		for _, tc := range cases {
			t.Run(front+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				l := scriptedGateway(t, front, yaml, tc.pieces)
				c := dial(t, l.addr) // its deadline (hangBound) ends a hang
				c.send("GET /v1/slow HTTP/1.1\r\nHost: x\r\n\r\n")
				code, body, _ := c.answer("GET")
				if code != tc.status {
					t.Fatalf("%d %.200q, want %d", code, body, tc.status)
				}
				switch {
				case tc.status == 504 && !strings.Contains(body, `"rule":"upstream"`):
					t.Errorf("504 body %q, want rule upstream", body)
				case tc.status == 200 && body != tc.body:
					t.Errorf("body %q, want %q", body, tc.body)
				}
			})
		}
	}
}

// A rate-limit refusal's headers go out named as the IETF draft and the
// README write them, RateLimit-Policy and RateLimit, on every front (the
// fasthttp fronts normalised them to Ratelimit-Policy, net/http's
// Header.Set to the same), and WWW-Authenticate likewise: names are
// case-insensitive, but clients and people grep raw answers. Read off the
// wire, not through a client that canonicalises them.
func TestRefusalHeaderNamesAsWritten(t *testing.T) {
	yaml := "rate_limits:\n  - {name: per-ip, facet: ip, rate: 1/h, burst: 1}\n"
	want := []string{"\r\nRateLimit-Policy: ", "\r\nRateLimit: ", "\r\nRetry-After: ", "\r\nX-Request-Id: "}
	for _, front := range fronts {
		t.Run(front, func(t *testing.T) {
			t.Parallel()
			l := frontGateway(t, front, yaml, echoUpstream(t).URL)
			c := dial(t, l.addr)
			c.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
			c.expect("GET", "GET /a ")
			c.send("GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
			h := c.rawHead()
			if !strings.HasPrefix(h, "HTTP/1.1 429 ") {
				t.Fatalf("second request: %q, want 429", h)
			}
			for _, w := range want {
				if !strings.Contains(h, w) {
					t.Errorf("no %q in %q", strings.TrimSpace(w), h)
				}
			}
		})
	}
}

// An Upgrade request's answer header has the same bound on every front:
// an upstream trickling its 101 gets 504 (rule upstream), where the fast
// front (and the loop, which hands upgrades to it) relayed it with no
// deadline; a 101 that comes is relayed, with what follows it, to an https
// upstream too (the fast front sent the request in clear to its TLS port).
func TestUpgradeHeaderDeadline(t *testing.T) {
	const timeout = 2 * time.Second
	yaml := "upstream: {response_header_timeout: 2s}\n"
	const header = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n"
	for _, front := range append(fronts, "fast-https") {
		for _, tc := range []struct {
			name   string
			pieces []piece
			status int
		}{
			{"101 trickles", append(trickle(header, timeout/3), piece{0, "hello"}), 504},
			{"101 comes", []piece{{timeout / 4, header}, {0, "hello"}}, 101},
		} {
			t.Run(front+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				l := scriptedGateway(t, front, yaml, tc.pieces)
				c := dial(t, l.addr)
				c.send("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
				if tc.status == 504 {
					if code, body, _ := c.answer("GET"); code != 504 || !strings.Contains(body, `"rule":"upstream"`) {
						t.Fatalf("%d %.200q, want 504 rule upstream", code, body)
					}
					return
				}
				if head := c.rawHead(); !strings.HasPrefix(head, "HTTP/1.1 101 ") {
					t.Fatalf("answer %q, want 101", head)
				}
				got := make([]byte, 5)
				if _, err := io.ReadFull(c.br, got); err != nil || string(got) != "hello" {
					t.Fatalf("after the 101: %q %v, want hello", got, err)
				}
			})
		}
	}
}

// rawHead reads the next answer's header as it came on the wire, names
// unchanged.
func (c *conn) rawHead() string {
	c.t.Helper()
	var head strings.Builder
	for !strings.HasSuffix(head.String(), "\r\n\r\n") {
		line, err := c.br.ReadString('\n')
		if err != nil {
			c.t.Fatalf("reading an answer's header: %v (read %q)", err, head.String())
		}
		head.WriteString(line)
	}
	return head.String()
}

// An upstream whose body stops, after its header, for longer than
// response_header_timeout is cut on every front: the bound holds for each
// wait for more of the body (README), so a stalled upstream does not hold
// the client and a connection for ever. The answer's header was sent, so
// the client sees it end early (or, where the front holds a small answer
// whole before sending, a 504 with rule upstream), never the body as if
// complete after the stall.
func TestUpstreamBodyStall(t *testing.T) {
	const timeout = 1 * time.Second
	yaml := "upstream: {response_header_timeout: 1s}\n"
	const header = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n\r\n"
	pieces := []piece{{0, header}, {0, "firs"}, {timeout * 3, "tail"}}
	// An inspected route's answer is read whole before anything is sent:
	// its stall is a 504 (checked below by the path).
	yaml += "inspect:\n  routes:\n    - {route: \"GET /v1/users/{id}\", records: [\"$\"], id: id}\n"
	for _, front := range append(fronts, "fast-https") {
		for _, path := range []string{"/v1/slow", "/v1/users/5"} {
			t.Run(front+path, func(t *testing.T) {
				t.Parallel()
				l := scriptedGateway(t, front, yaml, pieces)
				c := dial(t, l.addr)
				c.send("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n")
				resp, err := http.ReadResponse(c.br, &http.Request{Method: "GET"})
				if err != nil {
					return // cut before the header reached the client
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				inspected := path != "/v1/slow"
				switch {
				case err != nil && !inspected:
					// cut mid-body: the client knows the answer is incomplete
				case resp.StatusCode == 504 && strings.Contains(string(b), `"rule":"upstream"`):
				default:
					t.Fatalf("%d %q (%v) after a %v stall, want the answer cut (an inspected one: 504)", resp.StatusCode, b, err, 3*timeout)
				}
			})
		}
	}
}

// A Connection: upgrade without an Upgrade header asks for nothing to
// upgrade to: on every front it goes to the upstream as a plain request,
// the upgrade token and Connection dropped as any hop-by-hop header, and
// its answer comes back on the same connection (the fast front, which the
// loop hands it to, kept Connection: upgrade on it).
func TestConnectionUpgradeWithoutUpgrade(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "connection="+strings.Join(r.Header.Values("Connection"), ",")+" upgrade="+r.Header.Get("Upgrade"))
	}))
	t.Cleanup(up.Close)
	for _, front := range fronts {
		t.Run(front, func(t *testing.T) {
			l := frontGateway(t, front, "", up.URL)
			c := dial(t, l.addr)
			for range 2 {
				c.send("GET /plain HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n\r\n")
				if code, body, _ := c.answer("GET"); code != 200 || body != "connection= upgrade=" {
					t.Fatalf("%d %q, want 200 and no Connection or Upgrade at the upstream", code, body)
				}
			}
		})
	}
}

// A request whose Expect asks anything but 100-continue is refused 417 on
// every front, as warden's refusal (rule request, reason
// expectation_failed, its id, counted), and the upstream never sees it;
// one whose Expect holds a 100-continue token, in any case, goes through
// with its Expect. Before, the std front's net/http answered 417 labelled
// malformed ("bad request"), or in text without an id to HTTP/1.0, while
// the loop and fast fronts forwarded the request, and so did the std front
// over HTTP/2 (h2c here).
func TestExpectationFailed(t *testing.T) {
	var served atomic.Int64
	up, _ := rawUpstream(t, func(r *http.Request, w *bufio.Writer) bool {
		served.Add(1)
		b := "expect=" + r.Header.Get("Expect")
		fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(b), b)
		return true
	})
	refused := []string{
		"GET /a HTTP/1.1\r\nHost: x\r\nExpect: foo\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: x\r\nExpect: foo\r\nContent-Length: 2\r\n\r\nhi",
		"GET /a HTTP/1.0\r\nHost: x\r\nExpect: Foo\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continued\r\n\r\n",
	}
	passed := map[string]string{ // Expect: what the upstream got
		"GET /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue, foo\r\n\r\n": "100-continue, foo",
		"GET /a HTTP/1.1\r\nHost: x\r\nExpect: foo,100-Continue\r\n\r\n":  "foo,100-Continue",
	}
	check := func(t *testing.T, what string, status int, body string, h http.Header) {
		t.Helper()
		var b struct {
			Rule, Facet string
			RequestID   string `json:"request_id"`
		}
		if err := json.Unmarshal([]byte(body), &b); err != nil || status != 417 || b.Rule != refusal.RuleRequest ||
			b.Facet != "expectation_failed" || b.RequestID == "" || h.Get("X-Request-Id") != b.RequestID {
			t.Errorf("%.60q: %d %q (%v), want 417 by rule request, reason expectation_failed, with its id", what, status, body, err)
		}
	}
	for _, front := range fronts {
		t.Run(front, func(t *testing.T) {
			l := frontGateway(t, front, "", up)
			before := served.Load()
			for _, req := range refused {
				c := dial(t, l.addr)
				c.send(req)
				status, body, h := c.answer("GET")
				check(t, req, status, body, h)
			}
			if n := served.Load() - before; n != 0 {
				t.Errorf("the upstream served %d refused requests", n)
			}
			if n := l.metric(t, "warden_bad_requests_total", map[string]string{"front": front, "reason": "expectation_failed"}); n != float64(len(refused)) {
				t.Errorf("expectation_failed counted %v times, want %d", n, len(refused))
			}
			for req, want := range passed {
				c := dial(t, l.addr)
				c.send(req)
				c.expect("GET", "expect="+want)
			}
			if front != config.FrontStd {
				return
			}
			var protos http.Protocols
			protos.SetUnencryptedHTTP2(true)
			hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: &protos}}
			req, _ := http.NewRequest("GET", "http://"+l.addr+"/h2", nil)
			req.Header.Set("Expect", "foo")
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.ProtoMajor != 2 {
				t.Fatalf("h2c answered in %s", resp.Proto)
			}
			check(t, "h2c Expect: foo", resp.StatusCode, string(b), resp.Header)
		})
	}
}

// A request body that fails as the client sends it is the client's fault on
// every front: a malformed chunked body is 400 and one that stalls past
// server.read_timeout is 408, both rule request, counted as bad requests
// and not as the upstream's failures. Before, the std front answered them
// 502 and 504 with rule upstream (its Transport reports a failed read of
// the body as the round trip's error), counted in
// warden_upstream_errors_total, while the fast and loop fronts answered
// 400 and 408.
func TestClientBodyFaults(t *testing.T) {
	var seen atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	t.Cleanup(up.Close)
	cases := []struct {
		name, head, body string
		status           int
		reason           string
	}{
		{"chunk size in hex notation", "Transfer-Encoding: chunked", "0x4\r\nabcd\r\n0\r\n\r\n", 400, "malformed"},
		{"chunk line with a bare LF", "Transfer-Encoding: chunked", "4\nabcd\n0\n\n", 400, "malformed"},
		{"body stalled", "Content-Length: 10", "abc", 408, "read_timeout"},
	}
	for _, front := range fronts {
		for _, tc := range cases {
			t.Run(front+"/"+tc.name, func(t *testing.T) {
				l := frontGateway(t, front, "server: {read_timeout: 1s}\n", up.URL)
				c := dial(t, l.addr)
				c.send("POST /v1/x HTTP/1.1\r\nHost: x\r\n" + tc.head + "\r\n\r\n" + tc.body)
				code, body, _ := c.answer("POST")
				var r struct{ Rule, Facet string }
				_ = json.Unmarshal([]byte(body), &r)
				if code != tc.status || r.Rule != refusal.RuleRequest || r.Facet != tc.reason {
					t.Fatalf("%d %s, want %d rule %s facet %s", code, body, tc.status, refusal.RuleRequest, tc.reason)
				}
				if n := l.metric(t, "warden_upstream_errors_total", nil); n != 0 {
					t.Fatalf("the client's body counted as %v upstream errors", n)
				}
				if n := l.metric(t, "warden_bad_requests_total", map[string]string{"reason": tc.reason}); n != 1 {
					t.Fatalf("warden_bad_requests_total{reason=%q} = %v, want 1", tc.reason, n)
				}
			})
		}
	}
}

// A body declared or sent past server.max_body_bytes gets its 413 on the
// loop and fast fronts while the client keeps sending it. Before, the loop and fast fronts
// drained at most 256 KiB of it and closed with the rest unread: the kernel
// reset the connection while the client was still sending, and a client
// that stops at a failed send (curl, Python's) never read the 413: curl
// reported a reset, or only the 100 Continue. Now the gateway sends FIN
// after its answer and reads on until the client closes (at most
// drainTotal), as net/http and nginx do.
func TestBodyTooLargeAnsweredWhileSending(t *testing.T) {
	up := echoUpstream(t)
	const max = 1 << 20
	body := strings.Repeat("x", 8*max)
	// Not the std front: net/http sends FIN after the answer and closes
	// 500 ms later without reading, which a client polling as it sends
	// (curl) survives and this one, reading only after sending, does not.
	for _, front := range []string{config.FrontLoop, config.FrontFast} {
		for _, head := range []string{"Content-Length: " + fmt.Sprint(len(body)), "Transfer-Encoding: chunked"} {
			t.Run(front+"/"+head, func(t *testing.T) {
				l := frontGateway(t, front, fmt.Sprintf("server: {max_body_bytes: %d}\n", max), up.URL)
				c := dial(t, l.addr)
				send := body
				if head == "Transfer-Encoding: chunked" {
					send = fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body)
				}
				// As curl and Python's clients do, a failed send is the
				// end: the answer is never read.
				if _, err := io.WriteString(c.c, "POST /v1/x HTTP/1.1\r\nHost: x\r\n"+head+"\r\n\r\n"+send); err != nil {
					t.Fatalf("sending the body: %v, want the 413 and a close after it", err)
				}
				resp, err := http.ReadResponse(c.br, &http.Request{Method: "POST"})
				if err != nil {
					t.Fatalf("no answer: %v, want 413", err)
				}
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != 413 || !strings.Contains(string(b), `"facet":"body_too_large"`) {
					t.Fatalf("%d %s, want 413 body_too_large", resp.StatusCode, b)
				}
			})
		}
	}
}

// A CONNECT is refused 405 (rule request, reason connect) with an Allow
// header, as RFC 9110 requires of every 405, on every front (the loop
// hands a CONNECT to the fast front): before, no front sent Allow. The
// header is read off the wire.
func TestConnectRefusedWithAllow(t *testing.T) {
	for _, front := range fronts {
		t.Run(front, func(t *testing.T) {
			t.Parallel()
			l := frontGateway(t, front, "", echoUpstream(t).URL)
			c := dial(t, l.addr)
			c.send("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
			h := c.rawHead()
			if !strings.HasPrefix(h, "HTTP/1.1 405 ") || !strings.Contains(h, "\r\nAllow: "+allowedMethods+"\r\n") {
				t.Fatalf("CONNECT: %q, want 405 with Allow: %s", h, allowedMethods)
			}
			if strings.Contains(allowedMethods, "CONNECT") {
				t.Errorf("Allow %q names CONNECT", allowedMethods)
			}
		})
	}
}

// A gateway told to shut down before its Serve began serving (warden serve
// stopped by a signal the moment it said it listens) still returns from
// Serve, on every front: the loop front closed only a listener Serve had
// already recorded, so a Serve that came after Shutdown accepted for ever
// and warden serve never stopped.
func TestShutdownBeforeServe(t *testing.T) {
	for _, front := range fronts {
		t.Run(front, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Parse(front+".yaml", []byte("log: {level: error}\n"))
			if err != nil {
				t.Fatal(err)
			}
			cfg.Upstream.URL = echoUpstream(t).URL
			cfg.Front = front
			g := testGateway(t, cfg, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := g.Shutdown(ctx); err != nil {
				t.Fatalf("shutdown: %v", err)
			}
			done := make(chan error, 1)
			go func() { done <- g.Serve(ln) }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("serve after shutdown: %v", err)
				}
			case <-time.After(5 * time.Second):
				ln.Close() // ends the Serve that hung
				t.Fatal("serve after shutdown still serving after 5s")
			}
		})
	}
}
