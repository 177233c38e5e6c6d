package e2e

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/lab/platform"
)

func baseConfig(front string) string {
	return `front: ` + front + `
log: {format: text, level: info}
server: {shutdown_timeout: 10s, max_header_bytes: 4096}
upstream: {response_header_timeout: 1s}
identity:
  account: {secret_env: LAB_JWT_SECRET}
  trusted_proxies: [127.0.0.9/32]
rate_limits:
  - name: per-ip
    facet: ip
    rate: 1/m
    burst: 3
    routes: ["GET /limited/{x}"]
  - name: per-account
    facet: account
    rate: 1/m
    burst: 4
    routes: ["GET /acct/{x}"]
`
}

var fronts = []string{"loop", "fast", "std"}

func token(t *testing.T, sub string) string {
	tok, err := platform.MintToken("lab-secret", sub, time.Now().Add(-365*24*time.Hour), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type refusalBody struct {
	Error, Rule, Facet string
	RequestID          string `json:"request_id"`
}

func refusalOf(t *testing.T, a answer) refusalBody {
	t.Helper()
	var r refusalBody
	if err := json.Unmarshal([]byte(a.body), &r); err != nil || r.RequestID == "" {
		t.Fatalf("refusal body %q: %v", a.body, err)
	}
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("refusal content type %q", ct)
	}
	return r
}

func TestGateway(t *testing.T) {
	for _, front := range fronts {
		t.Run(front, func(t *testing.T) {
			up := newEcho(t)
			g := startGateway(t, baseConfig(front), up.srv.URL)
			if g.front != front {
				t.Fatalf("front %q, want %q", g.front, front)
			}
			t.Run("pass-through and forwarding headers", func(t *testing.T) {
				a := do(t, clientFrom("127.0.0.5"), "GET", g.url+"/hello/w%20x?q=1&r=a+b", map[string]string{
					"Connection": "keep-alive, X-Hop", "X-Hop": "1", "Keep-Alive": "timeout=5", "X-Keep": "yes",
					"X-Forwarded-For": "6.6.6.6", "Forwarded": "for=6.6.6.6",
					"X-Forwarded-Proto": "https", "X-Forwarded-Host": "forged.example", "X-Real-IP": "6.6.6.6",
				})
				if a.status != 200 || a.header.Get("X-Upstream") != "echo" {
					t.Fatalf("status %d header %v", a.status, a.header)
				}
				e := decodeEcho(t, a)
				h := http.Header(e.Header)
				if e.URI != "/hello/w%20x?q=1&r=a+b" {
					t.Errorf("path/query changed: %q", e.URI)
				}
				if h.Get("X-Hop") != "" || h.Get("Keep-Alive") != "" {
					t.Errorf("hop-by-hop headers forwarded: %v", h)
				}
				if h.Get("X-Keep") != "yes" {
					t.Errorf("end-to-end header lost")
				}
				if got := h.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "127.0.0.5" {
					t.Errorf("untrusted peer's X-Forwarded-For kept: %q", got)
				}
				if got := h.Get("Forwarded"); got != "for=127.0.0.5;proto=http" {
					t.Errorf("Forwarded = %q", got)
				}
				if h.Get("X-Forwarded-Proto") != "http" || h.Get("X-Request-Id") == "" {
					t.Errorf("X-Forwarded-Proto/X-Request-Id: %v", h)
				}
				if got := h.Get("X-Forwarded-Host"); got != strings.TrimPrefix(g.url, "http://") {
					t.Errorf("untrusted peer's X-Forwarded-Host kept: %q", got)
				}
				if got := h.Values("X-Real-Ip"); len(got) != 1 || got[0] != "127.0.0.5" {
					t.Errorf("untrusted peer's X-Real-IP kept: %q", got)
				}
			})
			t.Run("hop-by-hop answer headers stripped", func(t *testing.T) {
				a := do(t, clientFrom("127.0.0.5"), "GET", g.url+"/x?hop=1", nil)
				if a.status != 200 || a.header.Get("X-Upstream") != "echo" {
					t.Fatalf("status %d header %v", a.status, a.header)
				}
				for _, h := range []string{"Keep-Alive", "Proxy-Authenticate", "X-Resp-Hop"} {
					if v := a.header.Get(h); v != "" {
						t.Errorf("answer kept %s: %q", h, v)
					}
				}
				if v := strings.Join(a.header.Values("Connection"), ", "); strings.Contains(v, "X-Resp-Hop") {
					t.Errorf("answer kept the upstream's Connection: %q", v)
				}
			})
			t.Run("trusted proxy chain", func(t *testing.T) {
				a := do(t, clientFrom("127.0.0.9"), "GET", g.url+"/x", map[string]string{"X-Forwarded-For": "1.2.3.4",
					"Forwarded": "for=1.2.3.4;proto=https", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.example"})
				h := http.Header(decodeEcho(t, a).Header)
				if got := h.Get("X-Forwarded-For"); got != "1.2.3.4, 127.0.0.9" {
					t.Errorf("X-Forwarded-For = %q", got)
				}
				if got := h.Get("Forwarded"); got != "for=1.2.3.4;proto=https, for=127.0.0.9;proto=http" {
					t.Errorf("Forwarded = %q", got)
				}
				// The proxy in front terminated TLS for the client: both fronts keep what it says.
				if got, host := h.Get("X-Forwarded-Proto"), h.Get("X-Forwarded-Host"); got != "https" || host != "api.example" {
					t.Errorf("trusted X-Forwarded-Proto/-Host = %q, %q", got, host)
				}
				// No X-Real-IP from the proxy: the client identify found
				// behind it; the proxy's own is kept.
				if got := h.Get("X-Real-Ip"); got != "1.2.3.4" {
					t.Errorf("X-Real-IP behind a trusted proxy = %q, want the client 1.2.3.4", got)
				}
				a = do(t, clientFrom("127.0.0.9"), "GET", g.url+"/x", map[string]string{"X-Forwarded-For": "1.2.3.4", "X-Real-IP": "1.2.3.5"})
				if got := http.Header(decodeEcho(t, a).Header).Get("X-Real-Ip"); got != "1.2.3.5" {
					t.Errorf("trusted proxy's X-Real-IP = %q, want kept", got)
				}
			})
			t.Run("per-ip limit", func(t *testing.T) {
				c := clientFrom("127.0.0.20")
				before := up.hits.Load()
				for i := 0; i < 3; i++ {
					// Varying a spoofed X-Forwarded-For must not help an untrusted peer.
					if a := do(t, c, "GET", g.url+"/limited/a", map[string]string{"X-Forwarded-For": fmt.Sprintf("9.9.9.%d", i)}); a.status != 200 {
						t.Fatalf("request %d: %d %s", i, a.status, a.body)
					}
				}
				a := do(t, c, "GET", g.url+"/limited/a", map[string]string{"X-Forwarded-For": "9.9.9.99"})
				if a.status != 429 {
					t.Fatalf("4th request: %d, want 429", a.status)
				}
				r := refusalOf(t, a)
				if r.Rule != "per-ip" || r.Facet != "ip" || r.Error == "" {
					t.Errorf("refusal %+v", r)
				}
				if ra := a.header.Get("Retry-After"); ra == "" || ra == "0" {
					t.Errorf("Retry-After %q", ra)
				}
				if !strings.Contains(a.header.Get("RateLimit-Policy"), `"per-ip";q=3`) || !strings.Contains(a.header.Get("RateLimit"), `"per-ip";r=0`) {
					t.Errorf("RateLimit fields: %q / %q", a.header.Get("RateLimit-Policy"), a.header.Get("RateLimit"))
				}
				if got := up.hits.Load() - before; got != 3 {
					t.Errorf("upstream saw %d requests, want 3 (refused ones must not reach it)", got)
				}
				// Another route is not limited by this rule.
				if a := do(t, c, "GET", g.url+"/other", nil); a.status != 200 {
					t.Errorf("unlimited route: %d", a.status)
				}
				// Behind the trusted proxy, each client address has its own limit.
				tp := clientFrom("127.0.0.9")
				for i := 0; i < 4; i++ {
					ip := fmt.Sprintf("5.5.5.%d", i)
					if a := do(t, tp, "GET", g.url+"/limited/a", map[string]string{"X-Forwarded-For": ip}); a.status != 200 {
						t.Fatalf("client %s behind trusted proxy: %d", ip, a.status)
					}
				}
			})
			t.Run("per-account limit across addresses", func(t *testing.T) {
				tok := token(t, "77")
				for i := 0; i < 4; i++ {
					c := clientFrom(fmt.Sprintf("127.0.1.%d", i+1))
					if a := do(t, c, "GET", g.url+"/acct/x", map[string]string{"Authorization": "Bearer " + tok}); a.status != 200 {
						t.Fatalf("request %d: %d", i, a.status)
					}
				}
				a := do(t, clientFrom("127.0.1.9"), "GET", g.url+"/acct/x", map[string]string{"Authorization": "Bearer " + tok})
				if a.status != 429 || refusalOf(t, a).Facet != "account" {
					t.Fatalf("5th request from a new address: %d %s", a.status, a.body)
				}
				// A forged token is no account, and is refused rather than
				// forwarded (identity.account.unverified: refuse).
				forged := tok[:len(tok)-4] + "AAAA"
				if a := do(t, clientFrom("127.0.1.10"), "GET", g.url+"/acct/x", map[string]string{"Authorization": "Bearer " + forged}); a.status != 401 || refusalOf(t, a).Rule != "identity" {
					t.Fatalf("forged token: %d %s, want 401 by rule identity", a.status, a.body)
				}
			})
			t.Run("ban applied and lifted", func(t *testing.T) {
				c := clientFrom("127.0.0.66")
				if a := adminDo(t, g, "POST", "/v1/bans", `{"facet":"ip","value":"127.0.0.66","reason":"e2e","ttl":"1h"}`); a.status/100 != 2 {
					t.Fatalf("add ban: %d %s", a.status, a.body)
				}
				before := up.hits.Load()
				a := do(t, c, "GET", g.url+"/anything", nil)
				if a.status != 403 {
					t.Fatalf("banned: %d", a.status)
				}
				if r := refusalOf(t, a); r.Rule != "ban" || r.Facet != "ip" {
					t.Errorf("ban refusal %+v", r)
				}
				if up.hits.Load() != before {
					t.Error("a banned request reached the upstream")
				}
				if a := do(t, clientFrom("127.0.0.67"), "GET", g.url+"/anything", nil); a.status != 200 {
					t.Errorf("another address: %d", a.status)
				}
				if a := adminDo(t, g, "DELETE", "/v1/bans?facet=ip&value=127.0.0.66", ""); a.status/100 != 2 {
					t.Fatalf("remove ban: %d %s", a.status, a.body)
				}
				if a := do(t, c, "GET", g.url+"/anything", nil); a.status != 200 {
					t.Errorf("after lifting: %d", a.status)
				}
			})
			t.Run("admin needs the token", func(t *testing.T) {
				resp, err := http.Get(g.admin + "/metrics")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 401 {
					t.Errorf("metrics without token: %d", resp.StatusCode)
				}
				a := adminDo(t, g, "GET", "/metrics", "")
				for _, m := range []string{"warden_requests_total", `warden_refusals_total{facet="ip",rule="per-ip"}`, "warden_upstream_duration_seconds_bucket"} {
					if !strings.Contains(a.body, m) {
						t.Errorf("metrics lack %s", m)
					}
				}
				st := adminDo(t, g, "GET", "/v1/facets/ip/127.0.0.20", "")
				if st.status != 200 || !strings.Contains(st.body, `"rule":"per-ip"`) || !strings.Contains(st.body, `"remaining":0`) {
					t.Errorf("facet state: %d %s", st.status, st.body)
				}
			})
			t.Run("upstream slow is 504", func(t *testing.T) {
				a := do(t, clientFrom("127.0.0.5"), "GET", g.url+"/slow?d=3s", nil)
				if r := refusalOf(t, a); a.status != 504 || r.Error != "upstream timed out" || r.Rule != "upstream" {
					t.Fatalf("slow upstream: %d %s", a.status, a.body)
				}
				want := `warden_upstream_errors_total{front="` + front + `",kind="timeout"} 1`
				if m := adminDo(t, g, "GET", "/metrics", "").body; !strings.Contains(m, want) {
					t.Errorf("the timeout not counted as %s:\n%s", want, grepLines(m, "warden_upstream_errors_total"))
				}
			})
			t.Run("oversized header is refused", func(t *testing.T) {
				a := do(t, clientFrom("127.0.0.5"), "GET", g.url+"/x", map[string]string{"X-Big": strings.Repeat("a", 100_000)}) // far past the buffer: the client is still sending when refused
				if a.status != 431 {
					t.Fatalf("oversized header: %d", a.status)
				}
				if front != "std" { // net/http answers it itself
					if id := refusalOf(t, a).RequestID; a.header.Get("X-Request-Id") != id {
						t.Errorf("431: X-Request-Id %q, body's request_id %q", a.header.Get("X-Request-Id"), id)
					}
				}
				if m := adminDo(t, g, "GET", "/metrics", "").body; front == "fast" && !strings.Contains(m, `warden_bad_requests_total{front="fast",reason="header_too_large"} 1`) {
					t.Errorf("oversized header not counted:\n%s", grepLines(m, "warden_bad_requests_total"))
				}
			})
			t.Run("malformed request", func(t *testing.T) {
				conn := rawConn(t, g)
				fmt.Fprintf(conn, "GARBAGE\x00 / HTTP/9.9\r\n\r\n")
				line, _ := bufio.NewReader(conn).ReadString('\n')
				if !strings.Contains(line, " 400 ") && !strings.Contains(line, " 505 ") {
					t.Fatalf("malformed request answered %q", line)
				}
				if m := adminDo(t, g, "GET", "/metrics", "").body; front == "fast" && !strings.Contains(m, `warden_bad_requests_total{front="fast",reason="malformed"} 1`) {
					t.Errorf("malformed request not counted:\n%s", grepLines(m, "warden_bad_requests_total"))
				}
			})
			t.Run("HTTP version other than 1 is refused", func(t *testing.T) {
				before := up.hits.Load()
				conn := rawConn(t, g)
				fmt.Fprintf(conn, "GET /x HTTP/9.9\r\nHost: x\r\n\r\n")
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != 505 {
					t.Fatalf("HTTP/9.9 answered %d %q", resp.StatusCode, b)
				}
				if front != "std" { // net/http answers it itself, in text
					refusalOf(t, answer{resp.StatusCode, resp.Header, string(b)})
				}
				if up.hits.Load() != before {
					t.Fatalf("HTTP/9.9 reached the upstream")
				}
				if a := rawRequest(t, g, "GET /x", "", ""); a.status != 200 { // HTTP/1.1 still served
					t.Fatalf("HTTP/1.1 after it: %d", a.status)
				}
			})
			t.Run("CONNECT is refused", func(t *testing.T) {
				before := up.hits.Load()
				conn := rawConn(t, g)
				fmt.Fprintf(conn, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != 405 || !strings.Contains(string(b), "CONNECT not supported") {
					t.Fatalf("CONNECT answered %d %q", resp.StatusCode, b)
				}
				if up.hits.Load() != before {
					t.Fatalf("CONNECT reached the upstream")
				}
			})
			t.Run("upgrade passes through", func(t *testing.T) {
				conn := rawConn(t, g)
				fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
				br := bufio.NewReader(conn)
				status, _ := br.ReadString('\n')
				if !strings.Contains(status, "101") {
					t.Fatalf("upgrade answered %q", status)
				}
				for {
					l, err := br.ReadString('\n')
					if err != nil || l == "\r\n" {
						break
					}
				}
				fmt.Fprintf(conn, "hello\n")
				got, err := br.ReadString('\n')
				if err != nil || got != "echo: hello\n" {
					t.Fatalf("relay: %q %v", got, err)
				}
			})
		})
	}
}

// rawConn is a TCP connection to the gateway for hand-written requests,
// closed at the test's end, and bounded by a 5 s deadline.
func rawConn(t *testing.T, g *gw) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(g.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	return conn
}

func TestUpstreamDown(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String()
	ln.Close()
	for _, front := range fronts {
		t.Run(front, func(t *testing.T) {
			g := startGateway(t, baseConfig(front), dead)
			a := do(t, clientFrom("127.0.0.5"), "GET", g.url+"/x", nil)
			if r := refusalOf(t, a); a.status != 502 || r.Error != "upstream unreachable" || r.Rule != "upstream" {
				t.Fatalf("upstream down: %d %s", a.status, a.body)
			}
			if id := refusalOf(t, a).RequestID; a.header.Get("X-Request-Id") != id {
				t.Errorf("502: X-Request-Id %q, body's request_id %q", a.header.Get("X-Request-Id"), id)
			}
		})
	}
}

func TestReload(t *testing.T) {
	up := newEcho(t)
	g := startGateway(t, baseConfig("fast"), up.srv.URL)
	c := clientFrom("127.0.0.30")
	tighter := strings.Replace(baseConfig("fast"), "burst: 3", "burst: 1", 1)
	if err := os.WriteFile(g.config, []byte(tighter), 0o600); err != nil {
		t.Fatal(err)
	}
	g.p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, g.p, "config reloaded")
	if a := do(t, c, "GET", g.url+"/limited/r", nil); a.status != 200 {
		t.Fatalf("first: %d", a.status)
	}
	if a := do(t, c, "GET", g.url+"/limited/r", nil); a.status != 429 {
		t.Fatalf("second after reload to burst 1: %d", a.status)
	}
	// A broken file is refused; the running config stays and serves.
	os.WriteFile(g.config, []byte("rate_limits:\n  - name: x\n    facet: nope\n"), 0o600)
	g.p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, g.p, "config reload refused")
	if a := do(t, clientFrom("127.0.0.31"), "GET", g.url+"/limited/r", nil); a.status != 200 {
		t.Fatalf("after a refused reload: %d", a.status)
	}
	if a := do(t, clientFrom("127.0.0.31"), "GET", g.url+"/limited/r", nil); a.status != 429 {
		t.Fatalf("old (burst 1) config no longer applies: %d", a.status)
	}
}

func waitFor(t *testing.T, p *proc, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(p.Output(), s) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %q in output:\n%s", s, p.Output())
}

func TestShutdownDrains(t *testing.T) {
	for _, front := range fronts {
		t.Run(front, func(t *testing.T) {
			up := newEcho(t)
			cfg := strings.Replace(baseConfig(front), "response_header_timeout: 1s", "response_header_timeout: 5s", 1)
			g := startGateway(t, cfg, up.srv.URL)
			res := make(chan answer, 1)
			go func() { res <- do(t, clientFrom("127.0.0.5"), "GET", g.url+"/slow?d=800ms", nil) }()
			time.Sleep(200 * time.Millisecond) // the request is in flight
			g.p.cmd.Process.Signal(syscall.SIGTERM)
			a := <-res
			if a.status != 200 || a.body != `{"slow":true}` {
				t.Fatalf("in-flight request during shutdown: %d %q", a.status, a.body)
			}
			select {
			case <-g.p.done:
			case <-time.After(10 * time.Second):
				t.Fatal("warden did not exit after draining")
			}
			if code := g.p.cmd.ProcessState.ExitCode(); code != 0 {
				t.Fatalf("exit code %d", code)
			}
			if _, err := net.DialTimeout("tcp", strings.TrimPrefix(g.url, "http://"), time.Second); err == nil {
				t.Fatal("still accepting after shutdown")
			}
		})
	}
}

func TestTLSAndHTTP2(t *testing.T) {
	up := newEcho(t)
	dir := t.TempDir()
	certFile, keyFile := selfSigned(t, dir)
	cfg := strings.Replace(baseConfig("auto"), "front: auto", "front: auto\ntls: {cert_file: "+certFile+", key_file: "+keyFile+"}", 1)
	g := startGateway(t, cfg, up.srv.URL)
	if g.front != "std" {
		t.Fatalf("TLS should pick the std front, got %q", g.front)
	}
	url := strings.Replace(g.url, "http://", "https://", 1)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true,
	}}
	resp, err := c.Get(url + "/h2")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e echoed
	json.NewDecoder(resp.Body).Decode(&e)
	if resp.ProtoMajor != 2 {
		t.Errorf("protocol %s, want HTTP/2", resp.Proto)
	}
	if got := http.Header(e.Header).Get("X-Forwarded-Proto"); got != "https" {
		t.Errorf("X-Forwarded-Proto = %q", got)
	}
	// h2 and HTTP/1.1 clients both get through.
	c1 := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
	r1, err := c1.Get(url + "/h1")
	if err != nil {
		t.Fatal(err)
	}
	r1.Body.Close()
	if r1.ProtoMajor != 1 || r1.StatusCode != 200 {
		t.Errorf("HTTP/1.1 over TLS: %s %d", r1.Proto, r1.StatusCode)
	}
}

