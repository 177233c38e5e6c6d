package identify

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Config is the `identity:` section of warden's configuration. Zero values
// are replaced by the defaults documented on each field (SetDefaults).
type Config struct {
	App            AppConfig         `yaml:"app"`
	Account        AccountConfig     `yaml:"account"`
	TrustedProxies []string          `yaml:"trusted_proxies"` // CIDRs (a bare address is a single host); default none: the peer is always the client
	Net            NetConfig         `yaml:"net"`
	Fingerprint    FingerprintConfig `yaml:"fingerprint"`
}

// AppConfig says where the app key is and which keys are registered.
type AppConfig struct {
	Header string `yaml:"header"` // default X-App-Key; values longer than 256 bytes are no app
	// Keys registers apps. With keys, a request is an app only when it
	// presents a registered key, and the facet is the app's name; any
	// other key is no app. Without keys the header's value itself is the
	// app, unverified: fine for counting, never for exemptions or scopes
	// (config validation refuses those).
	Keys []AppKey `yaml:"keys"`
	// Unregistered is what a request presenting a key that is not
	// registered gets, when keys are: refuse (default; 401, rule identity)
	// or strip (forwarded without the key, as an anonymous request). Never
	// forwarded as it came: an upstream that knows more keys than warden
	// would serve an app warden never counted.
	Unregistered CredentialPolicy `yaml:"unregistered"`
}

// CredentialPolicy says what happens to a request carrying a credential
// warden cannot verify.
type CredentialPolicy string

// Credential policies.
const (
	Refuse CredentialPolicy = "refuse" // 401, rule identity
	Strip  CredentialPolicy = "strip"  // forwarded without the credential
)

// AgePolicy says how old an account whose token has no creation claim is.
type AgePolicy string

// Age policies.
const (
	AgeYoungest AgePolicy = "youngest" // the youngest account_age tier applies
	AgeOldest   AgePolicy = "oldest"   // no account_age tier applies
)

// AppKey registers one app's key: exactly one of KeyEnv, KeyFile and
// KeySHA256.
type AppKey struct {
	App       string   `yaml:"app"`        // the app facet's value, as exemptions name it
	KeyEnv    string   `yaml:"key_env"`    // environment variable holding the key
	KeyFile   string   `yaml:"key_file"`   // file holding the key (trailing newline trimmed)
	KeySHA256 string   `yaml:"key_sha256"` // the key's SHA-256 in hex: the config holds no secret
	Scopes    []string `yaml:"scopes"`     // granted to every request of the app
}

// Verified reports whether app keys are checked against registered ones.
func (c AppConfig) Verified() bool { return len(c.Keys) > 0 }

// Registered reports whether app is a registered app's name.
func (c AppConfig) Registered(app string) bool {
	for _, k := range c.Keys {
		if k.App == app {
			return true
		}
	}
	return false
}

