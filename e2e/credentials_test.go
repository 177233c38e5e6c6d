package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// labToken signs a lab account token with claims of the test's choosing.
func labToken(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte("lab-secret"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// credentialConfig: account identity with the lab's canonical subjects, the
// profile route, and a contact budget of 2 a day per account, 1 for
// accounts younger than a week.
func credentialConfig(front string) string {
	return fmt.Sprintf(`front: %s
log: {format: text, level: warn}
identity:
  account: {secret_env: LAB_JWT_SECRET, subject_pattern: '^[1-9][0-9]*$'}
`+profileRoute+`ration:
  budgets:
    - name: contact-account
      facet: account
      class: contact
      limit: 2
      window: 24h
      account_age: [{younger_than: 168h, limit: 1}]
`, front)
}

// An account credential warden cannot verify never reaches the upstream:
// every spelling of a token the lab platform would still accept (it trims
// Unicode white space, ignores iat, has no size bound) is refused with 401,
// so an account past its budget, or banned, gets nothing more through it.
func TestUnverifiedCredentialsRefused(t *testing.T) {
	platformURL := startPlatform(t, 500)
	now := time.Now()
	aged := now.Add(-365 * 24 * time.Hour).Unix()
	valid := token(t, "77")
	variants := map[string]string{
		"U+00A0 after":      "Bearer " + valid + "\u00a0",
		"U+0085 after":      "Bearer " + valid + "\u0085",
		"U+3000 after":      "Bearer " + valid + "\u3000",
		"U+00A0 before":     "Bearer \u00a0" + valid,
		"iat in the future": "Bearer " + labToken(t, jwt.MapClaims{"sub": "77", "created": aged, "iat": now.Add(time.Hour).Unix()}),
		"over 8 KiB":        "Bearer " + labToken(t, jwt.MapClaims{"sub": "77", "created": aged, "iat": now.Unix(), "pad": strings.Repeat("p", 9000)}),
		"subject +77":       "Bearer " + token(t, "+77"),
		"subject 077":       "Bearer " + token(t, "077"),
	}
	for _, front := range fronts {
		t.Run(front, func(t *testing.T) {
			g := startGateway(t, credentialConfig(front), platformURL)
			c := clientFrom("127.0.0.1")
			get := func(id int, auth string) answer {
				return do(t, c, "GET", fmt.Sprintf("%s/v1/users/%d", g.url, id), map[string]string{"Authorization": auth})
			}
			if !contactServed(t, get(10, "Bearer "+valid)) || !contactServed(t, get(11, "Bearer "+valid)) {
				t.Fatal("an aged account's first two contacts were not served")
			}
			if contactServed(t, get(12, "Bearer "+valid)) {
				t.Fatal("the third contact was served past the budget of 2")
			}
			for name, auth := range variants {
				a := get(13, auth)
				if a.status != 401 {
					t.Fatalf("%s: %d %s, want 401", name, a.status, a.body)
				}
				if r := refusalOf(t, a); r.Rule != "identity" || r.Facet != "account" {
					t.Fatalf("%s: refusal %+v, want rule identity facet account", name, r)
				}
				if ch := a.header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Bearer") {
					t.Fatalf("%s: WWW-Authenticate %q", name, ch)
				}
			}
			// The platform itself takes the trimmed token: the refusal is
			// warden's doing, not the upstream's.
			if a := do(t, c, "GET", platformURL+"/v1/users/13", map[string]string{"Authorization": variants["U+00A0 after"]}); !contactServed(t, a) {
				t.Fatalf("the platform no longer accepts the padded token (%d): the test proves nothing", a.status)
			}

			// A banned account stays banned whatever it appends.
			if a := adminDo(t, g, "POST", "/v1/bans", `{"facet":"account","value":"77","reason":"e2e","ttl":"1h"}`); a.status/100 != 2 {
				t.Fatalf("ban: %d %s", a.status, a.body)
			}
			me := func(auth string) answer {
				return do(t, c, "GET", g.url+"/v1/me", map[string]string{"Authorization": auth})
			}
			if a := me("Bearer " + valid); a.status != 403 {
				t.Fatalf("banned account: %d %s, want 403", a.status, a.body)
			}
			if a := me(variants["U+00A0 after"]); a.status != 401 {
				t.Fatalf("banned account with U+00A0: %d %s, want 401", a.status, a.body)
			}

			// A token without the created claim is the youngest tier's:
			// one contact a day, not two.
			noCreated := "Bearer " + labToken(t, jwt.MapClaims{"sub": "88", "iat": now.Unix()})
			if !contactServed(t, get(20, noCreated)) {
				t.Fatal("a token without created: first contact not served")
			}
			if contactServed(t, get(21, noCreated)) {
				t.Fatal("a token without created got the aged tier's budget")
			}
		})
	}
}

// With the strip policies, a credential warden cannot verify goes upstream
// removed: the upstream sees an anonymous request. Verified ones go as
// they came.
func TestUnverifiedCredentialsStripped(t *testing.T) {
	up := newEcho(t)
	valid := token(t, "77")
	for _, front := range fronts {
		t.Run(front, func(t *testing.T) {
			g := startGateway(t, fmt.Sprintf(`front: %s
log: {format: text, level: warn}
identity:
  app:
    keys: [{app: partner-app, key_env: LAB_PARTNER_KEY}]
    unregistered: strip
  account: {secret_env: LAB_JWT_SECRET, unverified: strip}
`, front), up.srv.URL)
			for _, c := range []struct {
				name, hdr   string
				auth, appKy bool // forwarded
			}{
				{"valid token and key", "Authorization: Bearer " + valid + "\r\nX-App-Key: " + partnerKey + "\r\n", true, true},
				{"U+00A0 after the token", "Authorization: Bearer " + valid + "\u00a0\r\n", false, false},
				{"lower-case name, bad token", "authorization: Bearer x.y.z\r\n", false, false},
				{"basic scheme", "Authorization: Basic dXNlcjpwYXNz\r\n", false, false},
				{"unregistered key", "X-App-Key: pk-guess\r\nAuthorization: Bearer " + valid + "\r\n", true, false},
				{"registered key with U+3000", "X-App-Key: " + partnerKey + "\u3000\r\n", false, false},
			} {
				a := rawGet(t, g, "/x", c.hdr)
				if a.status != 200 {
					t.Fatalf("%s: %d %s, want 200", c.name, a.status, a.body)
				}
				e := decodeEcho(t, a)
				if got := len(e.Header["Authorization"]) > 0; got != c.auth {
					t.Errorf("%s: Authorization forwarded %v, want %v (%q)", c.name, got, c.auth, e.Header["Authorization"])
				}
				if c.auth && e.Header["Authorization"][0] != "Bearer "+valid {
					t.Errorf("%s: Authorization changed: %q", c.name, e.Header["Authorization"])
				}
				if got := len(e.Header["X-App-Key"]) > 0; got != c.appKy {
					t.Errorf("%s: X-App-Key forwarded %v, want %v", c.name, got, c.appKy)
				}
			}
			m := adminDo(t, g, "GET", "/metrics", "").body
			if !strings.Contains(m, `warden_credentials_unverified_total{action="stripped",facet="account",reason="malformed"} 3`) {
				t.Errorf("metrics:\n%s", grepLines(m, "warden_credentials_unverified"))
			}
		})
	}
}

// An account token carried in a header of its own (identity.account.header)
// that warden cannot verify is refused with a challenge naming that header
// (RFC 9110: every 401 carries WWW-Authenticate).
func TestCustomTokenHeaderChallenge(t *testing.T) {
	up := newEcho(t)
	for _, front := range fronts {
		t.Run(front, func(t *testing.T) {
			g := startGateway(t, fmt.Sprintf("front: %s\nlog: {format: text, level: warn}\nidentity:\n  account: {secret_env: LAB_JWT_SECRET, header: X-Token}\n", front), up.srv.URL)
			a := rawGet(t, g, "/x", "X-Token: not.a.token\r\n")
			if r := refusalOf(t, a); a.status != 401 || r.Rule != "identity" || r.Facet != "account" {
				t.Fatalf("%d %s, want 401 by rule identity on account", a.status, a.body)
			}
			if ch := a.header.Get("WWW-Authenticate"); ch != `Token header="X-Token"` {
				t.Fatalf("WWW-Authenticate %q", ch)
			}
		})
	}
}

// By default an app key that is not registered is refused (401, facet app)
// and the upstream never sees the request.
func TestUnregisteredAppKeyRefused(t *testing.T) {
	up := newEcho(t)
	for _, front := range fronts {
		t.Run(front, func(t *testing.T) {
			g := startGateway(t, fmt.Sprintf("front: %s\nlog: {format: text, level: warn}\nidentity:\n  app:\n    keys: [{app: partner-app, key_env: LAB_PARTNER_KEY}]\n", front), up.srv.URL)
			before := up.hits.Load()
			for _, key := range []string{"pk-guess", partnerKey + "\u00a0", ""} {
				a := rawGet(t, g, "/x", "X-App-Key: "+key+"\r\n")
				if r := refusalOf(t, a); a.status != 401 || r.Rule != "identity" || r.Facet != "app" {
					t.Fatalf("key %q: %d %s, want 401 by rule identity on app", key, a.status, a.body)
				}
				// RFC 9110: a 401 carries a challenge; this one names the header.
				if ch := a.header.Get("WWW-Authenticate"); ch != `ApiKey header="X-App-Key"` {
					t.Fatalf("key %q: WWW-Authenticate %q", key, ch)
				}
			}
			if n := up.hits.Load() - before; n != 0 {
				t.Fatalf("upstream saw %d refused requests", n)
			}
			if a := rawGet(t, g, "/x", "X-App-Key: "+partnerKey+"\r\n"); a.status != 200 || len(decodeEcho(t, a).Header["X-App-Key"]) != 1 {
				t.Fatalf("registered key: %d %s", a.status, a.body)
			}
		})
	}
}

// The admin API refuses an account ban that could never match, judged as
// identify judges a subject: an unanchored subject_pattern applies to the
// whole subject (077 and +77 hold a match of [1-9][0-9]* yet never verify),
// and without a key to verify tokens no request has an account at all.
func TestAccountBansThatNeverMatch(t *testing.T) {
	up := newEcho(t)
	for _, c := range []struct {
		name, identity string
		value          string
		want           int
	}{
		{"unanchored 077", "identity:\n  account: {secret_env: LAB_JWT_SECRET, subject_pattern: '[1-9][0-9]*'}\n", "077", 400},
		{"unanchored +77", "identity:\n  account: {secret_env: LAB_JWT_SECRET, subject_pattern: '[1-9][0-9]*'}\n", "+77", 400},
		{"unanchored 77", "identity:\n  account: {secret_env: LAB_JWT_SECRET, subject_pattern: '[1-9][0-9]*'}\n", "77", 201},
		{"no verifier", "", "77", 400},
	} {
		t.Run(c.name, func(t *testing.T) {
			g := startGateway(t, "log: {format: text, level: warn}\n"+c.identity, up.srv.URL)
			a := adminDo(t, g, "POST", "/v1/bans", fmt.Sprintf(`{"facet":"account","value":%q,"reason":"e2e","ttl":"1h"}`, c.value))
			if a.status != c.want || c.want == 400 && !strings.Contains(a.body, "would never match") {
				t.Fatalf("account ban %q: %d %s, want %d", c.value, a.status, a.body, c.want)
			}
		})
	}
}
