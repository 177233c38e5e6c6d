package gateway

import (
	"net/netip"
	"strings"

	"github.com/warden-gw/warden/internal/identify"
)

// hopHeaders are meaningful only for one connection (RFC 9110 7.6.1) and are
// never forwarded; nor is any header that Connection names.
var hopHeaders = [...]string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// isHopName reports whether name (any case) is one of hopHeaders.
func isHopName(name string) bool { return hasName(hopHeaders[:], name) }

// hasName reports whether name (any case) is one of names; lengths are
// compared first, since most header names differ in length.
func hasName(names []string, name string) bool {
	for _, h := range names {
		if len(h) == len(name) && strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}

// forwardHeaders are the request headers setForwarded sets.
var forwardHeaders = [...]string{"X-Forwarded-For", "Forwarded", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Real-Ip", "X-Request-Id"}

// isForwardName reports whether name (any case) is one of forwardHeaders.
func isForwardName(name string) bool { return hasName(forwardHeaders[:], name) }

// connectionTokens calls fn with each header name listed in a Connection
// field value.
func connectionTokens(v string, fn func(name string)) {
	for v != "" {
		var tok string
		tok, v, _ = strings.Cut(v, ",")
		if tok = strings.TrimSpace(tok); tok != "" {
			fn(tok)
		}
	}
}

// isUpgrade reports whether a Connection value asks to upgrade.
func isUpgrade(connection string) bool {
	up := false
	connectionTokens(connection, func(t string) {
		if strings.EqualFold(t, "upgrade") {
			up = true
		}
	})
	return up
}

// forwardHeader is what setForwarded and the request shape (shape.go) need
// of a front's outgoing request.
type forwardHeader interface {
	// prior is the incoming request's values of name, joined with ", "
	// ("" when absent).
	prior(name string) string
	// set replaces every value of name with value.
	set(name, value string)
	// del removes every value of name.
	del(name string)
}

// setForwarded sets the forwarding headers of a request going upstream:
// X-Forwarded-For and Forwarded extend a trusted peer's values and replace
// anyone else's (they could be forged); X-Forwarded-Proto and -Host keep a
// trusted peer's value; X-Real-IP (which many upstreams read as the
// client's address) is the client's as identify found it, a trusted
// peer's own value kept; X-Request-Id is warden's. Every name set is one
// of forwardHeaders.
func (p *Pipeline) setForwarded(h forwardHeader, peer netip.Addr, ip, client, proto, host, id string) {
	trusted := p.trustedPeer(peer)
	xff, fwd := ip, "for="+forwardedNode(ip)+";proto="+proto
	if trusted {
		if prior := h.prior("X-Forwarded-For"); prior != "" {
			xff = prior + ", " + xff
		}
		if prior := h.prior("Forwarded"); prior != "" {
			fwd = prior + ", " + fwd
		}
		if prior := h.prior("X-Forwarded-Proto"); prior != "" {
			proto = prior
		}
		if prior := h.prior("X-Forwarded-Host"); prior != "" {
			host = prior
		}
		if prior := h.prior("X-Real-Ip"); prior != "" {
			client = prior
		}
	}
	h.set("X-Forwarded-For", xff)
	h.set("Forwarded", fwd)
	h.set("X-Forwarded-Proto", proto)
	h.set("X-Forwarded-Host", host)
	h.set("X-Real-Ip", client)
	h.set("X-Request-Id", id)
}

// clientString is the client's address as identify found it (behind a
// trusted proxy, from its forwarding headers), else the TCP peer's, ip.
func clientString(id *identify.Identity, ip string) string {
	if s := id.Value(identify.FacetIP); s != "" {
		return s
	}
	return ip
}

// peerString is the TCP peer as text (for the forwarding headers), reusing
// the string Identify made when the peer is the client itself.
func peerString(peer netip.Addr, id *identify.Identity) string {
	if id.IP == peer {
		if s := id.Value(identify.FacetIP); s != "" {
			return s
		}
	}
	return peer.String()
}

// forwardedNode renders one RFC 7239 node for an address: IPv6 quoted in
// brackets.
func forwardedNode(ip string) string {
	if strings.Contains(ip, ":") {
		return `"[` + ip + `]"`
	}
	return ip
}
