package e2e

import (
	"fmt"
	"testing"
)

// An exemption names a registered app: only the app's key earns it. Sending
// the app's name (or any other key) in X-App-Key is no app: refused by
// default (identity.app.unregistered: refuse), and with strip forwarded
// without the key, the budget applying.
func TestAppKeyExemption(t *testing.T) {
	platform := startPlatform(t, 500)
	for _, policy := range []string{"refuse", "strip"} {
		g := startGateway(t, `log: {format: text, level: warn}
identity:
  account: {secret_env: LAB_JWT_SECRET}
  app:
    keys: [{app: partner-app, key_env: LAB_PARTNER_KEY}]
    unregistered: `+policy+`
`+profileRoute+`ration:
  budgets:
    - {name: contact-account, facet: account, class: contact, limit: 2, window: 24h, exempt: {apps: [partner-app]}}
`, platform)
		wrong := 2 // contacts served with a wrong key: stripped, the budget applies
		if policy == "refuse" {
			wrong = 0
		}
		cases := []appKeyCase{
			{"registered key is exempt", "41", partnerKey, 6},
			{"the app's name is no key", "42", "partner-app", wrong},
			{"a guessed key is no app", "43", "e2e-partner-key-0123456788", wrong},
			{"no key", "44", "", 2},
		}
		appKeyCases(t, g, policy, cases)
	}
}

type appKeyCase struct {
	name    string
	account string
	key     string
	want    int // contacts served of 6 distinct profiles
}

func appKeyCases(t *testing.T, g *gw, policy string, cases []appKeyCase) {
	for i, c := range cases {
		t.Run(policy+"/"+c.name, func(t *testing.T) {
			hdr := map[string]string{"Authorization": "Bearer " + token(t, c.account)}
			if c.key != "" {
				hdr["X-App-Key"] = c.key
			}
			cl := clientFrom(fmt.Sprintf("127.0.3.%d", i+1))
			n := 0
			for id := 100; id < 106; id++ {
				a := do(t, cl, "GET", fmt.Sprintf("%s/v1/users/%d", g.url, id), hdr)
				if a.status == 401 && refusalOf(t, a).Facet == "app" {
					continue
				}
				if contactServed(t, a) {
					n++
				}
			}
			if n != c.want {
				t.Errorf("contacts served: %d of 6, want %d", n, c.want)
			}
		})
	}
}
