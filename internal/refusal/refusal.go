package refusal

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// Refusal is an answer warden sends instead of the upstream's.
type Refusal struct {
	Status     int
	Error      string        // a fixed message ("rate limited", "banned")
	Rule       string        // the rule's name; "" for the gateway's own errors
	Facet      string        // the facet the rule counted by; "" when none
	RetryAfter time.Duration // Retry-After when positive
	Policy     string        // RateLimit-Policy, with State
	State      string        // RateLimit
	Challenge  string        // WWW-Authenticate, for a credential refused
}

// AppendBody appends the refusal's JSON body, newline-terminated.
func (r *Refusal) AppendBody(b []byte, requestID string) []byte {
	b = append(b, `{"error":`...)
	b = AppendString(b, r.Error)
	b = append(b, `,"rule":`...)
	b = AppendString(b, r.Rule)
	b = append(b, `,"facet":`...)
	b = AppendString(b, r.Facet)
	b = append(b, `,"request_id":`...)
	b = AppendString(b, requestID)
	return append(b, '}', '\n')
}

// Body is AppendBody into new memory.
func (r *Refusal) Body(requestID string) []byte {
	return r.AppendBody(make([]byte, 0, 80+len(r.Error)+len(r.Rule)+len(r.Facet)+len(requestID)), requestID)
}

// RetryAfterSeconds is Retry-After's value: whole seconds rounded up, never
// 0 for a positive wait.
func (r *Refusal) RetryAfterSeconds() string {
	s := int64((r.RetryAfter + time.Second - 1) / time.Second)
	return strconv.FormatInt(max(s, 1), 10)
}

// AppendString appends s as a JSON string: quotes and backslashes escaped,
// control characters (and DEL) as \u00XX, invalid UTF-8 as U+FFFD, the
// rest as it is (JSON allows any other character unescaped).
func AppendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, "\uFFFD"...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}

// The rules of the answers warden makes in place of the upstream's on its
// own account, not a configured rule's: the ledger records them as an
// Access's rule and explain, replay and detect read them back by name, so
// no rate limit or budget may take one (Own). Every refusal names a rule;
// an Access without one carries the upstream's answer, whatever its status.
const (
	RuleIdentity = "identity" // a credential warden cannot verify, or two of one kind
	RuleBan      = "ban"
	RuleStore    = "store" // the state store failed in closed mode
	// RuleUpstream is no refusal: the upstream gave no answer warden could
	// send (down, slow, too large), and warden answered 502 or 504.
	RuleUpstream  = "upstream"
	RuleRewrite   = "rewrite"    // a masked answer that could not be encoded
	RuleOtherType = "other_type" // an answer inspection cannot read, by policy
	RuleMaxBody   = "max_body"
	RuleMalformed = "malformed"
	// RuleRequest: warden would not serve the request as sent, at its edge,
	// before any configured rule was asked (CONNECT, an ambiguous path, an
	// HTTP version other than 1, a header or body over a server bound, a
	// request not read in time, requests pipelined too far ahead of their
	// answers). The refusal's facet names the reason
	// (RequestConnect or warden_bad_requests_total's reason), not an
	// identity facet: no limit or budget counted such a request.
	RuleRequest = "request"
	// RuleInternal: warden failed serving the request (a panic it
	// recovered from) and answered 500.
	RuleInternal = "internal"
)

// The facets of rule store: the stage whose state-store call failed.
// StoreAdmit: admission (bans, rate limits), so no rate limit counted
// the request (ledger.LimitsSaw); StoreRation: rationing, after every
// limit admitted it. A ledger written before the stage was recorded has
// rule store with no facet: either.
const (
	StoreAdmit  = "admit"
	StoreRation = "ration"
)

// InternalAnswering is the facet of rule internal for a panic that came
// after the request's Access was handed to the recorders with the status
// decided, while the answer was being made: the recorders get a second
// Access of the same request id, the 500 actually sent, which supersedes
// the first (the ledger's Find takes an id's newest) and which no rate
// limit counts again (ledger.UnlimitedFacets).
const InternalAnswering = "answering"

// RequestConnect is the reason (facet) of rule request for a CONNECT:
// warden is no tunnel. The other reasons are warden_bad_requests_total's.
const RequestConnect = "connect"

// Own reports whether name is one of warden's own rules, which no
// configured rule may be named.
func Own(name string) bool {
	switch name {
	case RuleIdentity, RuleBan, RuleStore, RuleUpstream, RuleRewrite, RuleOtherType, RuleMaxBody, RuleMalformed, RuleRequest, RuleInternal:
		return true
	}
	return false
}
