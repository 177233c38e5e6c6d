package identify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

const testSecret = "0123456789abcdef0123456789abcdef-test-secret"

var testNow = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

type testKeys struct {
	rsa, rsa2 *rsa.PrivateKey
	ec        *ecdsa.PrivateKey
	ec384     *ecdsa.PrivateKey
}

var (
	keysOnce sync.Once
	keys     testKeys
)

func getKeys(t testing.TB) testKeys {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if keys.rsa, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if keys.rsa2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if keys.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if keys.ec384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
			panic(err)
		}
	})
	return keys
}

func writePEM(t testing.TB, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// jwksJSON renders public keys as a JWK Set; alg may be "".
func jwksJSON(t testing.TB, ks ...jwkSpec) []byte {
	t.Helper()
	var set jwkset.JWKSMarshal
	for _, k := range ks {
		jwk, err := jwkset.NewJWKFromKey(k.key, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{KID: k.kid, ALG: jwkset.ALG(k.alg)}})
		if err != nil {
			t.Fatal(err)
		}
		set.Keys = append(set.Keys, jwk.Marshal())
	}
	raw, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

type jwkSpec struct {
	kid, alg string
	key      any
}

func sign(t testing.TB, m jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claims(extra ...any) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub":     "user-42",
		"exp":     testNow.Add(time.Hour).Unix(),
		"iat":     testNow.Add(-time.Minute).Unix(),
		"created": testNow.Add(-48 * time.Hour).Unix(),
		"scope":   "read:profile write:post",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i+1] == nil {
			delete(c, extra[i].(string))
			continue
		}
		c[extra[i].(string)] = extra[i+1]
	}
	return c
}

