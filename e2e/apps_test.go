package e2e

import (
	"fmt"
	"testing"
)

// An exemption names a registered app: only the app's key earns it. Sending
// the app's name (or any other key) in X-App-Key is no app, and the budget
// applies.
func TestAppKeyExemption(t *testing.T) {
	platform := startPlatform(t, 500)
	g := startGateway(t, `log: {format: text, level: warn}
identity:
  account: {secret_env: LAB_JWT_SECRET}
  app:
    keys: [{app: partner-app, key_env: LAB_PARTNER_KEY}]
`+profileRoute+`ration:
  budgets:
    - {name: contact-account, facet: account, class: contact, limit: 2, window: 24h, exempt: {apps: [partner-app]}}
`, platform)
	cases := []struct {
		name    string
		account string
		key     string
		want    int // contacts served of 6 distinct profiles
	}{
		{"registered key is exempt", "41", partnerKey, 6},
		{"the app's name is no key", "42", "partner-app", 2},
		{"a guessed key is no app", "43", "e2e-partner-key-0123456788", 2},
		{"no key", "44", "", 2},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr := map[string]string{"Authorization": "Bearer " + token(t, c.account)}
			if c.key != "" {
				hdr["X-App-Key"] = c.key
			}
			cl := clientFrom(fmt.Sprintf("127.0.3.%d", i+1))
			n := 0
			for id := 100; id < 106; id++ {
				if contactServed(t, do(t, cl, "GET", fmt.Sprintf("%s/v1/users/%d", g.url, id), hdr)) {
					n++
				}
			}
			if n != c.want {
				t.Errorf("contacts served: %d of 6, want %d", n, c.want)
			}
		})
	}
}
