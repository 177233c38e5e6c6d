package identify

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	maxTokenLen   = 8 << 10
	maxSubjectLen = 256
	maxScopes     = 64
	// A verified token is re-verified at least this often, so a key removed
	// from a JWKS stops working within it even for tokens that do not expire.
	maxPositiveTTL = 5 * time.Minute
	// A refused token is refused from the cache for this long.
	negativeTTL = 10 * time.Second
)

// verifier turns a bearer token into an account.
type verifier struct {
	header   string
	bearer   bool // strip "Bearer " (the header is Authorization)
	algs     []string
	secret   []byte
	pub      any // from public_key_file
	fileKeys *keySet
	remote   *remoteKeys
	issuer   string
	audience string
	leeway   time.Duration
	subject  string
	created  string
	scopes   string
	// subjectRE, when set, every subject must match.
	subjectRE *regexp.Regexp
	youngest  bool        // a token without created is the youngest account
	cache     *tokenCache // verified tokens
	refused   *tokenCache // refused tokens, apart so a flood of bad ones cannot evict good ones
}

// Why a credential was not verified: fixed words for logs and refusals,
// never the credential.
const (
	whyMalformed    = "malformed"     // not "Bearer" and a token68 (RFC 9110 11.4), or not a JWT
	whyTooLong      = "too_long"      // over maxTokenLen
	whySignature    = "signature"     // no key verifies it
	whyExpired      = "expired"       // exp passed
	whyNotYetValid  = "not_yet_valid" // nbf or iat in the future
	whyClaims       = "claims"        // iss, aud or another claim refused
	whySubject      = "subject"       // no subject, one over maxSubjectLen, or off subject_pattern
	whyUnknownKey   = "unknown_key"   // a kid no key set has (yet)
	whyUnregistered = "unregistered"  // an app key that is not registered
)

// token extracts the token from the header value v. why is set when the
// value holds no token warden can verify: the value is read as RFC 9110
// defines it (optional white space is space and tab, nothing else), so a
// token with any other byte around it, which an upstream trimming Unicode
// white space would still accept, is not verifiable. That tok is a token68
// is account's to check, after its caches (see there).
func (v *verifier) token(val string) (tok, why string) {
	t := trimOWS(val)
	if v.bearer {
		// credentials = auth-scheme 1*SP token68; the scheme in any case.
		if len(t) < 7 || !strings.EqualFold(t[:6], "bearer") || t[6] != ' ' {
			return "", whyMalformed
		}
		t = strings.TrimLeft(t[7:], " ")
	}
	if len(t) > maxTokenLen {
		return "", whyTooLong
	}
	return t, ""
}

// malformed is the refusal of a token that is not a token68.
var malformed = &account{refused: whyMalformed}

// isToken68 reports whether s is an RFC 9110 token68: 1*( ALPHA / DIGIT /
// "-" / "." / "_" / "~" / "+" / "/" ) *"=". A JWT is one.
func isToken68(s string) bool {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' {
			continue
		}
		break
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// account returns the verified account of token, or one whose refused
// says why there is none. Whether tok is a token68 is checked only when
// neither cache holds it: the caches hold only tokens that were, and
// compare the whole token, so a hit needs no second scan (the scan was a
// quarter of Identify's CPU in a profile of BenchmarkServe/e).
func (v *verifier) account(now time.Time, tok string) *account {
	key := v.cache.hash(tok)
	if a, ok := v.cache.get(key, tok, now); ok {
		return a
	}
	if a, ok := v.refused.get(key, tok, now); ok {
		return a
	}
	if !isToken68(tok) {
		return malformed
	}
	a, until, cache := v.verify(now, tok)
	switch {
	case !cache:
	case a.refused == "": // the caches keep the token; tok may alias the front's buffer
		v.cache.put(key, strings.Clone(tok), a, until)
	default:
		v.refused.put(key, strings.Clone(tok), a, until)
	}
	return a
}

// verify checks tok fully. until is how long the result may be cached;
// cache is false when it must not be (an unknown kid may be known soon).
// A refused token gives an account with refused set.
func (v *verifier) verify(now time.Time, tok string) (a *account, until time.Time, cache bool) {
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(v.algs),
		jwt.WithLeeway(v.leeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithIssuedAt(),
	}
	if v.issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.issuer))
	}
	if v.audience != "" {
		opts = append(opts, jwt.WithAudience(v.audience))
	}
	claims := jwt.MapClaims{}
	_, err := jwt.NewParser(opts...).ParseWithClaims(tok, claims, v.key)
	if err != nil {
		if errors.Is(err, errUnknownKID) {
			return refusedAccounts[whyUnknownKey], time.Time{}, false
		}
		return refusedAccounts[whyOf(err)], now.Add(negativeTTL), true
	}
	until = now.Add(maxPositiveTTL)
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		until = minTime(until, exp.Add(v.leeway))
	}
	sub, ok := claimString(claims[v.subject])
	if !ok || sub == "" || len(sub) > maxSubjectLen || v.subjectRE != nil && !v.subjectRE.MatchString(sub) {
		return refusedAccounts[whySubject], until, true
	}
	created := claimTime(claims[v.created])
	return &account{
		subject:    sub,
		created:    created,
		ageUnknown: created.IsZero() && v.youngest,
		scopes:     claimScopes(claims[v.scopes]),
	}, until, true
}

