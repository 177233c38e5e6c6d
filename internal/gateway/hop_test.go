package gateway

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestIsHopName(t *testing.T) {
	for _, n := range hopHeaders {
		for _, v := range []string{n, toLower(n)} {
			if !isHopName(v) {
				t.Errorf("isHopName(%q) = false", v)
			}
		}
	}
	for _, n := range []string{"", "Host", "X-Keep", "Tex", "Connections", "Keep-Alives", "Authorization"} {
		if isHopName(n) {
			t.Errorf("isHopName(%q) = true", n)
		}
	}
}

func TestRawScan(t *testing.T) {
	cases := []struct {
		raw                                   string
		hop, fwd, shape, override, underscore bool
	}{
		{"Host: a\r\nUser-Agent: x\r\n", false, false, false, false, false},
		{"Host: a\r\nkeep-alive: timeout=5\r\n", true, false, false, false, false},
		{"Host: a\r\nX-Te: 1\r\nTE: trailers\r\n", true, false, false, false, false},
		{"Host: a\r\nX-Upgrade-Note: Upgrade\r\n", false, false, false, false, false},
		{"Host: a\r\nx-forwarded-for: 10.0.0.1\r\n", false, true, false, false, false},
		{"forwarded: for=1.2.3.4\r\nConnection: close\r\n", true, true, false, false, false},
		{"X-Request-Id: abc\r\n", false, true, false, false, false},
		{"X-Forwarded-Fo: 1\r\nX-Request-Ids: 2\r\n", false, false, false, false, false},
		{"Host: a\r\naccept-encoding: br\r\n", false, false, true, false, false},
		{"RANGE: bytes=0-9\r\n", false, false, true, false, false},
		{"If-Range: x\r\nX-Request-Id: 1\r\n", false, true, true, false, false},
		{"Upgrade: websocket\r\nConnection: Upgrade\r\n", true, false, true, false, false},
		{"Ranges: 1\r\nAccept-Encodings: br\r\n", false, false, false, false, false},
		{"x-http-method-override: GET\r\n", false, false, false, true, false},
		{"X-HTTP-Method: GET\r\nX-Method-Override: GET\r\n", false, false, false, true, false},
		{"X-HTTP-Method-Overrides: GET\r\n", false, false, false, false, false},
		{"X_App_Key: k\r\n", false, false, false, false, true},
		{"x_forwarded_for: 1.2.3.4\r\nHost: a\r\n", false, false, false, false, true},
		{"", false, false, false, false, false},
	}
	for _, c := range cases {
		want := headerScan{c.hop, c.fwd, c.shape, c.override, c.underscore}
		if got := rawScan([]byte(c.raw)); got != want {
			t.Errorf("rawScan(%q) = %+v, want %+v", c.raw, got, want)
		}
	}
	for _, n := range forwardHeaders {
		if !isForwardName(toLower(n)) {
			t.Errorf("isForwardName(%q) = false", toLower(n))
		}
	}
}

func toLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// An upstream answer's Connection field and the headers it names are
// hop-by-hop: the client gets neither (only the front's own close).
func TestStripHopResponse(t *testing.T) {
	cases := []struct {
		raw       string
		wantClose bool
	}{
		{"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Foo\r\nX-Foo: 1\r\nKeep-Alive: timeout=5\r\nX-Keep: yes\r\nContent-Length: 0\r\n\r\n", false},
		{"HTTP/1.1 200 OK\r\nConnection: X-Foo, close\r\nX-Foo: 1\r\nX-Keep: yes\r\nContent-Length: 0\r\n\r\n", true},
		{"HTTP/1.1 200 OK\r\nConnection: close\r\nX-Keep: yes\r\nContent-Length: 0\r\n\r\n", true},
	}
	for _, c := range cases {
		var resp fasthttp.Response
		if err := resp.Read(bufio.NewReader(strings.NewReader(c.raw))); err != nil {
			t.Fatal(err)
		}
		stripHopResponse(&resp.Header)
		out := resp.Header.String()
		for _, bad := range []string{"keep-alive", "X-Foo", "Keep-Alive"} {
			if strings.Contains(out, bad) {
				t.Errorf("%q: answer header kept %s:\n%s", c.raw, bad, out)
			}
		}
		if !strings.Contains(out, "X-Keep: yes") {
			t.Errorf("%q: end-to-end header lost:\n%s", c.raw, out)
		}
		if resp.Header.ConnectionClose() != c.wantClose {
			t.Errorf("%q: close = %v, want %v", c.raw, resp.Header.ConnectionClose(), c.wantClose)
		}
	}
}

// The upstream receives the client's User-Agent as sent, and none when the
// client sent none, on every front and on the loop's connections handed to
// the fast front (a chunked body). Before, the fast front's upstream client
// filled a missing one in with "User-Agent: warden" (fasthttp's
// HostClient.Name), so an upstream told a client without one, a sign of a
// script, from a browser by a header warden had made up.
func TestNoUserAgentMadeUp(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ua="+strings.Join(r.Header.Values("User-Agent"), ","))
	}))
	t.Cleanup(up.Close)
	requests := map[string]string{
		"plain":   "GET /v1/x HTTP/1.1\r\nHost: x\r\n\r\n",
		"chunked": "POST /v1/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
	}
	for _, front := range fronts {
		for name, req := range requests {
			t.Run(front+"/"+name, func(t *testing.T) {
				l := frontGateway(t, front, "", up.URL)
				c := dial(t, l.addr)
				c.send(req)
				if code, body, _ := c.answer("GET"); code != 200 || body != "ua=" {
					t.Fatalf("no User-Agent sent: %d %q, want 200 \"ua=\"", code, body)
				}
				c.send(strings.Replace(req, "Host: x\r\n", "Host: x\r\nUser-Agent: curl/8\r\n", 1))
				if code, body, _ := c.answer("GET"); code != 200 || body != "ua=curl/8" {
					t.Fatalf("User-Agent curl/8 sent: %d %q, want 200 \"ua=curl/8\"", code, body)
				}
			})
		}
	}
}
