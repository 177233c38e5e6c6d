package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// On an inspected route the upstream is asked for an answer warden can read
// whole: no upgrade, no range, only codings it decodes, only JSON. Each
// would otherwise carry the records past inspection. Other routes are
// forwarded as the client asked.
func TestInspectedRequestShape(t *testing.T) {
	up := newEcho(t)
	const shape = "Range: bytes=0-9\r\nIf-Range: \"v1\"\r\nAccept-Encoding: br, gzip;q=0.5, zstd\r\nAccept: text/csv, */*\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
	for _, front := range fronts {
		t.Run(front, func(t *testing.T) {
			g := startGateway(t, fmt.Sprintf(`front: %s
log: {format: text, level: warn}
inspect:
  routes:
    - route: "GET /records/{id}"
      records: ["$"]
      id: method
      classes: {contact: [host]}
`, front), up.srv.URL)
			e := decodeEcho(t, rawGet(t, g, "/records/1", shape))
			h := e.Header
			for _, name := range []string{"Range", "If-Range", "Upgrade"} {
				if len(h[name]) > 0 {
					t.Errorf("inspected route: %s forwarded: %q", name, h[name])
				}
			}
			if got := strings.Join(h["Accept-Encoding"], ", "); got != "gzip;q=0.5" {
				t.Errorf("inspected route: Accept-Encoding %q, want gzip;q=0.5", got)
			}
			if got := strings.Join(h["Accept"], ", "); got != "application/json" {
				t.Errorf("inspected route: Accept %q, want application/json", got)
			}
			// Judged on every line: a second Accept-Encoding line does not
			// slip br past the filter.
			e2 := decodeEcho(t, rawGet(t, g, "/records/3", "Accept-Encoding: gzip\r\nAccept-Encoding: br\r\n"))
			if got := e2.Header["Accept-Encoding"]; len(got) != 1 || got[0] != "gzip" {
				t.Errorf("two Accept-Encoding lines on an inspected route: upstream got %q, want [gzip]", got)
			}
			// A method override would have the upstream act on another
			// method than the one routes, limits and bans matched: dropped
			// on every route.
			const override = "X-HTTP-Method-Override: GET\r\nX-HTTP-Method: GET\r\nx-method-override: GET\r\n"
			for _, target := range []string{"/records/2", "/plain"} {
				e := decodeEcho(t, rawGet(t, g, target, override))
				for _, name := range []string{"X-Http-Method-Override", "X-Http-Method", "X-Method-Override"} {
					if len(e.Header[name]) > 0 {
						t.Errorf("%s: %s forwarded", target, name)
					}
				}
			}
			e = decodeEcho(t, rawGet(t, g, "/plain", strings.Replace(shape, "Connection: Upgrade\r\nUpgrade: websocket\r\n", "", 1)))
			if got := strings.Join(e.Header["Range"], ""); got != "bytes=0-9" {
				t.Errorf("other route: Range %q, want it forwarded", got)
			}
			if got := strings.Join(e.Header["Accept-Encoding"], ", "); got != "br, gzip;q=0.5, zstd" {
				t.Errorf("other route: Accept-Encoding %q, want it forwarded", got)
			}
		})
	}
}

// An upgrade request for a profile gets the rationed answer, not the
// platform's relayed as raw bytes (that was a way around every budget on
// the fast front).
func TestUpgradeOnInspectedRoute(t *testing.T) {
	platformURL := startPlatform(t, 500)
	for _, front := range fronts {
		t.Run(front, func(t *testing.T) {
			g := startGateway(t, contactBudgetConfig(front, 0), platformURL)
			a := rawGet(t, g, "/v1/users/21", "Authorization: Bearer "+token(t, "77")+"\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n")
			if a.status != 200 || contactServed(t, a) || a.header.Get("Warden-Masked") == "" {
				t.Fatalf("upgrade request: %d %v %s, want the profile with its contact masked", a.status, a.header, a.body)
			}
		})
	}
}

// A request body goes upstream as sent: its bytes, and no Content-Type the
// client did not send.
func TestBodyForwardedAsSent(t *testing.T) {
	up := newEcho(t)
	for _, front := range fronts {
		t.Run(front, func(t *testing.T) {
			g := startGateway(t, fmt.Sprintf("front: %s\nlog: {format: text, level: warn}\n", front), up.srv.URL)
			for _, ct := range []string{"", "application/x-custom"} {
				hdr := ""
				if ct != "" {
					hdr = "Content-Type: " + ct + "\r\n"
				}
				e := decodeEcho(t, rawRequest(t, g, "POST /upload", hdr, "hello"))
				if got := strings.Join(e.Header["Content-Type"], ","); got != ct || e.BodyLen != 5 {
					t.Errorf("Content-Type %q sent: upstream got %q and %d body bytes", ct, got, e.BodyLen)
				}
			}
		})
	}
}

// On a mapped route, an answer that is not JSON is refused under
// on_other_type: refuse (inspection cannot read it), and passed under the
// default; answers of other routes are never judged by it.
func TestOtherTypeOnMappedRoute(t *testing.T) {
	up := newEcho(t)
	for _, front := range fronts {
		for _, policy := range []string{"pass", "refuse"} {
			t.Run(front+"/"+policy, func(t *testing.T) {
				g := startGateway(t, fmt.Sprintf(`front: %s
log: {format: text, level: warn}
inspect:
  on_other_type: %s
  routes:
    - route: "GET /export"
      records: ["$"]
      id: id
      classes: {contact: [email]}
`, front, policy), up.srv.URL)
				a := rawGet(t, g, "/export?ct=text/csv", "")
				want := map[string]int{"pass": 200, "refuse": 502}[policy]
				if a.status != want {
					t.Fatalf("non-JSON answer on a mapped route: %d %s, want %d", a.status, a.body, want)
				}
				if policy == "refuse" && (refusalOf(t, a).Rule != "other_type" || strings.Contains(a.body, `"method"`)) {
					t.Fatalf("refusal %s", a.body)
				}
				if a := rawGet(t, g, "/elsewhere?ct=text/csv", ""); a.status != 200 {
					t.Fatalf("unmapped route: %d %s", a.status, a.body)
				}
			})
		}
	}
}
