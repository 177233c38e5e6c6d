package gateway

import (
	"bufio"
	"bytes"
	"context"
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
	"github.com/valyala/fasthttp"

	"github.com/warden-gw/warden/internal/config"
)

// Masked answers leave the fast front whole and alone, whether the rewrite
// fits the upstream's buffer (copied into it) or not (buffers traded), and
// in any order: a buffer reused for the next answer never shows a previous
// one's bytes, and Content-Length is the rewritten body's.
func TestFastRewriteBuffers(t *testing.T) {
	cfg, err := config.Parse("rewrite.yaml", []byte(`inspect:
  routes:
    - route: "GET /v1/users/{id}"
      records: ["$"]
      id: id
      classes: {contact: [email, phone]}
ration:
  scopes:
    - {class: contact, scope: partner}
`))
	if err != nil {
		t.Fatal(err)
	}
	f := benchFront(t, cfg)
	ctx := new(fasthttp.RequestCtx)
	// Small answers fit the upstream's buffer; 3000 and 20000 bytes of bio
	// make a rewrite larger than the buffer the front holds from before.
	pads := []int{0, 3000, 0, 0, 20000, 10, 3000, 0, 20000, 20000, 0}
	for n := range 3 {
		for i, pad := range pads {
			id := fmt.Sprintf("%d", 100*n+i+1)
			req := new(fasthttp.Request)
			req.SetRequestURI(fmt.Sprintf("/v1/users/%s?pad=%d", id, pad))
			req.Header.SetHost("127.0.0.1:8080")
			var wire bytes.Buffer
			if err := serveOnce(f, ctx, req, bufio.NewWriter(&wire)); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(&wire), nil)
			if err != nil {
				t.Fatalf("answer %s: %v", id, err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("answer %s: body: %v", id, err)
			}
			if resp.StatusCode != 200 || resp.ContentLength != int64(len(body)) || wire.Len() != 0 {
				t.Fatalf("answer %s: status %d, Content-Length %d for %d bytes, %d bytes left over", id, resp.StatusCode, resp.ContentLength, len(body), wire.Len())
			}
			var p map[string]any
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatalf("answer %s (pad %d) is not JSON: %v\n%.300s", id, pad, err, body)
			}
			bio, _ := p["bio"].(string)
			if p["id"] != id || p["email"] != nil || p["phone"] != nil || p["city"] != "Vancouver" ||
				len(bio) != len("Collecting old cameras and older stories. Grew up by the sea, live in the city now. Museums, markets and long walks. Mountains in summer, books in winter.")+pad ||
				strings.Trim(bio[len(bio)-pad:], "x") != "" {
				t.Fatalf("answer %s (pad %d) not the platform's with contact masked: id %v email %v phone %v city %v, bio of %d bytes",
					id, pad, p["id"], p["email"], p["phone"], p["city"], len(bio))
			}
			if !strings.Contains(string(body), `"rules":["scope-contact"]`) || resp.Header.Get("Warden-Masked") != "1; rules=scope-contact" {
				t.Fatalf("answer %s: no mask note or header: %q\n%.200s", id, resp.Header.Get("Warden-Masked"), body)
			}
		}
	}
}

// readDeadlines counts the read deadlines fasthttp sets on the client
// connections a listener hands out.
type readDeadlines struct {
	net.Listener
	n *atomic.Int64
}

func (l readDeadlines) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countedConn{c, l.n}, nil
}

type countedConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countedConn) SetReadDeadline(t time.Time) error {
	c.n.Add(1)
	return c.Conn.SetReadDeadline(t)
}

// On a keep-alive connection to the fast front, a request without a body
// moves the read deadline twice (idle_timeout's wait, then the header's
// bound at its first byte), as before the header got a bound of its own; a
// request with a body once more, for read_timeout from the header's end.
// Each move is a runtime timer update on the request path. Counted under
// the coarseConn: the moves it applies.
func TestFastReadDeadlinesPerRequest(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, n)
	}))
	t.Cleanup(up.Close)
	cfg, err := config.Parse("deadlines.yaml", []byte("front: fast\nlog: {level: error}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Upstream.URL = up.URL
	g := testGateway(t, cfg, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	done := make(chan error, 1)
	go func() { done <- g.Serve(readDeadlines{ln, &n}) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = g.Shutdown(ctx)
		<-done
	})
	conn, err := net.DialTimeout("tcp", ln.Addr().String(), hangBound)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(hangBound))
	br := bufio.NewReader(conn)
	do := func(req, want string) {
		t.Helper()
		if _, err := io.WriteString(conn, req); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != want {
			t.Fatalf("%q: %d %s, want 200 %s", req, resp.StatusCode, b, want)
		}
	}
	const get, post = "GET /x HTTP/1.1\r\nHost: gw.test\r\n\r\n", "POST /x HTTP/1.1\r\nHost: gw.test\r\nContent-Length: 3\r\n\r\nabc"
	do(get, "0")
	do(get, "0")
	do(post, "3")
	do(get, "0")
	conn.Close()
	// Counted once the server is done with the connection: set at accept
	// (the first request's header bound), then per later request the
	// idle wait and the header's bound, the POST's body bound, and the
	// idle wait in which the close came.
	f := g.front.(*fastFront)
	for end := time.Now().Add(hangBound); f.srv.GetOpenConnectionsCount() > 0; time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the connection is still open")
		}
	}
	if got, want := n.Load(), int64(1+2+(2+1)+2+1); got != want {
		t.Errorf("the read deadline moved %d times, want %d", got, want)
	}
}

// A client connection the loop front hands to the fast front after
// streaming it an answer too large to buffer is a keep-alive connection
// between requests: it waits idle_timeout for the next request, whose
// header is then bounded by read_header_timeout from its first byte, as on
// the loop. (Taken as a new connection, it was closed at
// read_header_timeout of idling.)
func TestHandedOverConnIdles(t *testing.T) {
	big := strings.Repeat("s", 2<<20) // past the loop's buffer (loopMaxBuffered): streamed off the loop
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			_, _ = io.WriteString(w, big)
			return
		}
		_, _ = io.WriteString(w, r.Method+" "+r.URL.RequestURI()+" ")
	}))
	t.Cleanup(up.Close)
	l := loopGateway(t, "server: {read_header_timeout: 200ms, idle_timeout: 5s}\n", up.URL)
	c := dial(t, l.addr)
	c.send("GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	c.expect("GET", big)
	time.Sleep(600 * time.Millisecond) // idle: three header timeouts, well within idle_timeout
	c.send("GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
	c.expect("GET", "GET /next ")
	// Its header trickled: bounded from its first byte, answered 408.
	c.send("GET /slow HTTP/1.1\r\n")
	if code, _, _ := c.answer("GET"); code != 408 {
		t.Fatalf("header not done in time: %d, want 408", code)
	}
}
