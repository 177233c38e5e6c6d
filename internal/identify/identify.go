package identify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"
)

const maxAppLen = 256

// Options are the Identifier's dependencies.
type Options struct {
	Logger     *slog.Logger                      // default slog.Default()
	HTTPClient *http.Client                      // fetches account.jwks_url; default a client with a 10s timeout
	Now        func() time.Time                  // paces JWKS refreshes; default time.Now
	LookupEnv  func(string) (string, bool)       // reads account.secret_env; default os.LookupEnv
	ReadFile   func(name string) ([]byte, error) // reads key files; default os.ReadFile
}

// Identifier turns requests into Identities. It is safe for concurrent use.
type Identifier struct {
	appHeader string
	trusted   []netip.Prefix
	v4Bits    int
	v6Bits    int
	parts     fpParts
	acct      *verifier // nil when no key source is configured
	appKeys   appKeys   // nil: app keys are taken unverified
	// what a request with an unverified credential gets (the gateway
	// applies it)
	acctPolicy, appPolicy CredentialPolicy
	apps                  *internTable
	fps                   *fpCache
	pool                  sync.Pool // *scratch
}

// scratch is per-call working memory with its callbacks already bound.
type scratch struct {
	walk fwdWalk
	fp   fpHash
	keys []byte // IP and Net formatted, before their one string
}

// New builds an Identifier from cfg (defaults applied here too). It reads
// the key files and, with account.jwks_url, fetches the JWK Set once and
// keeps refreshing it until ctx ends. A failed first fetch is logged, not
// fatal: tokens are then unverified (unknown_key: the gateway refuses or
// strips them) until a refresh succeeds.
func New(ctx context.Context, cfg Config, opts Options) (*Identifier, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("identify: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{
			Timeout: jwksFetchTimeout,
			// Keys must come from where jwks_url allows: no redirect to plain
			// http off loopback.
			CheckRedirect: func(r *http.Request, via []*http.Request) error {
				if len(via) >= 5 {
					return errors.New("too many redirects")
				}
				return checkJWKSURL(r.URL.String())
			},
		}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.LookupEnv == nil {
		opts.LookupEnv = os.LookupEnv
	}
	if opts.ReadFile == nil {
		opts.ReadFile = os.ReadFile
	}
	x := &Identifier{
		appHeader:  cfg.App.Header,
		acctPolicy: cfg.Account.Unverified,
		appPolicy:  cfg.App.Unregistered,
		v4Bits:     cfg.Net.IPv4Prefix,
		v6Bits:     cfg.Net.IPv6Prefix,
		apps:       newInternTable(1024),
		fps:        newFPCache(4096),
	}
	x.trusted, _ = cfg.TrustedPrefixes() // checked by Validate
	for _, p := range cfg.Fingerprint.Parts {
		switch p {
		case PartTLS:
			x.parts.tls = true
		case PartHeaderOrder:
			x.parts.names = true
		case PartUserAgent:
			x.parts.ua = true
		}
	}
	acct, err := newVerifier(ctx, cfg.Account, opts)
	if err != nil {
		return nil, err
	}
	x.acct = acct
	if x.appKeys, err = loadAppKeys(cfg.App, opts); err != nil {
		return nil, err
	}
	x.pool.New = func() any {
		s := &scratch{}
		s.walk.init()
		s.fp.init()
		return s
	}
	return x, nil
}

// secretFrom reads a secret from file (trailing newline trimmed) or, when no
// file is named, from the environment variable env. at is the setting read,
// fileAt or envAt, which names it in errors (its callers' too).
func secretFrom(opts Options, file, env, fileAt, envAt string) (secret, at string, err error) {
	if file != "" {
		raw, err := opts.ReadFile(file)
		if err != nil {
			return "", fileAt, fmt.Errorf("%s: %w", fileAt, err)
		}
		return strings.TrimRight(string(raw), "\r\n"), fileAt, nil
	}
	v, ok := opts.LookupEnv(env)
	if !ok {
		return "", envAt, fmt.Errorf("%s: %s is not set", envAt, env)
	}
	return v, envAt, nil
}

func newVerifier(ctx context.Context, c AccountConfig, opts Options) (*verifier, error) {
	if !c.Verifies() {
		return nil, nil
	}
	v := &verifier{
		header:   c.Header,
		bearer:   strings.EqualFold(c.Header, "Authorization"),
		algs:     c.Algorithms,
		issuer:   c.Issuer,
		audience: c.Audience,
		leeway:   c.Leeway,
		subject:  c.SubjectClaim,
		created:  c.CreatedClaim,
		scopes:   c.ScopesClaim,
		youngest: c.MissingCreated == AgeYoungest,
		cache:    newTokenCache(c.CacheSize),
		refused:  newTokenCache(max(cacheShards, c.CacheSize/4)),
	}
	re, err := c.SubjectRE()
	if err != nil {
		return nil, fmt.Errorf("identify: account.subject_pattern: %w", err)
	}
	v.subjectRE = re
	if c.SecretFile != "" || c.SecretEnv != "" {
		secret, at, err := secretFrom(opts, c.SecretFile, c.SecretEnv, "identify: account.secret_file", "identify: account.secret_env")
		if err != nil {
			return nil, err
		}
		if secret == "" { // anyone could sign with an empty key
			return nil, fmt.Errorf("%s: secret is empty", at)
		}
		if len(secret) < minSecretLen {
			// RFC 7518 asks for 256-bit HS256 keys; a platform's secret is
			// its own choice (the lab's is short), so warn, don't refuse.
			opts.Logger.Warn(at+": HS256 secret shorter than 32 bytes", "bytes", len(secret))
		}
		v.secret = []byte(secret)
	}
	if c.PublicKeyFile != "" {
		raw, err := opts.ReadFile(c.PublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("identify: account.public_key_file: %w", err)
		}
		if v.pub, err = parsePublicKey(raw); err != nil {
			return nil, fmt.Errorf("identify: account.public_key_file: %s: %w", c.PublicKeyFile, err)
		}
	}
	if c.JWKSFile != "" {
		raw, err := opts.ReadFile(c.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("identify: account.jwks_file: %w", err)
		}
		if v.fileKeys, err = parseJWKS(raw); err != nil {
			return nil, fmt.Errorf("identify: account.jwks_file: %s: %w", c.JWKSFile, err)
		}
	}
	if c.JWKSURL != "" {
		r := &remoteKeys{
			url:      c.JWKSURL,
			client:   opts.HTTPClient,
			log:      opts.Logger,
			now:      opts.Now,
			interval: c.JWKSRefresh,
			kick:     make(chan struct{}, 1),
		}
		if err := r.refresh(ctx); err != nil {
			opts.Logger.Warn("identify: first jwks fetch failed; tokens are unverified (refused or stripped) until a refresh succeeds", "error", err)
		}
		go r.run(ctx)
		v.remote = r
	}
	return v, nil
}

