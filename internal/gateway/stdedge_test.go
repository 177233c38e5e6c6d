package gateway

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/refusal"
)

// On a cleartext std connection, what net/http answers itself before a
// request reaches the handler is warden's answer (JSON, rule request, a
// request id, counted); answers to served requests, and prior-knowledge
// HTTP/2 (h2c), whose frames stdConn leaves alone, are untouched, and a
// served answer whose body says "HTTP/1.1 400" is passed as it is.
func TestStdConnAnswers(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "HTTP/1.1 400 Bad Request\r\n\r\n") // an answer that looks like net/http's own
	}))
	t.Cleanup(up.Close)
	l := frontGateway(t, "std", "server: {max_header_bytes: 1024}\n", up.URL)
	raw := func(t *testing.T, req string) (*http.Response, string) {
		t.Helper()
		c, err := net.DialTimeout("tcp", l.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, req)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%.30q: %v", req, err)
		}
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	for _, c := range []struct {
		name, req string
		status    int
		reason    string
	}{
		{"no Host", "GET / HTTP/1.1\r\n\r\n", 400, "malformed"},
		{"HTTP/2.5", "GET / HTTP/2.5\r\nHost: x\r\n\r\n", 505, "malformed"},
		{"over the bound", "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("a", 2048) + "\r\n\r\n", 431, "header_too_large"},
		{"past net/http's", "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("a", 80<<10) + "\r\n\r\n", 431, "header_too_large"},
		{"bad transfer encoding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501, "malformed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := raw(t, c.req)
			var b struct {
				Rule, Facet string
				RequestID   string `json:"request_id"`
			}
			if err := json.Unmarshal([]byte(body), &b); err != nil || resp.StatusCode != c.status || b.Rule != refusal.RuleRequest ||
				b.Facet != c.reason || b.RequestID == "" || resp.Header.Get("X-Request-Id") != b.RequestID || !resp.Close {
				t.Fatalf("%d %s (%v), want %d by rule request, reason %s, with its id, closing", resp.StatusCode, body, err, c.status, c.reason)
			}
		})
	}
	if n := l.metric(t, "warden_refusals_total", map[string]string{"rule": "request", "facet": "malformed"}); n != 3 {
		t.Errorf("malformed counted %v times, want 3", n)
	}
	if n := l.metric(t, "warden_bad_requests_total", map[string]string{"front": "std", "reason": "header_too_large"}); n != 2 {
		t.Errorf("header_too_large counted %v times, want 2", n)
	}
	// A served answer, twice on one connection, the second after the
	// connection went idle: the upstream's bytes as they came.
	c, err := net.DialTimeout("tcp", l.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for i := range 2 {
		fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != "HTTP/1.1 400 Bad Request\r\n\r\n" {
			t.Fatalf("served answer %d: %d %q", i, resp.StatusCode, b)
		}
	}
	// h2c, prior knowledge.
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: &protos}}
	resp, err := hc.Get("http://" + l.addr + "/h2")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 || string(b) != "HTTP/1.1 400 Bad Request\r\n\r\n" {
		t.Fatalf("h2c: %s %d %q", resp.Proto, resp.StatusCode, b)
	}
}

// BenchmarkStdHeaderSize: what warden's own header bound costs the std
// front per request (a browser-like header of 12 fields).
func BenchmarkStdHeaderSize(b *testing.B) {
	r := httptest.NewRequest("GET", "/v1/users/1234?fields=all", nil)
	for _, h := range []string{"Accept", "Accept-Encoding", "Accept-Language", "Authorization", "Cache-Control", "Connection",
		"Cookie", "Referer", "Sec-Fetch-Mode", "User-Agent", "X-Forwarded-For", "X-App-Key"} {
		r.Header.Set(h, strings.Repeat("v", 40))
	}
	n := 0
	for b.Loop() {
		n += stdHeaderSize(r)
	}
	if n == 0 {
		b.Fatal("no size")
	}
}