func newTestIdentifier(t testing.TB, cfg Config, opts Options) *Identifier {
	t.Helper()
	if opts.LookupEnv == nil {
		opts.LookupEnv = func(k string) (string, bool) {
			if k == "TEST_SECRET" {
				return testSecret, true
			}
			return "", false
		}
	}
	x, err := New(t.Context(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func identifyToken(x *Identifier, now time.Time, tok string) Identity {
	var id Identity
	x.Identify(now, &Input{Peer: netip.MustParseAddr("198.51.100.7"), Header: testHeader{"Authorization", "Bearer " + tok}}, &id)
	return id
}

func TestAccounts(t *testing.T) {
	k := getKeys(t)
	rsaPEM := writePEM(t, &k.rsa.PublicKey)
	ecPEM := writePEM(t, &k.ec.PublicKey)
	rsaPEMBytes, _ := os.ReadFile(rsaPEM)
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwksFile, jwksJSON(t,
		jwkSpec{"r1", "RS256", &k.rsa.PublicKey},
		jwkSpec{"e1", "", &k.ec.PublicKey},
		jwkSpec{"r2", "ES256", &k.rsa2.PublicKey}, // alg contradicts the key: never usable
	), 0o600); err != nil {
		t.Fatal(err)
	}
	hs := Config{Account: AccountConfig{SecretEnv: "TEST_SECRET"}}
	rs := Config{Account: AccountConfig{PublicKeyFile: rsaPEM}}
	es := Config{Account: AccountConfig{PublicKeyFile: ecPEM}}
	both := Config{Account: AccountConfig{SecretEnv: "TEST_SECRET", PublicKeyFile: rsaPEM}}
	jf := Config{Account: AccountConfig{JWKSFile: jwksFile}}
	custom := Config{Account: AccountConfig{SecretEnv: "TEST_SECRET", SubjectClaim: "uid", CreatedClaim: "signup", ScopesClaim: "perms"}}
	issAud := Config{Account: AccountConfig{SecretEnv: "TEST_SECRET", Issuer: "https://idp.example", Audience: "warden"}}
	onlyRS := Config{Account: AccountConfig{SecretEnv: "TEST_SECRET", PublicKeyFile: rsaPEM, Algorithms: []string{"RS256"}}}
	_ = onlyRS // HS secret without HS256 is a config error, checked in config tests

	hsTok := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", c) }
	created := testNow.Add(-48 * time.Hour)

	cases := []struct {
		name    string
		cfg     Config
		tok     string
		want    string // account, "" for none
		created time.Time
		scopes  []string
	}{
		{"hs256 valid", hs, hsTok(claims()), "user-42", created, []string{"read:profile", "write:post"}},
		{"hs256 scopes array", hs, hsTok(claims("scope", []any{"a", "b", 3})), "user-42", created, []string{"a", "b"}},
		{"hs256 no created no scope", hs, hsTok(claims("created", nil, "scope", nil)), "user-42", time.Time{}, nil},
		{"hs256 created as RFC 3339", hs, hsTok(claims("created", "2026-11-21T12:00:00Z")), "user-42", created, []string{"read:profile", "write:post"}},
		{"numeric subject", hs, hsTok(claims("sub", 12345)), "12345", created, []string{"read:profile", "write:post"}},
		{"missing subject", hs, hsTok(claims("sub", nil)), "", time.Time{}, nil},
		{"non-string subject", hs, hsTok(claims("sub", []any{"x"})), "", time.Time{}, nil},
		{"expired", hs, hsTok(claims("exp", testNow.Add(-time.Minute).Unix())), "", time.Time{}, nil},
		{"expired within leeway", hs, hsTok(claims("exp", testNow.Add(-10*time.Second).Unix())), "user-42", created, []string{"read:profile", "write:post"}},
		{"not yet valid", hs, hsTok(claims("nbf", testNow.Add(time.Hour).Unix())), "", time.Time{}, nil},
		{"issued in the future", hs, hsTok(claims("iat", testNow.Add(time.Hour).Unix())), "", time.Time{}, nil},
		{"bad signature", hs, sign(t, jwt.SigningMethodHS256, []byte(testSecret+"x"), "", claims()), "", time.Time{}, nil},
		{"tampered payload", hs, tamper(hsTok(claims())), "", time.Time{}, nil},
		{"alg none", hs, noneToken(t, claims()), "", time.Time{}, nil},
		{"garbage", hs, "not.a.token", "", time.Time{}, nil},
		{"hs384 refused", hs, sign(t, jwt.SigningMethodHS384, []byte(testSecret), "", claims()), "", time.Time{}, nil},
		{"rs256 pem", rs, sign(t, jwt.SigningMethodRS256, k.rsa, "", claims()), "user-42", created, []string{"read:profile", "write:post"}},
		{"rs256 wrong key", rs, sign(t, jwt.SigningMethodRS256, k.rsa2, "", claims()), "", time.Time{}, nil},
		{"hs256 when only rs256", rs, hsTok(claims()), "", time.Time{}, nil},
		{"es256 pem", es, sign(t, jwt.SigningMethodES256, k.ec, "", claims()), "user-42", created, []string{"read:profile", "write:post"}},
		{"es384 refused", es, sign(t, jwt.SigningMethodES384, k.ec384, "", claims()), "", time.Time{}, nil},
		{"es256 token against rsa key", rs, sign(t, jwt.SigningMethodES256, k.ec, "", claims()), "", time.Time{}, nil},
		{"alg confusion: rsa public key as hs secret", both, sign(t, jwt.SigningMethodHS256, rsaPEMBytes, "", claims()), "", time.Time{}, nil},
		{"alg confusion: rs256 config only", rs, sign(t, jwt.SigningMethodHS256, rsaPEMBytes, "", claims()), "", time.Time{}, nil},
		{"both: hs256 still works", both, hsTok(claims()), "user-42", created, []string{"read:profile", "write:post"}},
		{"both: rs256 still works", both, sign(t, jwt.SigningMethodRS256, k.rsa, "", claims()), "user-42", created, []string{"read:profile", "write:post"}},
		{"jwks file rs256 by kid", jf, sign(t, jwt.SigningMethodRS256, k.rsa, "r1", claims()), "user-42", created, []string{"read:profile", "write:post"}},
		{"jwks file es256 by kid", jf, sign(t, jwt.SigningMethodES256, k.ec, "e1", claims()), "user-42", created, []string{"read:profile", "write:post"}},
		{"jwks file no kid tries all", jf, sign(t, jwt.SigningMethodES256, k.ec, "", claims()), "user-42", created, []string{"read:profile", "write:post"}},
		{"jwks file kid of other key", jf, sign(t, jwt.SigningMethodRS256, k.rsa, "e1", claims()), "", time.Time{}, nil},
		{"jwks file alg mismatch", jf, sign(t, jwt.SigningMethodRS256, k.rsa2, "r2", claims()), "", time.Time{}, nil},
		{"jwks file unknown kid", jf, sign(t, jwt.SigningMethodRS256, k.rsa, "zz", claims()), "", time.Time{}, nil},
		{"custom claim names", custom, hsTok(claims("sub", nil, "uid", "u-7", "signup", created.Unix(), "perms", "x y")), "u-7", created, []string{"x", "y"}},
		{"custom claim names ignore defaults", custom, hsTok(claims()), "", time.Time{}, nil},
		{"issuer and audience", issAud, hsTok(claims("iss", "https://idp.example", "aud", []any{"other", "warden"})), "user-42", created, []string{"read:profile", "write:post"}},
		{"wrong issuer", issAud, hsTok(claims("iss", "https://evil.example", "aud", "warden")), "", time.Time{}, nil},
		{"wrong audience", issAud, hsTok(claims("iss", "https://idp.example", "aud", "other")), "", time.Time{}, nil},
		{"missing issuer", issAud, hsTok(claims("aud", "warden")), "", time.Time{}, nil},
		{"oversized token", hs, strings.Repeat("a", maxTokenLen+1), "", time.Time{}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := newTestIdentifier(t, c.cfg, Options{})
			for round := range 2 { // the second round answers from the cache
				id := identifyToken(x, testNow, c.tok)
				if id.Account != c.want {
					t.Fatalf("round %d: account = %q, want %q", round, id.Account, c.want)
				}
				if !id.AccountCreated.Equal(c.created) {
					t.Errorf("round %d: created = %v, want %v", round, id.AccountCreated, c.created)
				}
				if !slices.Equal(id.Scopes, c.scopes) {
					t.Errorf("round %d: scopes = %q, want %q", round, id.Scopes, c.scopes)
				}
				// Every token is either an account or an unverified
				// credential: none is taken as anonymous.
				if unverified := id.Unverified&CredentialAccount != 0; unverified != (c.want == "") || unverified != (id.UnverifiedWhy != "") {
					t.Errorf("round %d: Unverified = %b why %q with account %q", round, id.Unverified, id.UnverifiedWhy, id.Account)
				}
			}
		})
	}
}

func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	c := claims("sub", "admin")
	raw, _ := json.Marshal(c)
	parts[1] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(parts, ".")
}