// AccountConfig says how a request's JWT is verified. With no key source
// (secret, public key, JWKS) no request has an account.
type AccountConfig struct {
	Header     string   `yaml:"header"`     // default Authorization ("Bearer " stripped); any other header holds the bare token
	Algorithms []string `yaml:"algorithms"` // HS256, RS256, ES256; default HS256 when a secret is set, plus RS256 and ES256 when a public key or JWKS is set

	SecretFile    string        `yaml:"secret_file"`     // HS256 secret (trailing newline trimmed); empty refused, under 32 bytes warned
	SecretEnv     string        `yaml:"secret_env"`      // or the name of the environment variable holding it
	PublicKeyFile string        `yaml:"public_key_file"` // PEM: PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE (RSA or P-256)
	JWKSFile      string        `yaml:"jwks_file"`       // a JWK Set read once at start
	JWKSURL       string        `yaml:"jwks_url"`        // https, or http on loopback
	JWKSRefresh   time.Duration `yaml:"jwks_refresh"`    // default 15m; an unknown kid also triggers a refresh, at most once per 30s

	Issuer   string        `yaml:"issuer"`   // required iss when set
	Audience string        `yaml:"audience"` // required in aud when set
	Leeway   time.Duration `yaml:"leeway"`   // clock skew allowed on exp/nbf/iat; default 30s

	SubjectClaim string `yaml:"subject_claim"` // default sub
	CreatedClaim string `yaml:"created_claim"` // default created (unix seconds)
	ScopesClaim  string `yaml:"scopes_claim"`  // default scope (space-separated string or array)

	CacheSize int `yaml:"cache_size"` // verified tokens kept, default 4096

	// Unverified is what a request carrying an account credential warden
	// cannot verify gets (malformed, bad signature, expired, not yet
	// valid, over a size bound, a subject off subject_pattern): refuse
	// (default; 401, rule identity) or strip (forwarded without the
	// header, as an anonymous request). Never forwarded as it came.
	Unverified CredentialPolicy `yaml:"unverified"`
	// SubjectPattern, when set, is a regular expression every verified
	// subject must match whole (as if anchored: [1-9][0-9]* and
	// ^[1-9][0-9]*$ are the same): a subject the upstream may read as
	// another spelling of an account (077, +77) is refused as ambiguous.
	// Default none.
	SubjectPattern string `yaml:"subject_pattern"`
	// MissingCreated is the age of an account whose token has no readable
	// created claim: youngest (default; the youngest account_age tier) or
	// oldest (no tier).
	MissingCreated AgePolicy `yaml:"missing_created"`
}

// Verifies reports whether account tokens are verified at all: with no key
// source (secret, public key, JWKS) there is no algorithm and no request
// has an account.
func (a AccountConfig) Verifies() bool { return len(a.Algorithms) > 0 }

// SubjectRE is SubjectPattern as verification applies it: to the whole
// subject, as if anchored (unanchored, [1-9][0-9]* would pass +77 and 077,
// both holding a match, the spellings the pattern is there to refuse).
// nil when there is no pattern.
func (a AccountConfig) SubjectRE() (*regexp.Regexp, error) {
	if a.SubjectPattern == "" {
		return nil, nil
	}
	if _, err := regexp.Compile(a.SubjectPattern); err != nil {
		return nil, err // the pattern's own error, not the wrapped one's
	}
	return regexp.Compile(`^(?:` + a.SubjectPattern + `)$`)
}

// NetConfig sets the prefix lengths of the net facet.
type NetConfig struct {
	IPv4Prefix int `yaml:"ipv4_prefix"` // default 24
	IPv6Prefix int `yaml:"ipv6_prefix"` // default 48
}

// FingerprintConfig chooses what the fingerprint hashes.
type FingerprintConfig struct {
	Parts []string `yaml:"parts"` // any of tls, header_order, user_agent; default all three
}

// Fingerprint parts.
const (
	PartTLS         = "tls"
	PartHeaderOrder = "header_order"
	PartUserAgent   = "user_agent"
)

// Defaults.
const (
	DefaultAppHeader     = "X-App-Key"
	DefaultAccountHeader = "Authorization"
	DefaultJWKSRefresh   = 15 * time.Minute
	DefaultLeeway        = 30 * time.Second
	DefaultSubjectClaim  = "sub"
	DefaultCreatedClaim  = "created"
	DefaultScopesClaim   = "scope"
	DefaultCacheSize     = 4096
	DefaultIPv4Prefix    = 24
	DefaultIPv6Prefix    = 48
)

const (
	minSecretLen = 32
	maxCacheSize = 1 << 20
)

