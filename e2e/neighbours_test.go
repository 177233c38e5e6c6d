package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// neighboursConfig has tight address limits and budgets, counted the
// default way (identified: own), on the given store section.
func neighboursConfig(store string) string {
	return `log: {format: json, level: info}
identity:
  account: {secret_env: LAB_JWT_SECRET}
` + store + `rate_limits:
  - {name: per-ip, facet: ip, rate: 1/m, burst: 5}
  - {name: per-net, facet: net, rate: 1/m, burst: 40}
  - {name: per-ip-shadow, facet: ip, rate: 1/m, burst: 2, mode: shadow}
` + profileRoute + `ration:
  budgets:
    - {name: contact-ip, facet: ip, class: contact, limit: 3, window: 24h}
    - {name: contact-ip-shadow, facet: ip, class: contact, limit: 1, window: 24h, mode: shadow}
`
}

// Behind one address, a harvester (anonymous, and then with an account of
// its own) retries refused requests at once, keeping the address's
// allowance empty; real users with accounts behind the same address are
// never refused or masked for it. Rules in shadow mode change nothing and
// are counted. On both stores.
func TestNoCollateralHarm(t *testing.T) {
	platform := startPlatform(t, 2000)
	for _, backend := range []string{"memory", "redis"} {
		t.Run(backend, func(t *testing.T) {
			g := startGateway(t, neighboursConfig(storeSection(t, backend)), platform)
			c := clientFrom("127.0.9.1") // the shared address
			get := func(id int, tok string) answer {
				h := map[string]string{}
				if tok != "" {
					h["Authorization"] = "Bearer " + tok
				}
				return do(t, c, "GET", fmt.Sprintf("%s/v1/users/%d", g.url, id), h)
			}
			// The anonymous harvester: 5 admitted, 3 contacts served, then
			// refused, and it retries at once.
			refused := 0
			for i := range 30 {
				if a := get(100+i, ""); a.status == 429 {
					refused++
				}
			}
			if refused != 25 {
				t.Fatalf("anonymous requests refused: %d of 30, want 25 (per-ip burst 5)", refused)
			}
			// A harvester with an account behind the same address meets
			// the same allowance on its own.
			harv := token(t, "666")
			refused, contacts := 0, 0
			for i := range 20 {
				a := get(200+i, harv)
				if a.status == 429 {
					refused++
					continue
				}
				if contactServed(t, a) {
					contacts++
				}
			}
			if refused != 15 || contacts != 3 {
				t.Fatalf("identified harvester: %d refused, %d contacts, want 15 and 3", refused, contacts)
			}
			// Real users behind the same address: never refused or masked.
			for u := range 5 {
				tok := token(t, fmt.Sprint(10+u))
				for i := range 3 {
					a := get(300+u*10+i, tok)
					if a.status != 200 || !contactServed(t, a) {
						t.Fatalf("user %d, look-up %d: %d %s: harmed by a neighbour", u, i, a.status, a.body)
					}
				}
			}
			m := adminDo(t, g, "GET", "/metrics", "").body
			for _, want := range []string{
				`warden_shadow_total{action="refuse",rule="per-ip-shadow"}`,
				`warden_shadow_total{action="mask",rule="contact-ip-shadow"}`,
			} {
				if !strings.Contains(m, want) {
					t.Errorf("metrics lack %s", want)
				}
			}
			if out := g.p.Output(); !strings.Contains(out, `"msg":"would have refused","rule":"per-ip-shadow","mode":"shadow","request_id":"`) {
				t.Errorf("no would-have line in the log")
			}
		})
	}
}

// The unreferenced rule on an address (ration.unreferenced.facet: ip, as
// for a platform whose profiles anonymous visitors read) counts an
// account behind it on [address, account], as the address budgets do
// (identified: own, the default): a harvester with an account that spends
// the address's allowance of ids never shown, or fills its link memory,
// costs a real user behind the same address nothing; anonymous look-ups
// still share the address's allowance. On both stores.
func TestNoCollateralHarmUnreferencedOnAddress(t *testing.T) {
	platform := startPlatform(t, 2000)
	for _, backend := range []string{"memory", "redis"} {
		t.Run(backend, func(t *testing.T) {
			cfg := `log: {format: json, level: info}
identity:
  account: {secret_env: LAB_JWT_SECRET}
` + storeSection(t, backend) + `inspect:
  routes:
    - route: "GET /v1/users/{id}"
      records: ["$"]
      id: id
      classes: {contact: [email, phone]}
      lookup: id
ration:
  unreferenced: {facet: ip, limit: 1, window: 24h, classes: [contact]}
`
			g := startGateway(t, cfg, platform)
			c := clientFrom("127.0.9.2") // the shared address
			get := func(id int, tok string) answer {
				return do(t, c, "GET", fmt.Sprintf("%s/v1/users/%d", g.url, id), map[string]string{"Authorization": "Bearer " + tok})
			}
			harv := token(t, "666")
			served := 0
			for i := range 5 {
				if contactServed(t, get(100+i, harv)) {
					served++
				}
			}
			if served != 1 {
				t.Fatalf("harvester behind the address: %d of 5 ids never shown served, want 1 (limit 1)", served)
			}
			// A real user behind the same address opens one profile it was
			// sent a link to: its own first look-up of the day.
			if a := get(300, token(t, "10")); !contactServed(t, a) {
				t.Fatalf("user behind the address masked for its neighbour's look-ups: %s", a.body)
			}
		})
	}
}
