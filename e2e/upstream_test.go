package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// echo is an upstream that answers with what it received, so tests can see
// exactly what warden forwarded, and counts the requests that reached it.
type echo struct {
	srv  *httptest.Server
	hits atomic.Int64
}

type echoed struct {
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	URI     string              `json:"uri"` // the request target as sent
	Query   string              `json:"query"`
	Host    string              `json:"host"`
	Header  map[string][]string `json:"header"`
	Remote  string              `json:"remote"`
	BodyLen int                 `json:"body_len"`
}

func newEcho(t *testing.T) *echo {
	e := &echo{}
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		d, _ := time.ParseDuration(r.URL.Query().Get("d"))
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"slow":true}`))
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		fl := w.(http.Flusher)
		for i := 0; i < 3; i++ {
			w.Write([]byte("chunk\n"))
			fl.Flush()
			time.Sleep(50 * time.Millisecond)
		}
	})
	mux.HandleFunc("/trickle", func(w http.ResponseWriter, r *http.Request) {
		// n parts of a body gap apart, chunked or with a Content-Length
		// (cl=1), whose header comes at once: a stream, a slow download.
		e.hits.Add(1)
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		gap, _ := time.ParseDuration(r.URL.Query().Get("gap"))
		part := "part\n"
		if r.URL.Query().Get("cl") != "" {
			w.Header().Set("Content-Length", strconv.Itoa(n*len(part)))
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(200)
		fl := w.(http.Flusher)
		fl.Flush()
		for i := 0; i < n; i++ {
			select {
			case <-time.After(gap):
			case <-r.Context().Done():
				return
			}
			w.Write([]byte(part))
			fl.Flush()
		}
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		if !strings.EqualFold(r.Header.Get("Upgrade"), "echo") {
			http.Error(w, "want Upgrade: echo", 400)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		rw.Flush()
		br := bufio.NewReader(rw)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			rw.WriteString("echo: " + line)
			rw.Flush()
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		n := 0
		if r.Body != nil {
			buf := make([]byte, 32<<10)
			for {
				k, err := r.Body.Read(buf)
				n += k
				if err != nil {
					break
				}
			}
		}
		w.Header().Set("Content-Type", "application/json")
		if ct := r.URL.Query().Get("ct"); ct != "" { // the same body, labelled otherwise
			w.Header().Set("Content-Type", ct)
		}
		w.Header().Set("X-Upstream", "echo")
		if r.URL.Query().Get("hop") != "" { // hop-by-hop answer headers, for the gateway to strip
			w.Header().Set("Keep-Alive", "timeout=9")
			w.Header().Set("Proxy-Authenticate", "Basic")
			w.Header().Set("Connection", "X-Resp-Hop")
			w.Header().Set("X-Resp-Hop", "1")
		}
		json.NewEncoder(w).Encode(echoed{r.Method, r.URL.Path, r.RequestURI, r.URL.RawQuery, r.Host, r.Header, r.RemoteAddr, n})
	})
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

func decodeEcho(t *testing.T, a answer) echoed {
	t.Helper()
	var e echoed
	if err := json.Unmarshal([]byte(a.body), &e); err != nil {
		t.Fatalf("not an echo (status %d): %q", a.status, a.body)
	}
	return e
}

// An upstream answer warden cannot parse is a 502, and the log line says
// why without the answer's bytes: fasthttp and net/http quote what they
// could not read, and that is the upstream's data (here a contact).
func TestUpstreamGarbageIsNotLogged(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				bufio.NewReader(c).ReadString('\n')
				c.Write([]byte("<html>lena.morgan@example.com +15550100482</html>\r\n\r\n"))
			}()
		}
	}()
	for _, front := range fronts {
		t.Run(front, func(t *testing.T) {
			g := startGateway(t, baseConfig(front), "http://"+ln.Addr().String())
			a := do(t, clientFrom("127.0.0.5"), "GET", g.url+"/x", nil)
			if a.status != 502 {
				t.Fatalf("garbage answer: %d %s", a.status, a.body)
			}
			waitFor(t, g.p, "upstream error")
			if out := g.p.Output(); strings.Contains(out, "lena.morgan") || strings.Contains(out, "15550100482") {
				t.Fatalf("the upstream's bytes are in the log:\n%s", out)
			}
		})
	}
}

// An answer whose header came in time is not cut by the header timeout
// (baseConfig: 1 s) however long its body takes, as long as it keeps
// coming; a stream nothing inspects reaches the client as it comes.
func TestSlowBodyOutlastsTheHeaderTimeout(t *testing.T) {
	up := newEcho(t)
	for _, front := range fronts {
		t.Run(front, func(t *testing.T) {
			g := startGateway(t, baseConfig(front), up.srv.URL)
			for _, cl := range []string{"", "&cl=1"} {
				a := do(t, clientFrom("127.0.0.5"), "GET", g.url+"/trickle?n=4&gap=400ms"+cl, nil)
				if a.status != 200 || a.body != strings.Repeat("part\n", 4) {
					t.Errorf("trickle%s: %d %q, want 200 and the 4 parts", cl, a.status, a.body)
				}
			}
			// The first part reaches the client while the upstream holds
			// the rest back until the client has it.
			release := make(chan struct{})
			var held atomic.Bool
			stream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				w.Write([]byte("part\n"))
				w.(http.Flusher).Flush()
				select {
				case <-release:
				case <-time.After(5 * time.Second):
					held.Store(true)
				}
				w.Write([]byte("end\n"))
			}))
			defer stream.Close()
			gs := startGateway(t, baseConfig(front), stream.URL)
			resp, err := clientFrom("127.0.0.5").Get(gs.url + "/events")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			line, err := br.ReadString('\n')
			close(release)
			rest, _ := io.ReadAll(br)
			if err != nil || line != "part\n" || string(rest) != "end\n" || held.Load() {
				t.Fatalf("stream: first %q (%v), then %q; held until the upstream gave up: %v", line, err, rest, held.Load())
			}
		})
	}
}