// SetDefaults fills every zero field with its default.
func (c *Config) SetDefaults() {
	if c.App.Header == "" {
		c.App.Header = DefaultAppHeader
	}
	if c.App.Unregistered == "" {
		c.App.Unregistered = Refuse
	}
	a := &c.Account
	if a.Header == "" {
		a.Header = DefaultAccountHeader
	}
	if len(a.Algorithms) == 0 {
		if a.SecretFile != "" || a.SecretEnv != "" {
			a.Algorithms = append(a.Algorithms, "HS256")
		}
		if a.PublicKeyFile != "" || a.JWKSFile != "" || a.JWKSURL != "" {
			a.Algorithms = append(a.Algorithms, "RS256", "ES256")
		}
	}
	if a.JWKSRefresh == 0 {
		a.JWKSRefresh = DefaultJWKSRefresh
	}
	if a.Leeway == 0 {
		a.Leeway = DefaultLeeway
	}
	if a.SubjectClaim == "" {
		a.SubjectClaim = DefaultSubjectClaim
	}
	if a.CreatedClaim == "" {
		a.CreatedClaim = DefaultCreatedClaim
	}
	if a.ScopesClaim == "" {
		a.ScopesClaim = DefaultScopesClaim
	}
	if a.CacheSize == 0 {
		a.CacheSize = DefaultCacheSize
	}
	if a.Unverified == "" {
		a.Unverified = Refuse
	}
	if a.MissingCreated == "" {
		a.MissingCreated = AgeYoungest
	}
	if c.Net.IPv4Prefix == 0 {
		c.Net.IPv4Prefix = DefaultIPv4Prefix
	}
	if c.Net.IPv6Prefix == 0 {
		c.Net.IPv6Prefix = DefaultIPv6Prefix
	}
	if len(c.Fingerprint.Parts) == 0 {
		c.Fingerprint.Parts = []string{PartTLS, PartHeaderOrder, PartUserAgent}
	}
}

