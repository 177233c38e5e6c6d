package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// Size bounds on both fronts: a request body over server.max_body_bytes is
// refused with 413 and never reaches the upstream whole; a body within the
// bound arrives whole; an inspected answer over the bound is never passed
// on unrationed.
func TestBodyLimits(t *testing.T) {
	const limit = 64 << 10
	var hits, complete atomic.Int64 // requests, and bodies received to their end
	var lastLen atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/upload", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			return // a body cut short: the gateway refused it midway
		}
		complete.Add(1)
		lastLen.Store(n)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"received":%d}`, n)
	})
	mux.HandleFunc("/profile/{id}", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("pad"))
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":%q,"email":"a@example.com","pad":%q}`, r.PathValue("id"), strings.Repeat("x", n))
	})
	mux.HandleFunc("/export", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Content-Type", "application/octet-stream")
		if r.URL.Query().Get("chunked") == "" {
			w.Header().Set("Content-Length", strconv.Itoa(n))
		}
		chunk := bytes.Repeat([]byte("e"), 32<<10)
		for n > 0 {
			k := min(n, len(chunk))
			if _, err := w.Write(chunk[:k]); err != nil {
				return
			}
			n -= k
		}
	})
	up := httptest.NewServer(mux)
	t.Cleanup(up.Close)

	for _, front := range fronts {
		t.Run(front, func(t *testing.T) {
			g := startGateway(t, fmt.Sprintf(`front: %s
log: {format: text, level: warn}
server: {max_body_bytes: %d}
inspect:
  routes:
    - route: "GET /profile/{id}"
      records: ["$"]
      id: id
      classes: {contact: [email]}
`, front, limit), up.URL)
			c := &http.Client{}
			post := func(body io.Reader, length int64) *http.Response {
				t.Helper()
				req, _ := http.NewRequest("POST", g.url+"/upload", body)
				req.ContentLength = length // -1: chunked
				resp, err := c.Do(req)
				if err != nil {
					t.Fatalf("POST: %v", err)
				}
				t.Cleanup(func() { resp.Body.Close() })
				return resp
			}

			t.Run("body within the bound arrives whole", func(t *testing.T) {
				for _, chunked := range []bool{false, true} {
					n := int64(limit - 100)
					length := n
					if chunked {
						length = -1
					}
					resp := post(bytes.NewReader(bytes.Repeat([]byte("a"), int(n))), length)
					b, _ := io.ReadAll(resp.Body)
					if resp.StatusCode != 200 || lastLen.Load() != n {
						t.Fatalf("chunked %v: %d %s, upstream received %d of %d", chunked, resp.StatusCode, b, lastLen.Load(), n)
					}
				}
			})
			// A declared length over the bound never reaches the upstream. A
			// chunked one is buffered and refused by the fast front; the std
			// front streams it, so the upstream may see its start, but never
			// a complete body.
			t.Run("body over the bound is 413 and never reaches the upstream whole", func(t *testing.T) {
				for _, chunked := range []bool{false, true} {
					before, beforeComplete := hits.Load(), complete.Load()
					n := int64(limit + 1000)
					length := n
					if chunked {
						length = -1
					}
					resp := post(bytes.NewReader(bytes.Repeat([]byte("a"), int(n))), length)
					b, _ := io.ReadAll(resp.Body)
					if resp.StatusCode != 413 {
						t.Fatalf("chunked %v: %d %s, want 413", chunked, resp.StatusCode, b)
					}
					if !strings.Contains(string(b), `"error"`) {
						t.Errorf("chunked %v: 413 body %q is not warden's JSON", chunked, b)
					}
					if complete.Load() != beforeComplete {
						t.Fatalf("chunked %v: the upstream received a refused body whole", chunked)
					}
					if (!chunked || front == "fast") && hits.Load() != before {
						t.Fatalf("chunked %v: the upstream was called for a refused body", chunked)
					}
				}
				// Both refusals counted once, as the client's fault, on either
				// front (the std front's chunked cut surfaces as an upstream
				// error, and must not be counted as one).
				m := adminDo(t, g, "GET", "/metrics", "").body
				if want := fmt.Sprintf(`warden_bad_requests_total{front=%q,reason="body_too_large"} 2`, front); !strings.Contains(m, want) {
					t.Errorf("metrics lack %s:\n%s", want, grepLines(m, "warden_bad_requests_total"))
				}
				if strings.Contains(m, "warden_upstream_errors_total") {
					t.Errorf("a refused request body counted as an upstream error:\n%s", grepLines(m, "warden_upstream_errors_total"))
				}
			})
			// Both fronts stream an answer nothing inspects, at any size.
			t.Run("uninspected answer over the bound streams whole", func(t *testing.T) {
				for _, chunked := range []string{"", "1"} {
					n := 20 * limit
					a := do(t, clientFrom("127.0.4.2"), "GET", g.url+fmt.Sprintf("/export?n=%d&chunked=%s", n, chunked), nil)
					if a.status != 200 || len(a.body) != n || strings.Trim(a.body, "e") != "" {
						t.Fatalf("chunked %q: %d, %d bytes of %d", chunked, a.status, len(a.body), n)
					}
				}
				// The upstream connection went back to the pool: the next
				// answer on it is whole too.
				if a := do(t, clientFrom("127.0.4.2"), "GET", g.url+"/profile/3?pad=10", nil); a.status != 200 || !strings.Contains(a.body, `"id":"3"`) {
					t.Fatalf("after a streamed answer: %d %s", a.status, a.body)
				}
			})
			t.Run("inspected answer over the bound is not passed on", func(t *testing.T) {
				a := do(t, clientFrom("127.0.4.1"), "GET", g.url+"/profile/1?pad=100", nil)
				if a.status != 200 || !strings.Contains(a.body, "a@example.com") {
					t.Fatalf("small answer: %d %s", a.status, a.body)
				}
				a = do(t, clientFrom("127.0.4.1"), "GET", g.url+fmt.Sprintf("/profile/2?pad=%d", 2*limit), nil)
				if a.status == 200 || strings.Contains(a.body, "a@example.com") {
					t.Fatalf("answer over the bound: %d, %d bytes, contact passed: %v", a.status, len(a.body), strings.Contains(a.body, "a@example.com"))
				}
				if a.status != 502 {
					t.Errorf("answer over the bound: %d %s, want 502", a.status, a.body)
				}
			})
		})
	}
}

// grepLines is the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
