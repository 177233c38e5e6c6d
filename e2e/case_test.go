package e2e

import (
	"fmt"
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
			cfg := fmt.Sprintf(`front: %s
log: {format: text, level: warn}
identity:
  account: {secret_env: LAB_JWT_SECRET}
`+profileRoute+`ration:
  budgets:
    - {name: contact-account, facet: account, class: contact, limit: 1, window: 24h}
`, front)
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
