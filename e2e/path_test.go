package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// rawGet sends GET target (written as it is, unlike Go's client) over a
// fresh connection and reads the answer.
func rawGet(t *testing.T, g *gw, target string, hdr string) answer {
	t.Helper()
	return rawRequest(t, g, "GET "+target, hdr, "")
}

// rawRequest sends a request line, header lines (each ending in CRLF) and
// a body, written as they are, over a fresh connection and reads the
// answer.
func rawRequest(t *testing.T, g *gw, line, hdr, body string) answer {
	t.Helper()
	conn := rawConn(t, g)
	if body != "" {
		hdr += fmt.Sprintf("Content-Length: %d\r\n", len(body))
	}
	fmt.Fprintf(conn, "%s HTTP/1.1\r\nHost: api.test\r\n%sConnection: close\r\n\r\n%s", line, hdr, body)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

// A path is matched and forwarded in one canonical form, so a caller
// cannot spell a look-up so that the route map misses it while the
// upstream, decoding and cleaning the path its own way, serves it: every
// spelling of a profile's path below is rationed as the plain one. An
// encoded slash, one segment to warden and two to an upstream that routes
// on the decoded path (the lab platform does), is refused.
func TestPathSpellings(t *testing.T) {
	platformURL := startPlatform(t, 500)
	for _, front := range fronts {
		t.Run(front, func(t *testing.T) {
			g := startGateway(t, contactBudgetConfig(front, 1), platformURL)
			auth := "Authorization: Bearer " + token(t, "77") + "\r\n"
			if a := rawGet(t, g, "/v1/users/10", auth); a.status != 200 || !contactServed(t, a) {
				t.Fatalf("first profile: %d %s, want its contact (within the budget)", a.status, a.body)
			}
			for i, target := range []string{
				"/v1/users/%31%31", "/v1//users/12", "/v1/./users/13", "/v1/x/../users/14",
				"/v1/users/%2e/15", "//v1/users/16", "/v1/%75sers/17", "http://api.test/v1/./users/18",
			} {
				a := rawGet(t, g, target, auth)
				var p struct {
					ID string `json:"id"`
				}
				if a.status != 200 || json.Unmarshal([]byte(a.body), &p) != nil || p.ID != fmt.Sprint(11+i) {
					t.Fatalf("GET %s: %d %s, want profile %d", target, a.status, a.body, 11+i)
				}
				if contactServed(t, a) || a.header.Get("Warden-Masked") == "" {
					t.Fatalf("GET %s: contact served past the budget: %s", target, a.body)
				}
			}
			for _, target := range []string{"/v1/users%2F19", "/v1/users%2f19", "/v1/users%5C19", "/v1/users/19%00"} {
				a := rawGet(t, g, target, auth)
				if a.status != 400 || !strings.Contains(a.body, "path") {
					t.Fatalf("GET %s: %d %s, want 400 naming the path", target, a.status, a.body)
				}
			}
			// A malformed escape: refused too (by net/http itself on the std front).
			if a := rawGet(t, g, "/v1/users/%zz", auth); a.status != 400 {
				t.Fatalf("GET /v1/users/%%zz: %d %s, want 400", a.status, a.body)
			}
			n := 5 // the four and the malformed escape; net/http refuses that one uncounted
			if front == "std" {
				n = 4
			}
			if m := adminDo(t, g, "GET", "/metrics", "").body; !strings.Contains(m, fmt.Sprintf(`warden_bad_requests_total{front=%q,reason="ambiguous_path"} %d`, front, n)) {
				t.Fatalf("ambiguous paths not counted:\n%s", grepLines(m, "warden_bad_requests_total"))
			}
		})
	}
}

// The upstream receives the canonical path, and with encoded_slashes: keep
// an encoded slash is passed as it was sent (upper-cased).
func TestPathForwarded(t *testing.T) {
	up := newEcho(t)
	for _, front := range fronts {
		for _, keep := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/keep=%v", front, keep), func(t *testing.T) {
				mode := "reject"
				if keep {
					mode = "keep"
				}
				g := startGateway(t, fmt.Sprintf("front: %s\nlog: {format: text, level: warn}\nserver: {encoded_slashes: %s}\n", front, mode), up.srv.URL)
				cases := map[string]string{
					"/a/./b/../c//d/%7e%41?q=%2F": "/a/c/d/~A?q=%2F",
					"/plain/path?x=1":             "/plain/path?x=1",
					"/caf%c3%a9/":                 "/caf%C3%A9/",
				}
				if keep {
					cases["/groups/a%2fb/./members"] = "/groups/a%2Fb/members"
				}
				for target, want := range cases {
					a := rawGet(t, g, target, "")
					if e := decodeEcho(t, a); e.URI != want {
						t.Errorf("GET %s: upstream got %q, want %q", target, e.URI, want)
					}
				}
				before := up.hits.Load()
				a := rawGet(t, g, "/groups/a%2Fb/members", "")
				if keep {
					if e := decodeEcho(t, a); e.URI != "/groups/a%2Fb/members" {
						t.Errorf("encoded slash kept: upstream got %q", e.URI)
					}
				} else if a.status != 400 || up.hits.Load() != before {
					t.Errorf("encoded slash: %d %s, upstream hit %d times; want 400 and no hit", a.status, a.body, up.hits.Load()-before)
				}
			})
		}
	}
}

// OPTIONS * (a server-wide OPTIONS, a load balancer's probe) is a request
// like any other on every front: admitted and forwarded, the upstream's
// answer passed with warden's X-Request-Id. On the std front net/http
// answered it itself (its general OPTIONS handler, 200 before any handler
// ran), and the std front's edge (stdConn) took that 200 for one of
// net/http's refusals: the client got a 200 whose body was a refusal
// (rule request, facet malformed), recorded and counted as a bad request.
func TestOptionsAsteriskForwarded(t *testing.T) {
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upstream: "+r.Method+" "+r.RequestURI)
	}))
	up.Config.DisableGeneralOptionsHandler = true // its handler answers, as any upstream that serves OPTIONS *
	up.Start()
	t.Cleanup(up.Close)
	for _, front := range fronts {
		t.Run(front, func(t *testing.T) {
			g := startGateway(t, "front: "+front+"\nlog: {format: text, level: warn}\n", up.URL)
			a := rawRequest(t, g, "OPTIONS *", "", "")
			if a.status != 200 || a.body != "upstream: OPTIONS *" || a.header.Get("X-Request-Id") == "" {
				t.Fatalf("OPTIONS *: %d %q (X-Request-Id %q); want the upstream's answer with warden's id",
					a.status, a.body, a.header.Get("X-Request-Id"))
			}
		})
	}
}