// Validate checks a defaulted Config. Each error starts with the field's
// YAML path relative to the identity section.
func (c Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{path}, args...)...))
	}
	if !validHeaderName(c.App.Header) {
		bad("app.header", "%q is not a header name", c.App.Header)
	}
	apps := map[string]bool{}
	for i, k := range c.App.Keys {
		p := fmt.Sprintf("app.keys[%d]", i)
		switch {
		case k.App == "":
			bad(p+".app", "required")
		case len(k.App) > maxAppLen:
			bad(p+".app", "longer than %d bytes", maxAppLen)
		case apps[k.App]:
			bad(p+".app", "%q registered twice", k.App)
		}
		apps[k.App] = true
		n := 0
		for _, v := range []string{k.KeyEnv, k.KeyFile, k.KeySHA256} {
			if v != "" {
				n++
			}
		}
		if n != 1 {
			bad(p, "set exactly one of key_env, key_file and key_sha256")
		}
		if k.KeySHA256 != "" {
			if b, err := hex.DecodeString(k.KeySHA256); err != nil || len(b) != sha256.Size {
				bad(p+".key_sha256", "not 64 hex digits")
			}
		}
		for j, sc := range k.Scopes {
			if strings.TrimSpace(sc) == "" {
				bad(fmt.Sprintf("%s.scopes[%d]", p, j), "empty")
			}
		}
	}
	if !c.App.Unregistered.valid() {
		bad("app.unregistered", "%q is not refuse or strip", c.App.Unregistered)
	}
	a := c.Account
	if !a.Unverified.valid() {
		bad("account.unverified", "%q is not refuse or strip", a.Unverified)
	}
	if a.MissingCreated != AgeYoungest && a.MissingCreated != AgeOldest {
		bad("account.missing_created", "%q is not youngest or oldest", a.MissingCreated)
	}
	if a.SubjectPattern != "" {
		if _, err := regexp.Compile(a.SubjectPattern); err != nil {
			bad("account.subject_pattern", "%v", err)
		}
	}
	if !validHeaderName(a.Header) {
		bad("account.header", "%q is not a header name", a.Header)
	}
	hasSecret := a.SecretFile != "" || a.SecretEnv != ""
	hasPublic := a.PublicKeyFile != "" || a.JWKSFile != "" || a.JWKSURL != ""
	if a.SecretFile != "" && a.SecretEnv != "" {
		bad("account.secret_env", "set together with account.secret_file; choose one")
	}
	var wantHS, wantAsym bool
	seen := map[string]bool{}
	for i, alg := range a.Algorithms {
		p := fmt.Sprintf("account.algorithms[%d]", i)
		switch alg {
		case "HS256":
			wantHS = true
			if !hasSecret {
				bad(p, "HS256 needs account.secret_file or account.secret_env")
			}
		case "RS256", "ES256":
			wantAsym = true
			if !hasPublic {
				bad(p, "%s needs account.public_key_file, account.jwks_file or account.jwks_url", alg)
			}
		case "none", "None", "NONE":
			bad(p, "%q is refused: unsigned tokens prove nothing", alg)
		default:
			bad(p, "%q is not supported (HS256, RS256, ES256)", alg)
		}
		if seen[alg] {
			bad(p, "%q listed twice", alg)
		}
		seen[alg] = true
	}
	if hasSecret && !wantHS {
		bad("account.algorithms", "a secret is set but HS256 is not listed")
	}
	if hasPublic && !wantAsym {
		bad("account.algorithms", "a public key or JWKS is set but neither RS256 nor ES256 is listed")
	}
	if a.JWKSURL != "" {
		if err := checkJWKSURL(a.JWKSURL); err != nil {
			bad("account.jwks_url", "%v", err)
		}
	}
	if a.JWKSRefresh < time.Second {
		bad("account.jwks_refresh", "%v is below the 1s minimum", a.JWKSRefresh)
	}
	if a.Leeway < 0 || a.Leeway > 10*time.Minute {
		bad("account.leeway", "%v is outside 0..10m", a.Leeway)
	}
	for _, cl := range []struct{ path, v string }{
		{"account.subject_claim", a.SubjectClaim},
		{"account.created_claim", a.CreatedClaim},
		{"account.scopes_claim", a.ScopesClaim},
	} {
		if strings.TrimSpace(cl.v) == "" {
			bad(cl.path, "must not be blank")
		}
	}
	if a.CacheSize < 1 || a.CacheSize > maxCacheSize {
		bad("account.cache_size", "%d is outside 1..%d", a.CacheSize, maxCacheSize)
	}
	for i, s := range c.TrustedProxies {
		if _, err := parseTrusted(s); err != nil {
			bad(fmt.Sprintf("trusted_proxies[%d]", i), "%v", err)
		}
	}
	if c.Net.IPv4Prefix < 1 || c.Net.IPv4Prefix > 32 {
		bad("net.ipv4_prefix", "%d is outside 1..32", c.Net.IPv4Prefix)
	}
	if c.Net.IPv6Prefix < 1 || c.Net.IPv6Prefix > 128 {
		bad("net.ipv6_prefix", "%d is outside 1..128", c.Net.IPv6Prefix)
	}
	for i, p := range c.Fingerprint.Parts {
		switch p {
		case PartTLS, PartHeaderOrder, PartUserAgent:
		default:
			bad(fmt.Sprintf("fingerprint.parts[%d]", i), "%q is not one of tls, header_order, user_agent", p)
		}
	}
	return errors.Join(errs...)
}

func (p CredentialPolicy) valid() bool { return p == Refuse || p == Strip }

func checkJWKSURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return errors.New("must be https or http on loopback: not an absolute URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		h := u.Hostname()
		if h == "localhost" {
			return nil
		}
		if ip, err := netip.ParseAddr(h); err == nil && ip.IsLoopback() {
			return nil
		}
	}
	return errors.New("must be https or http on loopback")
}

// parseTrusted reads a CIDR or a bare address. IPv4-mapped IPv6 prefixes are
// turned into IPv4 ones, since client addresses are unmapped before matching.
func parseTrusted(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		p, err = netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR", s)
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR or an address", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q has a zone", s)
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}
