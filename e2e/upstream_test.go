package e2e

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
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
