package identify

import (
	"net/netip"
	"strings"
)

// ClientIP returns the client address of a request that came from peer.
//
// When peer is not in trusted, it is the answer and the headers are not read.
// Otherwise the forwarding chain is read: the Forwarded header (RFC 7239,
// every line, the for= parameter of each element) when it has any element,
// else X-Forwarded-For (every line, comma lists). The chain's hops are walked
// from the right (the hop nearest warden) and the first address not in
// trusted is the client. When every hop is trusted the left-most one is.
//
// A hop that is not an address (garbage, "unknown", an obfuscated
// "_identifier", a zone, an element without for=) stops the walk: the answer
// is then the last address walked, which is a trusted proxy, or peer when the
// right-most hop is the bad one. Nothing written left of a hop that cannot be
// read is believed. Empty list elements are skipped (RFC 9110 §5.6.1).
// Addresses are unmapped (::ffff:a.b.c.d is a.b.c.d) before any comparison.
func ClientIP(peer netip.Addr, h Header, trusted []netip.Prefix) netip.Addr {
	var w fwdWalk
	w.init()
	return w.clientIP(peer, h, trusted)
}

// Walk states: what the right-to-left walk over the hops seen so far yields.
const (
	walkEmpty      = iota // no hop yet
	walkFound             // addr is the answer whatever comes to the right
	walkStopAtEnd         // the last hop is bad: the answer is whatever is right of it
	walkAllTrusted        // every hop trusted; addr is the left-most
)

// fwdWalk reads hops left to right (the order headers arrive in) while
// keeping what a right-to-left walk would answer, so no hop list is stored.
// It is pooled with its callbacks bound, so walking allocates nothing.
type fwdWalk struct {
	trusted []netip.Prefix
	state   uint8
	addr    netip.Addr
	hops    int
	fwdFn   func(string)
	xffFn   func(string)
}

func (w *fwdWalk) init() {
	w.fwdFn = w.forwardedLine
	w.xffFn = w.xffLine
}

func (w *fwdWalk) clientIP(peer netip.Addr, h Header, trusted []netip.Prefix) netip.Addr {
	peer = peer.Unmap().WithZone("")
	if h == nil || !inPrefixes(trusted, peer) {
		return peer
	}
	w.trusted = trusted
	w.state, w.addr, w.hops = walkEmpty, netip.Addr{}, 0
	h.Values("Forwarded", w.fwdFn)
	if w.hops == 0 {
		h.Values("X-Forwarded-For", w.xffFn)
	}
	w.trusted = nil
	switch w.state {
	case walkFound, walkAllTrusted:
		return w.addr
	}
	return peer
}

// push appends one hop on the right of those seen.
func (w *fwdWalk) push(a netip.Addr, ok bool) {
	w.hops++
	switch {
	case !ok:
		w.state = walkStopAtEnd
	case !inPrefixes(w.trusted, a):
		w.state, w.addr = walkFound, a
	default: // a trusted hop: the walk passes it and goes on to the left
		switch w.state {
		case walkStopAtEnd:
			w.state, w.addr = walkFound, a
		case walkEmpty:
			w.state, w.addr = walkAllTrusted, a
		}
	}
}

func (w *fwdWalk) xffLine(line string) {
	for line != "" {
		var el string
		if i := strings.IndexByte(line, ','); i >= 0 {
			el, line = line[:i], line[i+1:]
		} else {
			el, line = line, ""
		}
		el = trimOWS(el)
		if el == "" {
			continue
		}
		w.push(parseNode(el))
	}
}

func (w *fwdWalk) forwardedLine(line string) {
	for line != "" {
		el, rest, ok := cutQuoted(line, ',')
		line = rest
		if trimOWS(el) == "" && ok {
			continue
		}
		if !ok {
			w.push(netip.Addr{}, false)
			continue
		}
		w.push(forElement(el))
	}
}

// cutQuoted splits s at the first sep outside a quoted string (quoted-pairs
// honoured). ok is false for an unterminated quote, which then swallows the
// rest of s.
func cutQuoted(s string, sep byte) (before, rest string, ok bool) {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case c == sep && !quoted:
			return s[:i], s[i+1:], true
		}
	}
	return s, "", !quoted
}

// forElement returns the address of an element's single for= parameter.
func forElement(el string) (netip.Addr, bool) {
	var val string
	found := false
	for el != "" {
		var pair string
		pair, el, _ = cutQuoted(el, ';')
		pair = trimOWS(pair)
		if pair == "" {
			continue
		}
		name, v, ok := strings.Cut(pair, "=")
		if !ok {
			return netip.Addr{}, false
		}
		if !strings.EqualFold(trimOWS(name), "for") {
			continue
		}
		if found {
			return netip.Addr{}, false
		}
		found, val = true, trimOWS(v)
	}
	if !found {
		return netip.Addr{}, false
	}
	if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
		val = val[1 : len(val)-1]
		// An address never needs a quoted-pair; one here is not an address.
		if strings.IndexByte(val, '\\') >= 0 {
			return netip.Addr{}, false
		}
	} else if strings.IndexByte(val, '"') >= 0 {
		return netip.Addr{}, false
	}
	return parseNode(val)
}

// parseNode reads a node: an IPv4 address with an optional port, an IPv6
// address in brackets with an optional port, or a bare IPv6 address.
// "unknown", obfuscated identifiers and zones are not addresses.
func parseNode(s string) (netip.Addr, bool) {
	if s == "" || s[0] == '_' || strings.EqualFold(s, "unknown") {
		return netip.Addr{}, false
	}
	host := s
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return netip.Addr{}, false
		}
		host = s[1:end]
		if rest := s[end+1:]; rest != "" && (rest[0] != ':' || !validPort(rest[1:])) {
			return netip.Addr{}, false
		}
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return netip.Addr{}, false
		}
		return a.Unmap(), true
	}
	switch strings.Count(s, ":") {
	case 0:
	case 1:
		var port string
		host, port, _ = strings.Cut(s, ":")
		if !validPort(port) {
			return netip.Addr{}, false
		}
	default:
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Addr{}, false
		}
		return a.Unmap(), true
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Is4() {
		return netip.Addr{}, false
	}
	return a, true
}

// validPort accepts a decimal port or an RFC 7239 obfuscated port.
func validPort(p string) bool {
	if p == "" || len(p) > 32 {
		return false
	}
	if p[0] == '_' {
		for i := 1; i < len(p); i++ {
			c := p[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				return false
			}
		}
		return len(p) > 1
	}
	if len(p) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}

func inPrefixes(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
