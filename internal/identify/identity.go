package identify

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Facet names one dimension of who is asking. Every limit, budget and ban
// names the facet it counts by.
type Facet uint8

const (
	FacetApp Facet = iota + 1
	FacetAccount
	FacetIP
	FacetNet
	FacetFingerprint
)

// Facets lists every facet in a stable order.
var Facets = [...]Facet{FacetApp, FacetAccount, FacetIP, FacetNet, FacetFingerprint}

func (f Facet) String() string {
	switch f {
	case FacetApp:
		return "app"
	case FacetAccount:
		return "account"
	case FacetIP:
		return "ip"
	case FacetNet:
		return "net"
	case FacetFingerprint:
		return "fingerprint"
	}
	return "unknown"
}

// ParseFacet is the inverse of Facet.String.
func ParseFacet(s string) (Facet, bool) {
	for _, f := range Facets {
		if f.String() == s {
			return f, true
		}
	}
	return 0, false
}

// ParseValue is s in the form Identify gives facet f's value, so that a
// value asked in another spelling finds what the ledger recorded: an ip
// unmapped and without a zone, a net masked to its prefix, a fingerprint
// in lower case. The error says why s could never be the facet's value:
// an ip or net that does not parse, a fingerprint that is not 16 hex
// digits, an app or account longer than Identify ever takes.
func ParseValue(f Facet, s string) (string, error) {
	switch f {
	case FacetIP:
		a, err := netip.ParseAddr(s)
		if err != nil {
			return "", fmt.Errorf("%q is not an IP address", s)
		}
		return a.Unmap().WithZone("").String(), nil
	case FacetNet:
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return "", fmt.Errorf("%q is not a network (ADDRESS/BITS, as 192.0.2.0/24)", s)
		}
		return p.Masked().String(), nil
	case FacetFingerprint:
		l := strings.ToLower(s)
		if len(l) != 16 || strings.Trim(l, "0123456789abcdef") != "" {
			return "", fmt.Errorf("%q is not a fingerprint: the facet is 16 hex digits (as logs and the ledger show it)", s)
		}
		return l, nil
	case FacetApp:
		if len(s) > maxAppLen {
			return "", fmt.Errorf("an app of %d bytes is never one: an app key or a registered app's name is at most %d", len(s), maxAppLen)
		}
	case FacetAccount:
		if len(s) > maxSubjectLen {
			return "", fmt.Errorf("an account of %d bytes is never one: a token's subject is at most %d", len(s), maxSubjectLen)
		}
	}
	return s, nil
}

// Credential is a set of the credential headers identify reads.
type Credential uint8

const (
	CredentialAccount Credential = 1 << iota // identity.account.header
	CredentialApp                            // identity.app.header
)

// Identity is what warden knows of the caller of one request. Empty strings
// mean the facet is absent (no app key, no valid token).
type Identity struct {
	App            string
	Account        string
	AccountCreated time.Time // zero when the token carries no creation claim
	Scopes         []string  // scopes granted by the token or the app
	IP             netip.Addr
	Net            netip.Prefix
	Fingerprint    string
	// Ambiguous names a header that says who is asking (the account's or
	// the app key's) and came more than once: warden reads the first, an
	// upstream may read another, so the request would be counted and
	// recorded against one identity while served as another. The gateway
	// refuses such a request.
	Ambiguous string
	// Unverified holds the credentials the request carried that warden
	// could not verify: an account token that is malformed, badly signed,
	// expired, not yet valid, over a size bound or off subject_pattern,
	// or, with registered app keys, a key that is not one. Such a
	// credential never reaches the upstream as it came (the gateway
	// refuses the request or strips it, by policy): an upstream's parser
	// differs from warden's somewhere, and what it accepts would be served
	// as an identity warden never counted. Why says what was wrong with the
	// account's token (a fixed word, never the token).
	Unverified    Credential
	UnverifiedWhy string
	// AccountAgeUnknown: the verified token has no readable creation
	// claim and identity.account.missing_created is youngest, so the
	// account counts as new (AccountAge 0).
	AccountAgeUnknown bool

	// ipKey and netKey are IP and Net as strings, made once by Identify:
	// admission and every budget key by them, and formatting each time
	// cost allocations per request. Empty when not made (an Identity built
	// by hand): Value then formats.
	ipKey, netKey string
}

// setKeys makes ipKey and netKey in one allocation.
func (id *Identity) setKeys(buf []byte) []byte {
	id.ipKey, id.netKey = "", ""
	buf = buf[:0]
	if id.IP.IsValid() {
		buf = id.IP.AppendTo(buf)
	}
	n := len(buf)
	if id.Net.IsValid() {
		buf = id.Net.AppendTo(buf)
	}
	if len(buf) == 0 {
		return buf
	}
	s := string(buf)
	id.ipKey, id.netKey = s[:n], s[n:]
	return buf
}

// Value returns the facet's value as a string key, "" when absent.
func (id *Identity) Value(f Facet) string {
	switch f {
	case FacetApp:
		return id.App
	case FacetAccount:
		return id.Account
	case FacetIP:
		if id.ipKey != "" {
			return id.ipKey
		}
		if id.IP.IsValid() {
			return id.IP.String()
		}
	case FacetNet:
		if id.netKey != "" {
			return id.netKey
		}
		if id.Net.IsValid() {
			return id.Net.String()
		}
	case FacetFingerprint:
		return id.Fingerprint
	}
	return ""
}

// AccountAge is the age of the account at now, and false when unknown
// (no account, or a token without a creation claim read as oldest). An
// account whose age is unknown and read as youngest is 0 old.
func (id *Identity) AccountAge(now time.Time) (time.Duration, bool) {
	if id.Account == "" {
		return 0, false
	}
	if id.AccountCreated.IsZero() {
		return 0, id.AccountAgeUnknown
	}
	return now.Sub(id.AccountCreated), true
}

// HasScope reports whether the identity holds scope s.
func (id *Identity) HasScope(s string) bool {
	for _, x := range id.Scopes {
		if x == s {
			return true
		}
	}
	return false
}