func noneToken(t testing.TB, c jwt.MapClaims) string {
	return sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "", c)
}

func TestBearerHeader(t *testing.T) {
	x := newTestIdentifier(t, Config{Account: AccountConfig{SecretEnv: "TEST_SECRET"}}, Options{})
	tok := sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims())
	cases := []struct {
		name string
		h    testHeader
		want string
	}{
		{"bearer", testHeader{"Authorization", "Bearer " + tok}, "user-42"},
		{"lower-case scheme", testHeader{"authorization", "bearer " + tok}, "user-42"},
		{"no scheme", testHeader{"Authorization", tok}, ""},
		{"basic scheme", testHeader{"Authorization", "Basic " + tok}, ""},
		{"absent", testHeader{}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var id Identity
			x.Identify(testNow, &Input{Peer: netip.MustParseAddr("198.51.100.7"), Header: c.h}, &id)
			if id.Account != c.want {
				t.Fatalf("account = %q, want %q", id.Account, c.want)
			}
		})
	}
	// A second account header, or app key, makes the identity ambiguous
	// (the gateway refuses it); one of each is not.
	for _, c := range []struct {
		name string
		h    testHeader
		want string
	}{
		{"one each", testHeader{"Authorization", "Bearer " + tok, "X-App-Key", "k"}, ""},
		{"two account headers", testHeader{"Authorization", "Bearer " + tok, "authorization", "Bearer x"}, "Authorization"},
		{"two app keys", testHeader{"X-App-Key", "a", "X-App-Key", "b"}, "X-App-Key"},
	} {
		var id Identity
		x.Identify(testNow, &Input{Peer: netip.MustParseAddr("198.51.100.7"), Header: c.h}, &id)
		if id.Ambiguous != c.want {
			t.Errorf("%s: Ambiguous = %q, want %q", c.name, id.Ambiguous, c.want)
		}
	}
	custom := newTestIdentifier(t, Config{Account: AccountConfig{SecretEnv: "TEST_SECRET", Header: "X-Token"}}, Options{})
	var id Identity
	custom.Identify(testNow, &Input{Peer: netip.MustParseAddr("198.51.100.7"), Header: testHeader{"X-Token", tok}}, &id)
	if id.Account != "user-42" {
		t.Fatalf("custom header: account = %q, want user-42", id.Account)
	}
}