func selfSigned(t *testing.T, dir string) (string, string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	cf, kf := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return cf, kf
}

func TestCheckConfig(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("listen: 127.0.0.1:8080\nlisten_typo: 1\n"), 0o600)
	out, err := exec.Command(binPath, "check-config", bad).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "bad.yaml:2:1:") {
		t.Fatalf("bad config: err=%v out=%s", err, out)
	}
	out, err = exec.Command(binPath, "check-config", "../examples/lab.yaml").CombinedOutput()
	if err != nil {
		t.Fatalf("examples/lab.yaml: %v %s", err, out)
	}
}

// A client that sends half a header and stalls is cut off, on both fronts.
func TestSlowClientCutOff(t *testing.T) {
	for _, front := range fronts {
		t.Run(front, func(t *testing.T) {
			up := newEcho(t)
			cfg := strings.Replace(baseConfig(front), "server: {", "server: {read_header_timeout: 1s, read_timeout: 1s, ", 1)
			g := startGateway(t, cfg, up.srv.URL)
			conn, err := net.Dial("tcp", strings.TrimPrefix(g.url, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			fmt.Fprintf(conn, "GET /x HTTP/1.1\r\nHost: x\r\nX-Slow: ")
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, 512)
			for {
				_, err := conn.Read(buf)
				if err != nil {
					if ne, ok := err.(net.Error); ok && ne.Timeout() {
						t.Fatal("a stalled client is still connected after 10s")
					}
					break // closed by warden
				}
			}
			if up.hits.Load() != 0 {
				t.Fatal("a half request reached the upstream")
			}
		})
	}
}
