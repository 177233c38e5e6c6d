package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// A HEAD on an inspected route: the upstream answers with a header and,
// as HTTP says, no body. That is no malformed answer: on every front it
// passes with the upstream's status, on_malformed: refuse does not turn
// it into a 502, and warden_inspect_malformed_total stays 0. Before, the
// empty body was read as JSON, so every HEAD (a link checker, curl -I) was
// refused 502 under refuse and counted and logged as malformed under pass.
func TestHeadOnInspectedRoute(t *testing.T) {
	platformURL := startPlatform(t, 100)
	for _, front := range fronts {
		t.Run(front, func(t *testing.T) {
			cfg := strings.Replace(contactBudgetConfig(front, 1), "inspect:\n", "inspect:\n  on_malformed: refuse\n", 1)
			g := startGateway(t, cfg, platformURL)
			auth := map[string]string{"Authorization": "Bearer " + token(t, "77")}
			for _, id := range []string{"10", "11", "12"} {
				a := do(t, clientFrom("127.0.0.5"), http.MethodHead, g.url+"/v1/users/"+id, auth)
				if a.status != 200 || a.body != "" {
					t.Fatalf("HEAD /v1/users/%s: %d %q, want 200 and no body", id, a.status, a.body)
				}
			}
			// A GET still counts: the HEADs spent nothing of the budget of 1.
			if a := do(t, clientFrom("127.0.0.5"), http.MethodGet, g.url+"/v1/users/10", auth); !contactServed(t, a) {
				t.Fatalf("GET after HEADs masked: %v %s", a.header, a.body)
			}
			m := adminDo(t, g, "GET", "/metrics", "").body
			if !strings.Contains(m, "warden_inspect_malformed_total 0") {
				t.Errorf("HEAD counted as malformed:\n%s", grepLines(m, "warden_inspect_"))
			}
		})
	}
}