// TestUnverifiedWhy checks the reason given for each kind of token warden
// cannot verify, from the parser and from the cache.
func TestUnverifiedWhy(t *testing.T) {
	x := newTestIdentifier(t, Config{Account: AccountConfig{SecretEnv: "TEST_SECRET", SubjectPattern: `^user-[1-9][0-9]*$`}}, Options{})
	hsTok := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", c) }
	valid := hsTok(claims())
	for _, c := range []struct {
		name, value, why string
	}{
		{"valid", "Bearer " + valid, ""},
		{"two spaces after the scheme", "Bearer  " + valid, ""},
		{"OWS around", " \tBearer " + valid + "\t ", ""},
		{"no-break space after", "Bearer " + valid + "\u00a0", whyMalformed},
		{"next line after", "Bearer " + valid + "\u0085", whyMalformed},
		{"ideographic space before", "Bearer \u3000" + valid, whyMalformed},
		{"tab after the scheme", "Bearer\t" + valid, whyMalformed},
		{"no scheme", valid, whyMalformed},
		{"basic scheme", "Basic dXNlcjpwYXNz", whyMalformed},
		{"empty", "", whyMalformed},
		{"scheme alone", "Bearer", whyMalformed},
		{"two tokens", "Bearer " + valid + " " + valid, whyMalformed},
		{"comma", "Bearer " + valid + ",x", whyMalformed},
		{"oversized", "Bearer " + strings.Repeat("a", maxTokenLen+1), whyTooLong},
		{"not a jwt", "Bearer not.a.token", whyMalformed},
		{"bad signature", "Bearer " + sign(t, jwt.SigningMethodHS256, []byte(testSecret+"x"), "", claims()), whySignature},
		{"expired", "Bearer " + hsTok(claims("exp", testNow.Add(-time.Hour).Unix())), whyExpired},
		{"not yet valid", "Bearer " + hsTok(claims("nbf", testNow.Add(time.Hour).Unix())), whyNotYetValid},
		{"issued in the future", "Bearer " + hsTok(claims("iat", testNow.Add(time.Hour).Unix())), whyNotYetValid},
		{"no subject", "Bearer " + hsTok(claims("sub", nil)), whySubject},
		{"long subject", "Bearer " + hsTok(claims("sub", "user-"+strings.Repeat("1", maxSubjectLen))), whySubject},
		{"leading zero subject", "Bearer " + hsTok(claims("sub", "user-042")), whySubject},
		{"signed subject", "Bearer " + hsTok(claims("sub", "user-+42")), whySubject},
	} {
		t.Run(c.name, func(t *testing.T) {
			for round := range 2 { // the second from the caches
				var id Identity
				x.Identify(testNow, &Input{Peer: netip.MustParseAddr("198.51.100.7"), Header: testHeader{"Authorization", c.value}}, &id)
				if id.UnverifiedWhy != c.why {
					t.Fatalf("round %d: why = %q, want %q", round, id.UnverifiedWhy, c.why)
				}
				if (c.why == "") != (id.Account == "user-42") || (c.why == "") != (id.Unverified == 0) {
					t.Fatalf("round %d: account %q, Unverified %b", round, id.Account, id.Unverified)
				}
			}
		})
	}
	var id Identity
	x.Identify(testNow, &Input{Peer: netip.MustParseAddr("198.51.100.7"), Header: testHeader{}}, &id)
	if id.Unverified != 0 || id.Account != "" {
		t.Fatalf("no header: Unverified %b account %q", id.Unverified, id.Account)
	}
}

