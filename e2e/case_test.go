package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
)

// Header names are case-insensitive: a token in "authorization" identifies
// the account as one in "Authorization" does (the platform takes it either
// way, so an unseen one would spend no account budget), and hop-by-hop
// headers in lower case are not forwarded.
func TestHeaderNameCase(t *testing.T) {
	platformURL := startPlatform(t, 500)
	up := newEcho(t)
	for _, front := range fronts {
		t.Run(front, func(t *testing.T) {
			cfg := contactBudgetConfig(front, 1)
			g := startGateway(t, cfg, platformURL)
			auth := "authorization: Bearer " + token(t, "77") + "\r\n"
			if a := rawGet(t, g, "/v1/users/10", auth); a.status != 200 || !contactServed(t, a) {
				t.Fatalf("first profile: %d %s, want its contact", a.status, a.body)
			}
			if a := rawGet(t, g, "/v1/users/11", auth); a.status != 200 || contactServed(t, a) {
				t.Fatalf("second profile: %d %s, want its contact masked (the account's budget is 1)", a.status, a.body)
			}

			e := decodeEcho(t, rawGet(t, startGateway(t, cfg, up.srv.URL), "/x",
				"keep-alive: timeout=5\r\nproxy-authorization: Basic eDp5\r\nte: gzip\r\nconnection: x-hop\r\nx-hop: 1\r\nx-keep: yes\r\n"))
			for _, name := range []string{"Keep-Alive", "Proxy-Authorization", "Te", "X-Hop"} {
				if v, ok := e.Header[name]; ok {
					t.Errorf("hop-by-hop %s forwarded: %q", name, v)
				}
			}
			if len(e.Header["X-Keep"]) != 1 {
				t.Errorf("end-to-end header lost: %v", e.Header)
			}
		})
	}
}

// Two account headers (or app keys) are refused: warden would count and
// record the first while an upstream reading the last served another
// account. The upstream never sees the request.
func TestRepeatedIdentityHeader(t *testing.T) {
	up := newEcho(t)
	for _, front := range fronts {
		t.Run(front, func(t *testing.T) {
			g := startGateway(t, fmt.Sprintf("front: %s\nlog: {format: text, level: warn}\nidentity:\n  account: {secret_env: LAB_JWT_SECRET}\n", front), up.srv.URL)
			before := up.hits.Load()
			for hdr, facet := range map[string]string{
				"Authorization: Bearer " + token(t, "1") + "\r\nauthorization: Bearer " + token(t, "2") + "\r\n": "account",
				"X-App-Key: a\r\nX-App-Key: b\r\n": "app",
			} {
				a := rawGet(t, g, "/x", hdr)
				if r := refusalOf(t, a); a.status != 400 || r.Rule != "identity" || r.Facet != facet {
					t.Fatalf("%q: %d %s, want 400 by rule identity on facet %s", hdr, a.status, a.body, facet)
				}
			}
			if n := up.hits.Load() - before; n != 0 {
				t.Fatalf("upstream saw %d refused requests", n)
			}
			if a := rawGet(t, g, "/x", "Authorization: Bearer "+token(t, "1")+"\r\nX-App-Key: a\r\n"); a.status != 200 {
				t.Fatalf("one of each: %d %s", a.status, a.body)
			}
		})
	}
}

// Headers whose names hold "_" are dropped by default, as nginx drops them:
// CGI-style upstreams read X_Forwarded_For as X-Forwarded-For (a client's
// forged address beside warden's) and X_App_Key as X-App-Key.
// underscore_headers: keep forwards them.
func TestUnderscoreHeaders(t *testing.T) {
	up := newEcho(t)
	for _, front := range fronts {
		for _, mode := range []string{"drop", "keep"} {
			t.Run(front+"/"+mode, func(t *testing.T) {
				g := startGateway(t, fmt.Sprintf("front: %s\nlog: {format: text, level: warn}\nserver: {underscore_headers: %s}\n", front, mode), up.srv.URL)
				e := decodeEcho(t, rawGet(t, g, "/x", "X_Forwarded_For: 6.6.6.6\r\nX_App_Key: k\r\nX-Keep: yes\r\n"))
				var got []string
				for name := range e.Header {
					if strings.Contains(name, "_") {
						got = append(got, name)
					}
				}
				if want := map[string]int{"drop": 0, "keep": 2}[mode]; len(got) != want {
					t.Errorf("underscored headers forwarded: %q, want %d of them", got, want)
				}
				if len(e.Header["X-Keep"]) != 1 || e.Header["X-Forwarded-For"][0] != "127.0.0.1" {
					t.Errorf("other headers: %v", e.Header)
				}
			})
		}
	}
}

// A header sent on several lines is one header: warden's forwarding
// headers replace every line the client sent, not the first alone (a
// second X-Forwarded-For line would reach the upstream as a forged
// address).
func TestRepeatedForwardingLines(t *testing.T) {
	up := newEcho(t)
	for _, front := range fronts {
		t.Run(front, func(t *testing.T) {
			g := startGateway(t, fmt.Sprintf("front: %s\nlog: {format: text, level: warn}\n", front), up.srv.URL)
			a := rawGet(t, g, "/x", "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: 7.7.7.7\r\n"+
				"Forwarded: for=6.6.6.6\r\nForwarded: for=7.7.7.7\r\nX-Request-Id: forged-1\r\nX-Request-Id: forged-2\r\n")
			e := decodeEcho(t, a)
			if got := e.Header["X-Forwarded-For"]; len(got) != 1 || got[0] != "127.0.0.1" {
				t.Errorf("X-Forwarded-For upstream: %q, want only the peer", got)
			}
			if got := e.Header["Forwarded"]; len(got) != 1 || got[0] != "for=127.0.0.1;proto=http" {
				t.Errorf("Forwarded upstream: %q", got)
			}
			if got := e.Header["X-Request-Id"]; len(got) != 1 || strings.HasPrefix(got[0], "forged") {
				t.Errorf("X-Request-Id upstream: %q, want warden's alone", got)
			}
			// The answer names the request as the upstream saw it (the id
			// `warden explain` takes), on every front.
			if got := a.header.Values("X-Request-Id"); len(got) != 1 || len(e.Header["X-Request-Id"]) != 1 || got[0] != e.Header["X-Request-Id"][0] {
				t.Errorf("X-Request-Id of the answer: %q, upstream got %q", got, e.Header["X-Request-Id"])
			}
		})
	}
}

// The answers warden makes at the edge, before or instead of the upstream
// (an ambiguous path, CONNECT, an upstream that is down), carry the
// request id of their body in X-Request-Id, as every other answer does,
// on every front: the id warden explain takes.
func TestEdgeAnswersCarryRequestID(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	for _, front := range fronts {
		t.Run(front, func(t *testing.T) {
			g := startGateway(t, fmt.Sprintf("front: %s\nlog: {format: text, level: error}\n", front), down)
			for _, c := range []struct {
				line   string
				status int
			}{{"GET /a%2Fb", 400}, {"CONNECT api.test:443", 405}, {"GET /x", 502}} {
				a := rawRequest(t, g, c.line, "", "")
				var body struct {
					RequestID string `json:"request_id"`
				}
				if err := json.Unmarshal([]byte(a.body), &body); err != nil || a.status != c.status || body.RequestID == "" {
					t.Fatalf("%s: %d %q", c.line, a.status, a.body)
				}
				if got := a.header.Values("X-Request-Id"); len(got) != 1 || got[0] != body.RequestID {
					t.Errorf("%s: X-Request-Id %q, body's request_id %q", c.line, got, body.RequestID)
				}
			}
		})
	}
}