// refusedAccounts are the cached refusals, one per reason, shared.
var refusedAccounts = func() map[string]*account {
	m := map[string]*account{}
	for _, w := range []string{whyMalformed, whyTooLong, whySignature, whyExpired, whyNotYetValid, whyClaims, whySubject, whyUnknownKey} {
		m[w] = &account{refused: w}
	}
	return m
}()

// whyOf names what the JWT parser refused.
func whyOf(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return whyMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return whySignature
	case errors.Is(err, jwt.ErrTokenExpired):
		return whyExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return whyNotYetValid
	}
	return whyClaims
}

// key picks the verification key by the token's algorithm, so a key is
// only ever used for its own kind: the HS secret only for HS256, RSA keys
// only for RS256, P-256 keys only for ES256 (no algorithm confusion).
func (v *verifier) key(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	switch alg {
	case "HS256":
		if v.secret == nil {
			return nil, errors.New("no HS256 secret")
		}
		return v.secret, nil
	case "RS256", "ES256":
	default:
		return nil, fmt.Errorf("algorithm %q not accepted", alg)
	}
	kid, _ := t.Header["kid"].(string)
	var keys []jwt.VerificationKey
	if fits(v.pub, alg) {
		keys = append(keys, v.pub)
	}
	remote := v.remoteSet()
	if kid != "" && v.remote != nil {
		if _, ok := remote.lookup(kid); !ok {
			v.remote.unknownKID() // a rotation may have published it since
		}
	}
	for _, ks := range []*keySet{v.fileKeys, remote} {
		if ks == nil {
			continue
		}
		if kid != "" {
			if k, ok := ks.lookup(kid); ok && (k.alg == "" || k.alg == alg) && fits(k.key, alg) {
				keys = append(keys, k.key)
			}
			continue
		}
		for _, k := range ks.all {
			if (k.alg == "" || k.alg == alg) && fits(k.key, alg) {
				keys = append(keys, k.key)
			}
		}
	}
	switch {
	case len(keys) == 1:
		return keys[0], nil
	case len(keys) > 1:
		return jwt.VerificationKeySet{Keys: keys}, nil
	case kid != "" && v.remote != nil:
		return nil, errUnknownKID
	}
	return nil, errors.New("no key for this token")
}

func (v *verifier) remoteSet() *keySet {
	if v.remote == nil {
		return nil
	}
	return v.remote.keys.Load()
}

// fits reports whether key may verify alg.
func fits(key any, alg string) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return alg == "RS256"
	case *ecdsa.PublicKey:
		return alg == "ES256" && k.Curve == elliptic.P256()
	}
	return false
}

// parsePublicKey reads a PEM public key: PKIX, PKCS#1 RSA or a certificate.
func parsePublicKey(raw []byte) (any, error) {
	b, _ := pem.Decode(raw)
	if b == nil {
		return nil, errors.New("no PEM block")
	}
	var k any
	var err error
	switch b.Type {
	case "PUBLIC KEY":
		k, err = x509.ParsePKIXPublicKey(b.Bytes)
	case "RSA PUBLIC KEY":
		k, err = x509.ParsePKCS1PublicKey(b.Bytes)
	case "CERTIFICATE":
		var c *x509.Certificate
		if c, err = x509.ParseCertificate(b.Bytes); err == nil {
			k = c.PublicKey
		}
	default:
		return nil, fmt.Errorf("PEM block %q is not a public key or certificate", b.Type)
	}
	if err != nil {
		return nil, err
	}
	if fits(k, "RS256") || fits(k, "ES256") {
		return k, nil
	}
	return nil, fmt.Errorf("key type %T is neither RSA nor ECDSA P-256", k)
}

func claimString(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case float64: // numeric subject ids
		if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
			return strconv.FormatInt(int64(v), 10), true
		}
	}
	return "", false
}

// claimTime reads unix seconds (a number or a decimal string) or an RFC 3339
// string; zero when absent or unreadable.
func claimTime(v any) time.Time {
	var sec float64
	switch v := v.(type) {
	case float64:
		sec = v
	case string:
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			return t
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return time.Time{}
		}
		sec = f
	default:
		return time.Time{}
	}
	if math.IsNaN(sec) || sec <= 0 || sec > 1<<40 {
		return time.Time{}
	}
	return time.Unix(int64(sec), 0)
}

// claimScopes reads a space-separated string or an array of strings.
func claimScopes(v any) []string {
	var out []string
	switch v := v.(type) {
	case string:
		for f := range strings.FieldsSeq(v) {
			if len(out) == maxScopes {
				break
			}
			out = append(out, f)
		}
	case []any:
		for _, x := range v {
			if s, ok := x.(string); ok && s != "" && len(out) < maxScopes {
				out = append(out, s)
			}
		}
	}
	return out
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