// TestSubjectPatternWhole: the pattern matches the whole subject, anchored
// or not: a subject that merely contains a match is another spelling.
func TestSubjectPatternWhole(t *testing.T) {
	for _, pat := range []string{`[1-9][0-9]*`, `^[1-9][0-9]*$`, `[1-9][0-9]*|x`} {
		x := newTestIdentifier(t, Config{Account: AccountConfig{SecretEnv: "TEST_SECRET", SubjectPattern: pat}}, Options{})
		for sub, ok := range map[string]bool{"77": true, "+77": false, "077": false, "77 ": false, "a77": false, "77a": false} {
			tok := sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims("sub", sub))
			var id Identity
			x.Identify(testNow, &Input{Peer: netip.MustParseAddr("198.51.100.7"), Header: testHeader{"Authorization", "Bearer " + tok}}, &id)
			if (id.Account == sub) != ok || (id.UnverifiedWhy == whySubject) == ok {
				t.Errorf("pattern %q, subject %q: account %q, why %q; want accepted %v", pat, sub, id.Account, id.UnverifiedWhy, ok)
			}
		}
	}
}

// TestMissingCreated: a token without the created claim is the youngest
// account unless the config says oldest.
func TestMissingCreated(t *testing.T) {
	tok := sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims("created", nil))
	for _, c := range []struct {
		policy AgePolicy
		known  bool
	}{{"", true}, {AgeYoungest, true}, {AgeOldest, false}} {
		x := newTestIdentifier(t, Config{Account: AccountConfig{SecretEnv: "TEST_SECRET", MissingCreated: c.policy}}, Options{})
		id := identifyToken(x, testNow, tok)
		age, known := id.AccountAge(testNow)
		if id.Account != "user-42" || known != c.known || age != 0 {
			t.Errorf("policy %q: account %q age %v known %v, want known %v", c.policy, id.Account, age, known, c.known)
		}
		aged := identifyToken(x, testNow, sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims()))
		if age, known := aged.AccountAge(testNow); !known || age != 48*time.Hour {
			t.Errorf("policy %q: a token with created: age %v known %v", c.policy, age, known)
		}
	}
}

// TestTokenCacheExpiry checks that a cached token stops counting at its exp
// (plus leeway), not at the cache's own horizon.
func TestTokenCacheExpiry(t *testing.T) {
	x := newTestIdentifier(t, Config{Account: AccountConfig{SecretEnv: "TEST_SECRET"}}, Options{})
	tok := sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims("exp", testNow.Add(time.Minute).Unix()))
	if id := identifyToken(x, testNow, tok); id.Account != "user-42" {
		t.Fatalf("fresh token: account = %q", id.Account)
	}
	if id := identifyToken(x, testNow.Add(time.Minute+20*time.Second), tok); id.Account != "user-42" {
		t.Fatalf("within leeway: account = %q", id.Account)
	}
	if id := identifyToken(x, testNow.Add(time.Minute+31*time.Second), tok); id.Account != "" {
		t.Fatalf("past exp+leeway: account = %q, want none", id.Account)
	}
}

