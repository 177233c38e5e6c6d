package identify

import (
	"net/netip"
	"testing"
)

func prefixes(t testing.TB, ss ...string) []netip.Prefix {
	t.Helper()
	var ps []netip.Prefix
	for _, s := range ss {
		p, err := parseTrusted(s)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

func TestClientIP(t *testing.T) {
	trusted := prefixes(t, "10.0.0.0/8", "2001:db8:ffff::/48", "192.0.2.1")
	cases := []struct {
		name string
		peer string
		h    testHeader
		want string
	}{
		{"untrusted peer, no header", "203.0.113.9", nil, "203.0.113.9"},
		{"untrusted peer ignores XFF", "203.0.113.9", testHeader{"X-Forwarded-For", "1.2.3.4"}, "203.0.113.9"},
		{"untrusted peer ignores Forwarded", "203.0.113.9", testHeader{"Forwarded", "for=1.2.3.4"}, "203.0.113.9"},
		{"trusted peer, no header", "10.1.1.1", nil, "10.1.1.1"},
		{"trusted peer, one hop", "10.1.1.1", testHeader{"X-Forwarded-For", "198.51.100.7"}, "198.51.100.7"},
		{"right-most untrusted wins", "10.1.1.1", testHeader{"X-Forwarded-For", "6.6.6.6, 198.51.100.7, 10.2.2.2"}, "198.51.100.7"},
		{"spoofed left entries ignored", "10.1.1.1", testHeader{"X-Forwarded-For", "1.1.1.1,2.2.2.2,198.51.100.7"}, "198.51.100.7"},
		{"several lines joined in order", "10.1.1.1", testHeader{"X-Forwarded-For", "6.6.6.6", "X-Forwarded-For", "198.51.100.7, 10.9.9.9"}, "198.51.100.7"},
		{"all trusted takes left-most", "10.1.1.1", testHeader{"X-Forwarded-For", "10.3.3.3, 192.0.2.1, 10.2.2.2"}, "10.3.3.3"},
		{"empty elements skipped", "10.1.1.1", testHeader{"X-Forwarded-For", " , 198.51.100.7,,10.2.2.2, "}, "198.51.100.7"},
		{"empty XFF line is no hop", "10.1.1.1", testHeader{"X-Forwarded-For", ""}, "10.1.1.1"},
		{"xff ipv4 with port", "10.1.1.1", testHeader{"X-Forwarded-For", "198.51.100.7:4711"}, "198.51.100.7"},
		{"xff bare ipv6", "10.1.1.1", testHeader{"X-Forwarded-For", "2001:db8::1"}, "2001:db8::1"},
		{"xff bracketed ipv6 with port", "10.1.1.1", testHeader{"X-Forwarded-For", "[2001:db8::1]:443"}, "2001:db8::1"},
		{"xff mapped ipv4 unmapped", "10.1.1.1", testHeader{"X-Forwarded-For", "::ffff:198.51.100.7"}, "198.51.100.7"},
		{"mapped trusted peer", "::ffff:10.1.1.1", testHeader{"X-Forwarded-For", "198.51.100.7"}, "198.51.100.7"},
		{"ipv6 trusted peer", "2001:db8:ffff::5", testHeader{"X-Forwarded-For", "2001:db8:1::9, 2001:db8:ffff::6"}, "2001:db8:1::9"},
		{"garbage right-most falls back to peer", "10.1.1.1", testHeader{"X-Forwarded-For", "198.51.100.7, banana"}, "10.1.1.1"},
		{"garbage stops walk at last trusted", "10.1.1.1", testHeader{"X-Forwarded-For", "198.51.100.7, banana, 10.2.2.2"}, "10.2.2.2"},
		{"garbage left of an untrusted hop is harmless", "10.1.1.1", testHeader{"X-Forwarded-For", "banana, 198.51.100.7"}, "198.51.100.7"},
		{"unknown stops walk", "10.1.1.1", testHeader{"X-Forwarded-For", "198.51.100.7, unknown"}, "10.1.1.1"},
		{"zone is not an address", "10.1.1.1", testHeader{"X-Forwarded-For", "fe80::1%eth0"}, "10.1.1.1"},
		{"bad port", "10.1.1.1", testHeader{"X-Forwarded-For", "198.51.100.7:99999"}, "10.1.1.1"},
		{"forwarded simple", "10.1.1.1", testHeader{"Forwarded", "for=198.51.100.7"}, "198.51.100.7"},
		{"forwarded case and params", "10.1.1.1", testHeader{"Forwarded", "proto=https;FOR=198.51.100.7;by=10.1.1.1"}, "198.51.100.7"},
		{"forwarded quoted ipv6 with port", "10.1.1.1", testHeader{"Forwarded", `for="[2001:db8:cafe::17]:4711"`}, "2001:db8:cafe::17"},
		{"forwarded quoted ipv4 with port", "10.1.1.1", testHeader{"Forwarded", `for="198.51.100.7:4711"`}, "198.51.100.7"},
		{"forwarded chain", "10.1.1.1", testHeader{"Forwarded", "for=6.6.6.6, for=198.51.100.7;proto=http, for=10.2.2.2"}, "198.51.100.7"},
		{"forwarded comma inside quotes", "10.1.1.1", testHeader{"Forwarded", `for=198.51.100.7;x="a,b", for=10.2.2.2`}, "198.51.100.7"},
		{"forwarded obfuscated stops", "10.1.1.1", testHeader{"Forwarded", "for=198.51.100.7, for=_hidden, for=10.2.2.2"}, "10.2.2.2"},
		{"forwarded unknown stops", "10.1.1.1", testHeader{"Forwarded", "for=unknown"}, "10.1.1.1"},
		{"forwarded obfuscated port is fine", "10.1.1.1", testHeader{"Forwarded", `for="198.51.100.7:_p1"`}, "198.51.100.7"},
		{"forwarded element without for stops", "10.1.1.1", testHeader{"Forwarded", "for=198.51.100.7, proto=https"}, "10.1.1.1"},
		{"forwarded two for in one element", "10.1.1.1", testHeader{"Forwarded", "for=198.51.100.7;for=6.6.6.6"}, "10.1.1.1"},
		{"forwarded unterminated quote", "10.1.1.1", testHeader{"Forwarded", `for="198.51.100.7`}, "10.1.1.1"},
		{"forwarded quoted-pair refused", "10.1.1.1", testHeader{"Forwarded", `for="198.51.100\.7"`}, "10.1.1.1"},
		{"forwarded preferred over XFF", "10.1.1.1", testHeader{"X-Forwarded-For", "6.6.6.6", "Forwarded", "for=198.51.100.7"}, "198.51.100.7"},
		{"empty Forwarded falls back to XFF", "10.1.1.1", testHeader{"Forwarded", " , ", "X-Forwarded-For", "198.51.100.7"}, "198.51.100.7"},
		{"forwarded several lines", "10.1.1.1", testHeader{"Forwarded", "for=6.6.6.6", "Forwarded", "for=198.51.100.7"}, "198.51.100.7"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var h Header
			if c.h != nil {
				h = c.h
			}
			got := ClientIP(netip.MustParseAddr(c.peer), h, trusted)
			if want := netip.MustParseAddr(c.want); got != want {
				t.Errorf("ClientIP = %v, want %v", got, want)
			}
		})
	}
}

func TestClientIPNoTrusted(t *testing.T) {
	got := ClientIP(netip.MustParseAddr("10.1.1.1"), testHeader{"X-Forwarded-For", "1.2.3.4"}, nil)
	if got != netip.MustParseAddr("10.1.1.1") {
		t.Fatalf("no trusted proxies: got %v, want the peer", got)
	}
}
