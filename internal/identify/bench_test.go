package identify

import (
	"net/netip"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// Results: testdata/bench-identify.txt, made with
//
//	go test ./internal/identify -run '^$' -bench . -benchmem -count 5

func benchRequest(tok string) *Input {
	return &Input{
		Peer: netip.MustParseAddr("10.0.0.1"),
		Header: testHeader{
			"Host", "api.example",
			"User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
			"Accept", "application/json",
			"Accept-Encoding", "gzip, br",
			"Authorization", "Bearer " + tok,
			"X-App-Key", "app-3f9a2c",
			"X-Forwarded-For", "203.0.113.50, 198.51.100.7, 10.0.0.9",
			"Connection", "keep-alive",
		},
		TLSFingerprint: "0123456789abcdef",
	}
}

func BenchmarkIdentify(b *testing.B) {
	k := getKeys(b)
	rsaPEM := writePEM(b, &k.rsa.PublicKey)
	ecPEM := writePEM(b, &k.ec.PublicKey)
	hsTok := sign(b, jwt.SigningMethodHS256, []byte(testSecret), "", claims())
	cases := []struct {
		name    string
		cfg     Config
		tok     string
		noCache bool
	}{
		{"anonymous", Config{TrustedProxies: []string{"10.0.0.0/8"}}, "", false},
		{"hs256-cached", Config{TrustedProxies: []string{"10.0.0.0/8"}, Account: AccountConfig{SecretEnv: "TEST_SECRET"}}, hsTok, false},
		{"hs256-uncached", Config{TrustedProxies: []string{"10.0.0.0/8"}, Account: AccountConfig{SecretEnv: "TEST_SECRET"}}, hsTok, true},
		{"rs256-cached", Config{TrustedProxies: []string{"10.0.0.0/8"}, Account: AccountConfig{PublicKeyFile: rsaPEM}}, sign(b, jwt.SigningMethodRS256, k.rsa, "", claims()), false},
		{"rs256-uncached", Config{TrustedProxies: []string{"10.0.0.0/8"}, Account: AccountConfig{PublicKeyFile: rsaPEM}}, sign(b, jwt.SigningMethodRS256, k.rsa, "", claims()), true},
		{"es256-uncached", Config{TrustedProxies: []string{"10.0.0.0/8"}, Account: AccountConfig{PublicKeyFile: ecPEM}}, sign(b, jwt.SigningMethodES256, k.ec, "", claims()), true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			x := newTestIdentifier(b, c.cfg, Options{})
			if c.noCache {
				x.acct.cache.off, x.acct.refused.off = true, true
			}
			in := benchRequest(c.tok)
			var id Identity
			b.ReportAllocs()
			for b.Loop() {
				x.Identify(testNow, in, &id)
			}
			if c.tok != "" && id.Account != "user-42" || id.IP != netip.MustParseAddr("198.51.100.7") {
				b.Fatalf("wrong identity: %+v", id)
			}
		})
	}
	b.Run("hs256-cached-parallel", func(b *testing.B) {
		x := newTestIdentifier(b, Config{TrustedProxies: []string{"10.0.0.0/8"}, Account: AccountConfig{SecretEnv: "TEST_SECRET"}}, Options{})
		in := benchRequest(hsTok)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var id Identity
			for pb.Next() {
				x.Identify(testNow, in, &id)
			}
		})
	})
}

func BenchmarkClientIP(b *testing.B) {
	x := newTestIdentifier(b, Config{TrustedProxies: []string{"10.0.0.0/8", "2001:db8:ffff::/48"}}, Options{})
	var h, fwd Header // converted once: a slice in an interface allocates
	h = testHeader{"X-Forwarded-For", "203.0.113.50, 198.51.100.7", "X-Forwarded-For", "10.0.0.9, 10.0.0.8"}
	fwd = testHeader{"Forwarded", `for=203.0.113.50, for="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.9`}
	peer := netip.MustParseAddr("10.0.0.1")
	b.Run("xff", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			x.ClientIP(peer, h)
		}
	})
	b.Run("forwarded", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			x.ClientIP(peer, fwd)
		}
	})
}