func TestTokenCacheBounded(t *testing.T) {
	c := newTokenCache(32)
	a := &account{subject: "a"}
	for i := range 1000 {
		tok := "tok-" + string(rune('a'+i%26)) + strings.Repeat("x", i)
		c.put(c.hash(tok), tok, a, testNow.Add(time.Hour))
	}
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		if len(s.ents) > s.max || len(s.idx) > s.max {
			t.Fatalf("shard %d holds %d entries (%d indexed), max %d", i, len(s.ents), len(s.idx), s.max)
		}
		n += len(s.idx)
	}
	if n > 32 {
		t.Fatalf("cache holds %d entries, want at most 32", n)
	}
	// The most recent token is still there, the first long gone.
	last := "tok-" + string(rune('a'+999%26)) + strings.Repeat("x", 999)
	if got, ok := c.get(c.hash(last), last, testNow); !ok || got != a {
		t.Fatalf("latest token not cached")
	}
	first := "tok-a"
	if _, ok := c.get(c.hash(first), first, testNow); ok {
		t.Fatalf("oldest token still cached")
	}
	// A different token under the same key is a miss.
	if _, ok := c.get(c.hash(last), last+"y", testNow); ok {
		t.Fatalf("token mismatch answered from the cache")
	}
}

func TestTokenCacheLRU(t *testing.T) {
	c := newTokenCache(cacheShards * 2) // two entries per shard
	// Find three tokens in one shard.
	var toks []string
	for i := 0; len(toks) < 3; i++ {
		tok := "t" + strings.Repeat("z", i)
		if c.hash(tok)%cacheShards == 0 {
			toks = append(toks, tok)
		}
	}
	a := &account{subject: "a"}
	until := testNow.Add(time.Hour)
	c.put(c.hash(toks[0]), toks[0], a, until)
	c.put(c.hash(toks[1]), toks[1], a, until)
	c.get(c.hash(toks[0]), toks[0], testNow) // toks[1] is now least recent
	c.put(c.hash(toks[2]), toks[2], a, until)
	if _, ok := c.get(c.hash(toks[1]), toks[1], testNow); ok {
		t.Errorf("least recently used entry survived")
	}
	for _, i := range []int{0, 2} {
		if _, ok := c.get(c.hash(toks[i]), toks[i], testNow); !ok {
			t.Errorf("entry %d evicted", i)
		}
	}
}

// fakeClock paces JWKS refreshes in tests.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// jwksServer serves a JWK Set that the test can swap, counting fetches.
// While gate is set, a fetch waits until the test closes it, so a test can
// observe the gateway before a background refresh lands.
type jwksServer struct {
	mu   sync.Mutex
	body []byte
	gate chan struct{}
	hits atomic.Int64
}

// hold makes later fetches wait; the returned func lets them through.
func (s *jwksServer) hold() (release func()) {
	g := make(chan struct{})
	s.mu.Lock()
	s.gate = g
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.gate = nil
		s.mu.Unlock()
		close(g)
	}
}

func (s *jwksServer) set(b []byte) { s.mu.Lock(); s.body = b; s.mu.Unlock() }

