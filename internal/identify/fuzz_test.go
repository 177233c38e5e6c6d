package identify

import (
	"net/netip"
	"strings"
	"testing"
)

// FuzzForwarded checks that reading X-Forwarded-For and Forwarded never
// panics and answers either the peer or an address written in the headers.
// Each input is split on '\n' into header lines.
func FuzzForwarded(f *testing.F) {
	f.Add("198.51.100.7, 10.0.0.2", "")
	f.Add("", `for="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.3`)
	f.Add("1.2.3.4\n::ffff:5.6.7.8", "for=_hidden, for=unknown")
	f.Add("[::1]:80,,", `for="a,b;c\"d`)
	trusted := prefixes(f, "10.0.0.0/8", "2001:db8::/32")
	peer := netip.MustParseAddr("10.0.0.1")
	outsider := netip.MustParseAddr("198.51.100.1")
	f.Fuzz(func(t *testing.T, xff, fwd string) {
		var h testHeader
		for _, l := range strings.Split(xff, "\n") {
			h = append(h, "X-Forwarded-For", l)
		}
		if fwd != "" {
			for _, l := range strings.Split(fwd, "\n") {
				h = append(h, "Forwarded", l)
			}
		}
		got := ClientIP(peer, h, trusted)
		if got != peer && !mentioned(got, xff+"\n"+fwd) {
			t.Fatalf("ClientIP = %v: neither the peer nor an address in the headers", got)
		}
		if got.Zone() != "" || got.Is4In6() {
			t.Fatalf("ClientIP = %v: zoned or mapped", got)
		}
		if again := ClientIP(peer, h, trusted); again != got {
			t.Fatalf("ClientIP not deterministic: %v then %v", got, again)
		}
		if got := ClientIP(outsider, h, trusted); got != outsider {
			t.Fatalf("untrusted peer: ClientIP = %v, want the peer", got)
		}
	})
}

// mentioned reports whether a appears in s, found by an extractor that
// shares no code with the parser: split on every delimiter the two headers
// use and parse each piece as an address or address:port.
func mentioned(a netip.Addr, s string) bool {
	pieces := strings.FieldsFunc(s, func(r rune) bool {
		return strings.ContainsRune(",;=\"[] \t\n", r)
	})
	for _, p := range pieces {
		if x, err := netip.ParseAddr(p); err == nil && x.Unmap() == a {
			return true
		}
		if x, err := netip.ParseAddrPort(p); err == nil && x.Addr().Unmap() == a {
			return true
		}
		if h, _, ok := strings.Cut(p, ":"); ok {
			if x, err := netip.ParseAddr(h); err == nil && x.Unmap() == a {
				return true
			}
		}
	}
	return false
}