// Identify fills out with what in says of its sender. It never fails: a
// facet that cannot be established is left empty. now judges token expiry.
// out.Scopes may be shared with other requests and must not be modified.
func (x *Identifier) Identify(now time.Time, in *Input, out *Identity) {
	*out = Identity{}
	s := x.pool.Get().(*scratch)
	defer x.pool.Put(s)
	h := in.Header
	if len(x.trusted) > 0 {
		out.IP = s.walk.clientIP(in.Peer, h, x.trusted)
	} else {
		out.IP = in.Peer.Unmap().WithZone("")
	}
	out.Net = x.netOf(out.IP)
	s.keys = out.setKeys(s.keys)
	if h != nil {
		var app *registeredApp
		switch n := h.Count(x.appHeader); {
		case n > 1:
			out.Ambiguous = x.appHeader
		case n == 1:
			key := h.Peek(x.appHeader)
			switch {
			case x.appKeys != nil:
				// With registered keys, any other value (empty, too long,
				// a byte off) is a credential warden cannot verify.
				if len(key) <= maxAppLen {
					app = x.appKeys.lookup(key)
				}
				if app != nil {
					out.App = app.name
				} else {
					out.Unverified |= CredentialApp
				}
			case key != "" && len(key) <= maxAppLen:
				out.App = x.apps.str(key)
			}
		}
		if x.acct != nil {
			switch n := h.Count(x.acct.header); {
			case n > 1:
				out.Ambiguous = x.acct.header
			case n == 1:
				x.account(now, h.Peek(x.acct.header), out)
			}
		}
		if app != nil {
			out.Scopes = withScopes(out.Scopes, app.scopes)
		}
	}
	out.Fingerprint = s.fp.sum(h, in.TLSFingerprint, x.parts, x.fps)
}

// account sets out's account from the account header's one value, or marks
// the credential unverified with why.
func (x *Identifier) account(now time.Time, val string, out *Identity) {
	tok, why := x.acct.token(val)
	if why == "" {
		a := x.acct.account(now, tok)
		if a.refused == "" {
			out.Account, out.AccountCreated, out.AccountAgeUnknown, out.Scopes = a.subject, a.created, a.ageUnknown, a.scopes
			return
		}
		why = a.refused
	}
	out.Unverified |= CredentialAccount
	out.UnverifiedWhy = why
}

// Header is the name of the header that carries credential c.
func (x *Identifier) Header(c Credential) string {
	if c == CredentialAccount && x.acct != nil {
		return x.acct.header
	}
	if c == CredentialApp {
		return x.appHeader
	}
	return ""
}

// Policy is what a request carrying credential c unverified gets.
func (x *Identifier) Policy(c Credential) CredentialPolicy {
	if c == CredentialApp {
		return x.appPolicy
	}
	return x.acctPolicy
}

// Bearer reports whether account tokens come in Authorization with the
// Bearer scheme (a refusal then names the scheme in WWW-Authenticate).
func (x *Identifier) Bearer() bool { return x.acct != nil && x.acct.bearer }

// ClientIP is the package's ClientIP with the configured trusted proxies.
func (x *Identifier) ClientIP(peer netip.Addr, h Header) netip.Addr {
	s := x.pool.Get().(*scratch)
	defer x.pool.Put(s)
	return s.walk.clientIP(peer, h, x.trusted)
}

// Trusts reports whether a (unmapped first) is in trusted_proxies.
func (x *Identifier) Trusts(a netip.Addr) bool {
	return inPrefixes(x.trusted, a.Unmap().WithZone(""))
}

// TrustedPrefixes parses trusted_proxies as Identify does; the error names
// the first bad entry.
func (c Config) TrustedPrefixes() ([]netip.Prefix, error) {
	ps := make([]netip.Prefix, 0, len(c.TrustedProxies))
	for i, s := range c.TrustedProxies {
		p, err := parseTrusted(s)
		if err != nil {
			return nil, fmt.Errorf("trusted_proxies[%d]: %w", i, err)
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// netOf is the configured prefix around ip, invalid when ip is.
func (x *Identifier) netOf(ip netip.Addr) netip.Prefix {
	if !ip.IsValid() {
		return netip.Prefix{}
	}
	bits := x.v6Bits
	if ip.Is4() {
		bits = x.v4Bits
	}
	p, err := ip.Prefix(bits)
	if err != nil {
		return netip.Prefix{}
	}
	return p
}
