package identify

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.yaml.in/yaml/v3"
)

func decodeConfig(t *testing.T, src string) Config {
	t.Helper()
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader([]byte(src)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && err != io.EOF {
		t.Fatalf("decode: %v", err)
	}
	return c
}

func TestConfigFullFixture(t *testing.T) {
	raw, err := os.ReadFile("testdata/config/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := decodeConfig(t, string(raw))
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if c.Account.JWKSRefresh != 10*time.Minute || c.Account.Leeway != 5*time.Second {
		t.Errorf("durations: refresh %v leeway %v", c.Account.JWKSRefresh, c.Account.Leeway)
	}
	if !slices.Equal(c.Account.Algorithms, []string{"HS256", "ES256"}) {
		t.Errorf("algorithms = %q", c.Account.Algorithms)
	}
	if c.Net.IPv4Prefix != 22 || c.Net.IPv6Prefix != 56 {
		t.Errorf("net = %+v", c.Net)
	}
}

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	want := Config{
		App: AppConfig{Header: "X-App-Key", Unregistered: "refuse"},
		Account: AccountConfig{
			Header: "Authorization", JWKSRefresh: 15 * time.Minute, Leeway: 30 * time.Second,
			SubjectClaim: "sub", CreatedClaim: "created", ScopesClaim: "scope", CacheSize: 4096,
			Unverified: "refuse", MissingCreated: "youngest",
		},
		Net:         NetConfig{IPv4Prefix: 24, IPv6Prefix: 48},
		Fingerprint: FingerprintConfig{Parts: []string{"tls", "header_order", "user_agent"}},
	}
	if got, w := strings.TrimSpace(dump(t, c)), strings.TrimSpace(dump(t, want)); got != w {
		t.Fatalf("defaults:\n%s\nwant:\n%s", got, w)
	}
	a := Config{Account: AccountConfig{SecretFile: "s", JWKSURL: "https://idp.example/jwks"}}
	a.SetDefaults()
	if !slices.Equal(a.Account.Algorithms, []string{"HS256", "RS256", "ES256"}) {
		t.Fatalf("default algorithms with secret and JWKS = %q", a.Account.Algorithms)
	}
}

func dump(t *testing.T, c Config) string {
	t.Helper()
	b, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string // each must start a line of the error
	}{
		{"ok empty", ``, nil},
		{"bad app header", "app: {header: 'X App'}", []string{`app.header: "X App" is not a header name`}},
		{"alg none", "account: {secret_env: S, algorithms: [HS256, none]}", []string{`account.algorithms[1]: "none" is refused`}},
		{"alg unknown", "account: {secret_env: S, algorithms: [HS256, PS256]}", []string{`account.algorithms[1]: "PS256" is not supported`}},
		{"hs without secret", "account: {public_key_file: k.pem, algorithms: [HS256, RS256]}", []string{"account.algorithms[0]: HS256 needs"}},
		{"rs without key", "account: {secret_env: S, algorithms: [HS256, RS256]}", []string{"account.algorithms[1]: RS256 needs"}},
		{"secret twice", "account: {secret_env: S, secret_file: f}", []string{"account.secret_env: set together"}},
		{"secret without hs", "account: {secret_env: S, public_key_file: k, algorithms: [RS256]}", []string{"account.algorithms: a secret is set but HS256"}},
		{"jwks http remote", "account: {jwks_url: 'http://idp.example/jwks'}", []string{"account.jwks_url: must be https or http on loopback"}},
		{"jwks relative", "account: {jwks_url: '/jwks'}", []string{"account.jwks_url: must be https or http on loopback"}},
		{"jwks http loopback ok", "account: {jwks_url: 'http://127.0.0.1:8081/jwks'}", nil},
		{"jwks http localhost ok", "account: {jwks_url: 'http://localhost/jwks'}", nil},
		{"jwks refresh too short", "account: {jwks_url: 'https://idp/jwks', jwks_refresh: 10ms}", []string{"account.jwks_refresh: 10ms is below"}},
		{"leeway negative", "account: {leeway: -1s}", []string{"account.leeway: -1s is outside"}},
		{"blank claim", "account: {subject_claim: ' '}", []string{"account.subject_claim: must not be blank"}},
		{"cache size", "account: {cache_size: -5}", []string{"account.cache_size: -5 is outside"}},
		{"trusted proxy garbage", "trusted_proxies: [10.0.0.0/8, banana, 10.0.0.0/33]", []string{`trusted_proxies[1]: "banana" is not a CIDR`, `trusted_proxies[2]: "10.0.0.0/33" is not a CIDR`}},
		{"trusted bare address ok", "trusted_proxies: [192.0.2.1, '::1']", nil},
		{"net prefixes", "net: {ipv4_prefix: 33, ipv6_prefix: 129}", []string{"net.ipv4_prefix: 33 is outside", "net.ipv6_prefix: 129 is outside"}},
		{"fingerprint part", "fingerprint: {parts: [tls, cookies]}", []string{`fingerprint.parts[1]: "cookies" is not one of`}},
		{"app keys ok", "app: {keys: [{app: a, key_env: K}, {app: b, key_file: f, scopes: [s]}, {app: c, key_sha256: " + strings.Repeat("ab", 32) + "}]}", nil},
		{"app key sources", "app: {keys: [{app: a}, {app: b, key_env: K, key_file: f}]}", []string{"app.keys[0]: set exactly one", "app.keys[1]: set exactly one"}},
		{"app key names", "app: {keys: [{key_env: K}, {app: b, key_env: K1}, {app: b, key_env: K2}]}", []string{"app.keys[0].app: required", `app.keys[2].app: "b" registered twice`}},
		{"app key digest", "app: {keys: [{app: a, key_sha256: abcd}]}", []string{"app.keys[0].key_sha256: not 64 hex digits"}},
		{"app key scope", "app: {keys: [{app: a, key_env: K, scopes: ['']}]}", []string{"app.keys[0].scopes[0]: empty"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := decodeConfig(t, c.yaml)
			cfg.SetDefaults()
			err := cfg.Validate()
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", c.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(c.want) {
				t.Errorf("got %d errors, want %d:\n%v", len(lines), len(c.want), err)
			}
			for _, w := range c.want {
				if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, w) }) {
					t.Errorf("no error line starts with %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestParseTrustedMapped(t *testing.T) {
	p, err := parseTrusted("::ffff:10.0.0.0/104")
	if err != nil || p.String() != "10.0.0.0/8" {
		t.Fatalf("mapped prefix = %v, %v; want 10.0.0.0/8", p, err)
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	short := dir + "/short"
	os.WriteFile(short, []byte("short\n"), 0o600)
	empty := dir + "/empty"
	os.WriteFile(empty, []byte("\n"), 0o600)
	notPEM := dir + "/not.pem"
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	badJWKS := dir + "/bad.json"
	os.WriteFile(badJWKS, []byte("{"), 0o600)
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"invalid config", Config{Net: NetConfig{IPv4Prefix: 40}}, "identify: net.ipv4_prefix"},
		{"missing secret file", Config{Account: AccountConfig{SecretFile: dir + "/nope"}}, "identify: account.secret_file:"},
		{"empty secret", Config{Account: AccountConfig{SecretFile: empty}}, "identify: account.secret_file: secret is empty"},
		{"unset env", Config{Account: AccountConfig{SecretEnv: "WARDEN_TEST_UNSET"}}, "identify: account.secret_env: WARDEN_TEST_UNSET is not set"},
		{"not pem", Config{Account: AccountConfig{PublicKeyFile: notPEM}}, "identify: account.public_key_file:"},
		{"bad jwks", Config{Account: AccountConfig{JWKSFile: badJWKS}}, "identify: account.jwks_file:"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(t.Context(), c.cfg, Options{LookupEnv: func(string) (string, bool) { return "", false }})
			if err == nil || !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("err = %v, want prefix %q", err, c.want)
			}
			if strings.Contains(err.Error(), "short\n") {
				t.Fatalf("error leaks the secret: %v", err)
			}
		})
	}
}

// TestShortSecretWarns: a short HS256 secret works (the lab's is short) but
// is logged, without its value.
func TestShortSecretWarns(t *testing.T) {
	var buf bytes.Buffer
	x, err := New(t.Context(), Config{Account: AccountConfig{SecretEnv: "S"}}, Options{
		Logger:    slog.New(slog.NewTextHandler(&buf, nil)),
		LookupEnv: func(string) (string, bool) { return "lab-secret", true },
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "shorter than 32 bytes") || strings.Contains(buf.String(), "lab-secret") {
		t.Fatalf("log: %s", buf.String())
	}
	tok := sign(t, jwt.SigningMethodHS256, []byte("lab-secret"), "", claims())
	if id := identifyToken(x, testNow, tok); id.Account != "user-42" {
		t.Fatalf("short secret: account = %q", id.Account)
	}
}