func (s *jwksServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	s.mu.Lock()
	b, g := s.body, s.gate
	s.mu.Unlock()
	if g != nil {
		select {
		case <-g:
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// waitFetches waits until the remote keys completed more than n fetches.
func waitFetches(t *testing.T, r *remoteKeys, n uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.fetches.Load() <= n {
		if time.Now().After(deadline) {
			t.Fatalf("no JWKS fetch after %d", n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestJWKSURLRotation(t *testing.T) {
	k := getKeys(t)
	srv := &jwksServer{}
	srv.set(jwksJSON(t, jwkSpec{"old", "RS256", &k.rsa.PublicKey}))
	hs := httptest.NewServer(srv)
	defer hs.Close()
	clock := &fakeClock{}
	clock.advance(time.Duration(testNow.UnixNano()))

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	x, err := New(ctx, Config{Account: AccountConfig{JWKSURL: hs.URL + "/jwks.json", JWKSRefresh: time.Hour}},
		Options{HTTPClient: hs.Client(), Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	r := x.acct.remote
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("fetches after New = %d, want 1", got)
	}

	oldTok := sign(t, jwt.SigningMethodRS256, k.rsa, "old", claims())
	for range 100 {
		if id := identifyToken(x, testNow, oldTok); id.Account != "user-42" {
			t.Fatalf("old key: account = %q", id.Account)
		}
	}
	if got := srv.hits.Load(); got != 1 {
		t.Fatalf("verifying 100 requests fetched the set %d times, want once", got)
	}

	// Rotate: the IdP now publishes only the new key.
	srv.set(jwksJSON(t, jwkSpec{"new", "ES256", &k.ec.PublicKey}))
	newTok := sign(t, jwt.SigningMethodES256, k.ec, "new", claims())

	// Within 30s of the last fetch an unknown kid does not fetch again.
	if id := identifyToken(x, testNow, newTok); id.Account != "" {
		t.Fatalf("new key before refresh: account = %q", id.Account)
	}
	n := r.fetches.Load()
	clock.advance(jwksMinKickSpacing + time.Second)
	// Hold the kicked fetch so the next request surely runs before it lands:
	// requests never wait for a refresh.
	release := srv.hold()
	if id := identifyToken(x, testNow, newTok); id.Account != "" {
		release()
		t.Fatalf("new key, refresh not landed: account = %q", id.Account)
	}
	release()
	waitFetches(t, r, n)
	if got := srv.hits.Load(); got != 2 {
		t.Fatalf("fetches after rotation = %d, want 2", got)
	}
	if id := identifyToken(x, testNow, newTok); id.Account != "user-42" {
		t.Fatalf("new key after refresh: account = %q", id.Account)
	}
	// The old token is cached for at most maxPositiveTTL; past that its key is gone.
	if id := identifyToken(x, testNow.Add(time.Minute), oldTok); id.Account != "user-42" {
		t.Fatalf("old token within cache horizon: account = %q", id.Account)
	}
	if id := identifyToken(x, testNow.Add(maxPositiveTTL+time.Second), oldTok); id.Account != "" {
		t.Fatalf("old token after rotation and cache horizon: account = %q, want none", id.Account)
	}
}

func TestJWKSURLDownAtStart(t *testing.T) {
	k := getKeys(t)
	srv := &jwksServer{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if srv.hits.Add(1) == 1 {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Write(jwksJSON(t, jwkSpec{"k", "RS256", &k.rsa.PublicKey}))
	}))
	defer hs.Close()
	clock := &fakeClock{}
	x, err := New(t.Context(), Config{Account: AccountConfig{JWKSURL: hs.URL, JWKSRefresh: time.Hour}},
		Options{HTTPClient: hs.Client(), Now: clock.now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("New with the IdP down must not fail: %v", err)
	}
	tok := sign(t, jwt.SigningMethodRS256, k.rsa, "k", claims())
	n := x.acct.remote.fetches.Load()
	clock.advance(time.Minute)
	if id := identifyToken(x, testNow, tok); id.Account != "" {
		t.Fatalf("no keys yet: account = %q", id.Account)
	}
	waitFetches(t, x.acct.remote, n)
	if id := identifyToken(x, testNow, tok); id.Account != "user-42" {
		t.Fatalf("after recovery: account = %q", id.Account)
	}
}

// TestJWKSURLKickWithPEM: a PEM key beside a JWKS URL must not stop an
// unknown kid from asking for a refresh.
func TestJWKSURLKickWithPEM(t *testing.T) {
	k := getKeys(t)
	srv := &jwksServer{}
	srv.set(jwksJSON(t, jwkSpec{"old", "ES256", &k.ec.PublicKey}))
	hs := httptest.NewServer(srv)
	defer hs.Close()
	clock := &fakeClock{}
	x, err := New(t.Context(), Config{Account: AccountConfig{PublicKeyFile: writePEM(t, &k.rsa.PublicKey), JWKSURL: hs.URL, JWKSRefresh: time.Hour}},
		Options{HTTPClient: hs.Client(), Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	srv.set(jwksJSON(t, jwkSpec{"new", "RS256", &k.rsa2.PublicKey}))
	tok := sign(t, jwt.SigningMethodRS256, k.rsa2, "new", claims())
	n := x.acct.remote.fetches.Load()
	clock.advance(time.Minute)
	// The PEM key fits RS256 and is tried (and fails), yet the kid still kicks.
	if id := identifyToken(x, testNow, tok); id.Account != "" {
		t.Fatalf("before refresh: account = %q", id.Account)
	}
	waitFetches(t, x.acct.remote, n)
	// The refused result was cached for negativeTTL; past it the new key works.
	if id := identifyToken(x, testNow.Add(negativeTTL), tok); id.Account != "user-42" {
		t.Fatalf("after refresh: account = %q", id.Account)
	}
}

func TestTrusts(t *testing.T) {
	c := Config{TrustedProxies: []string{"10.0.0.0/8", "::1"}}
	ps, err := c.TrustedPrefixes()
	if err != nil || len(ps) != 2 || ps[1].String() != "::1/128" {
		t.Fatalf("TrustedPrefixes = %v, %v", ps, err)
	}
	if _, err := (Config{TrustedProxies: []string{"x"}}).TrustedPrefixes(); err == nil || !strings.HasPrefix(err.Error(), "trusted_proxies[0]:") {
		t.Fatalf("bad entry: err = %v", err)
	}
	x := newTestIdentifier(t, c, Options{})
	for a, want := range map[string]bool{"10.1.2.3": true, "::ffff:10.1.2.3": true, "::1": true, "11.0.0.1": false} {
		if got := x.Trusts(netip.MustParseAddr(a)); got != want {
			t.Errorf("Trusts(%s) = %v, want %v", a, got, want)
		}
	}
}

// TestRefusedTokensKeepGoodOnesCached: bad tokens go to their own cache.
func TestRefusedTokensKeepGoodOnesCached(t *testing.T) {
	x := newTestIdentifier(t, Config{Account: AccountConfig{SecretEnv: "TEST_SECRET", CacheSize: cacheShards}}, Options{})
	good := sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims())
	if id := identifyToken(x, testNow, good); id.Account != "user-42" {
		t.Fatal("good token refused")
	}
	for i := range 500 {
		identifyToken(x, testNow, sign(t, jwt.SigningMethodHS256, []byte("wrong-secret-wrong-secret-wrong!"), "", claims("jti", i)))
	}
	key := x.acct.cache.hash(good)
	if a, ok := x.acct.cache.get(key, good, testNow); !ok || a == nil || a.subject != "user-42" {
		t.Fatalf("500 bad tokens evicted the good one from the cache")
	}
}

// TestJWKSRedirectOffLoopbackRefused: the default client never follows a
// redirect to plain http elsewhere (refused before any connection).
func TestJWKSRedirectOffLoopbackRefused(t *testing.T) {
	hs := httptest.NewServer(http.RedirectHandler("http://192.0.2.1/jwks.json", http.StatusFound))
	defer hs.Close()
	var logBuf strings.Builder
	var mu sync.Mutex
	x, err := New(t.Context(), Config{Account: AccountConfig{JWKSURL: hs.URL, JWKSRefresh: time.Hour}},
		Options{Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logBuf}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if x.acct.remote.keys.Load() != nil {
		t.Fatal("keys loaded through a refused redirect")
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logBuf.String(), "must be https or http on loopback") {
		t.Fatalf("log does not say why: %s", logBuf.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
