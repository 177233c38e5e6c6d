package identify

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestIdentifyFacets(t *testing.T) {
	x := newTestIdentifier(t, Config{TrustedProxies: []string{"10.0.0.0/8"}}, Options{})
	wide := newTestIdentifier(t, Config{Net: NetConfig{IPv4Prefix: 16, IPv6Prefix: 32}, App: AppConfig{Header: "X-Api"}}, Options{})
	long := make([]byte, maxAppLen+1)
	for i := range long {
		long[i] = 'k'
	}
	cases := []struct {
		name    string
		x       *Identifier
		peer    string
		h       testHeader
		app     string
		ip, net string
	}{
		{"v4 peer", x, "198.51.100.7", testHeader{"X-App-Key", "app-1"}, "app-1", "198.51.100.7", "198.51.100.0/24"},
		{"v6 peer", x, "2001:db8:1:2:3::4", nil, "", "2001:db8:1:2:3::4", "2001:db8:1::/48"},
		{"mapped peer unmapped", x, "::ffff:198.51.100.7", nil, "", "198.51.100.7", "198.51.100.0/24"},
		{"forwarded via trusted proxy", x, "10.0.0.1", testHeader{"X-Forwarded-For", "203.0.113.77"}, "", "203.0.113.77", "203.0.113.0/24"},
		{"forwarded ignored from untrusted", x, "198.51.100.7", testHeader{"X-Forwarded-For", "203.0.113.77"}, "", "198.51.100.7", "198.51.100.0/24"},
		{"custom prefixes v4", wide, "198.51.100.7", testHeader{"X-Api", "a"}, "a", "198.51.100.7", "198.51.0.0/16"},
		{"custom prefixes v6", wide, "2001:db8:1:2::4", nil, "", "2001:db8:1:2::4", "2001:db8::/32"},
		{"default app header ignored when configured otherwise", wide, "198.51.100.7", testHeader{"X-App-Key", "a"}, "", "198.51.100.7", "198.51.0.0/16"},
		{"over-long app key is no app", x, "198.51.100.7", testHeader{"X-App-Key", string(long)}, "", "198.51.100.7", "198.51.100.0/24"},
		{"no peer", x, "", nil, "", "", ""},
	}
	fp := regexp.MustCompile(`^[0-9a-f]{16}$`)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := Input{}
			if c.peer != "" {
				in.Peer = netip.MustParseAddr(c.peer)
			}
			if c.h != nil {
				in.Header = c.h
			}
			var id Identity
			id.Account = "stale" // Identify must reset out
			c.x.Identify(testNow, &in, &id)
			if id.App != c.app || id.Value(FacetIP) != c.ip || id.Value(FacetNet) != c.net || id.Account != "" {
				t.Errorf("got app %q ip %q net %q account %q; want app %q ip %q net %q",
					id.App, id.Value(FacetIP), id.Value(FacetNet), id.Account, c.app, c.ip, c.net)
			}
			if !fp.MatchString(id.Fingerprint) {
				t.Errorf("fingerprint %q is not 16 hex digits", id.Fingerprint)
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	x := newTestIdentifier(t, Config{}, Options{})
	noUA := newTestIdentifier(t, Config{Fingerprint: FingerprintConfig{Parts: []string{"tls", "header_order"}}}, Options{})
	fpOf := func(x *Identifier, tlsFP string, h testHeader) string {
		var id Identity
		x.Identify(testNow, &Input{Peer: netip.MustParseAddr("198.51.100.7"), Header: h, TLSFingerprint: tlsFP}, &id)
		return id.Fingerprint
	}
	base := testHeader{"Host", "api.example", "User-Agent", "curl/8.0", "Accept", "*/*"}
	ref := fpOf(x, "", base)

	// The documented construction, computed independently.
	if want := sha16("|host,user-agent,accept|curl/8.0"); ref != want {
		t.Fatalf("fingerprint = %s, want %s (sha256 of the documented string)", ref, want)
	}
	if got := fpOf(x, "", testHeader{"HOST", "other.example", "user-agent", "curl/8.0", "ACCEPT", "text/html"}); got != ref {
		t.Errorf("values and name case changed the fingerprint: %s vs %s", got, ref)
	}
	differs := []struct {
		name string
		got  string
	}{
		{"header order", fpOf(x, "", testHeader{"User-Agent", "curl/8.0", "Host", "api.example", "Accept", "*/*"})},
		{"extra header", fpOf(x, "", append(append(testHeader{}, base...), "Cookie", "a=b"))},
		{"user agent", fpOf(x, "", testHeader{"Host", "api.example", "User-Agent", "curl/8.1", "Accept", "*/*"})},
		{"tls traits", fpOf(x, "0123456789abcdef", base)},
	}
	for _, d := range differs {
		if d.got == ref {
			t.Errorf("%s: fingerprint unchanged", d.name)
		}
	}
	if a, b := fpOf(noUA, "", base), fpOf(noUA, "", testHeader{"Host", "api.example", "User-Agent", "wget", "Accept", "*/*"}); a != b {
		t.Errorf("user_agent part off, yet the user agent changed the fingerprint")
	}
	if got, want := fpOf(noUA, "t", base), sha16("t|host,user-agent,accept|"); got != want {
		t.Errorf("without user_agent: %s, want %s", got, want)
	}
}

func sha16(s string) string {
	var f fpHash
	f.init()
	f.h.Write([]byte(s))
	var sum [32]byte
	return hexString(f.h.Sum(sum[:0])[:8])
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func TestHelloFingerprint(t *testing.T) {
	base := &tls.ClientHelloInfo{
		SupportedVersions: []uint16{0x0a0a, tls.VersionTLS13, tls.VersionTLS12},
		CipherSuites:      []uint16{0x1a1a, tls.TLS_AES_128_GCM_SHA256, tls.TLS_CHACHA20_POLY1305_SHA256},
		Extensions:        []uint16{0x2a2a, 0, 10, 11, 13, 16, 43, 51},
		SupportedCurves:   []tls.CurveID{0x3a3a, tls.X25519, tls.CurveP256},
		SupportedPoints:   []uint8{0},
		SignatureSchemes:  []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256, tls.PSSWithSHA256},
		SupportedProtos:   []string{"h2", "http/1.1"},
	}
	ref := HelloFingerprint(base)
	if want := sha16("v=772-771;c=4865-4867;e=0-10-11-13-16-43-51;g=29-23;p=0;s=1027-2052;a=h2,http/1.1"); ref != want {
		t.Fatalf("HelloFingerprint = %s, want %s (the documented string)", ref, want)
	}
	same := *base
	same.Extensions = []uint16{51, 43, 0xfafa, 16, 13, 11, 10, 0} // reordered, other GREASE
	same.CipherSuites = []uint16{0xdada, tls.TLS_AES_128_GCM_SHA256, tls.TLS_CHACHA20_POLY1305_SHA256}
	if got := HelloFingerprint(&same); got != ref {
		t.Errorf("extension order or GREASE changed the fingerprint")
	}
	other := *base
	other.CipherSuites = []uint16{tls.TLS_CHACHA20_POLY1305_SHA256, tls.TLS_AES_128_GCM_SHA256}
	if HelloFingerprint(&other) == ref {
		t.Errorf("cipher order did not change the fingerprint")
	}
	other = *base
	other.SupportedProtos = []string{"http/1.1"}
	if HelloFingerprint(&other) == ref {
		t.Errorf("ALPN did not change the fingerprint")
	}
	if HelloFingerprint(nil) != "" {
		t.Errorf("nil hello has a fingerprint")
	}
	for _, v := range []uint16{0x0a0a, 0x1a1a, 0xfafa} {
		if !isGREASE(v) {
			t.Errorf("%#x not GREASE", v)
		}
	}
	for _, v := range []uint16{0x0a1a, 0x0a0b, 0x1301, 0} {
		if isGREASE(v) {
			t.Errorf("%#x taken for GREASE", v)
		}
	}
}

// TestHelloFingerprintHandshake runs real TLS handshakes on loopback: the
// same client config gives the same fingerprint, a different one another.
func TestHelloFingerprintHandshake(t *testing.T) {
	cert := selfSigned(t)
	got := make(chan string, 1)
	srvCfg := &tls.Config{
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			got <- HelloFingerprint(h)
			return nil, nil
		},
		Certificates: []tls.Certificate{cert},
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srvCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				c.(*tls.Conn).Handshake()
				c.Close()
			}()
		}
	}()
	hello := func(cfg *tls.Config) string {
		cfg.InsecureSkipVerify = true
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		return <-got
	}
	a := hello(&tls.Config{NextProtos: []string{"h2", "http/1.1"}})
	b := hello(&tls.Config{NextProtos: []string{"h2", "http/1.1"}})
	c := hello(&tls.Config{NextProtos: []string{"http/1.1"}, MaxVersion: tls.VersionTLS12})
	if a == "" || a != b {
		t.Errorf("same client, fingerprints %q and %q", a, b)
	}
	if a == c {
		t.Errorf("different clients share fingerprint %q", a)
	}
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestFingerprintLongHeaders: names and user agents longer than the hash
// buffer hash the same as the documented string.
func TestFingerprintLongHeaders(t *testing.T) {
	x := newTestIdentifier(t, Config{}, Options{})
	long := strings.Repeat("X-Very-Long-Header-Name-", 40)
	ua := strings.Repeat("agent/1.0 ", 200)
	h := testHeader{"Host", "a", long, "v", "User-Agent", ua}
	var id Identity
	x.Identify(testNow, &Input{Peer: netip.MustParseAddr("198.51.100.7"), Header: h, TLSFingerprint: "tls"}, &id)
	if want := sha16("tls|host," + strings.ToLower(long) + ",user-agent|" + ua); id.Fingerprint != want {
		t.Fatalf("fingerprint = %s, want %s", id.Fingerprint, want)
	}
}

// TestIdentifyConcurrent runs Identify from several goroutines over a cache
// smaller than the token set (run with -race).
func TestIdentifyConcurrent(t *testing.T) {
	x := newTestIdentifier(t, Config{TrustedProxies: []string{"10.0.0.0/8"}, Account: AccountConfig{SecretEnv: "TEST_SECRET", CacheSize: 32}}, Options{})
	var toks []string
	for i := range 64 {
		toks = append(toks, sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims("sub", fmt.Sprintf("u%d", i))))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var id Identity
			for i := range 2000 {
				n := (i*7 + g) % len(toks)
				in := &Input{Peer: netip.MustParseAddr("10.0.0.1"), Header: testHeader{
					"Authorization", "Bearer " + toks[n], "X-Forwarded-For", fmt.Sprintf("198.51.100.%d", n), "X-App-Key", fmt.Sprintf("app%d", n%3),
				}}
				x.Identify(testNow, in, &id)
				if id.Account != fmt.Sprintf("u%d", n) || id.IP.String() != fmt.Sprintf("198.51.100.%d", n) || id.App != fmt.Sprintf("app%d", n%3) {
					errs <- fmt.Errorf("request %d: got %q %v %q", n, id.Account, id.IP, id.App)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestParseValue: a value in another spelling is the one Identify gives
// (an Identify'd fingerprint is its own form); one Identify never gives is
// an error.
func TestParseValue(t *testing.T) {
	var id Identity
	newTestIdentifier(t, Config{}, Options{}).Identify(testNow, &Input{Peer: netip.MustParseAddr("198.51.100.7"), Header: testHeader{"User-Agent", "curl/8.0"}}, &id)
	for _, c := range []struct {
		name     string
		f        Facet
		in, want string // want "": an error
	}{
		{"ip mapped", FacetIP, "::ffff:192.0.2.7", "192.0.2.7"},
		{"ip upper case", FacetIP, "2001:DB8::1", "2001:db8::1"},
		{"ip with zone", FacetIP, "fe80::1%eth0", "fe80::1"},
		{"ip not one", FacetIP, "abc", ""},
		{"net unmasked", FacetNet, "192.0.2.7/24", "192.0.2.0/24"},
		{"net without bits", FacetNet, "192.0.2.0", ""},
		{"fingerprint as given", FacetFingerprint, id.Fingerprint, id.Fingerprint},
		{"fingerprint upper case", FacetFingerprint, strings.ToUpper(id.Fingerprint), id.Fingerprint},
		{"fingerprint short", FacetFingerprint, id.Fingerprint[1:], ""},
		{"fingerprint not hex", FacetFingerprint, "zz5994a7c6086629", ""},
		{"account as given", FacetAccount, "User-77", "User-77"},
		{"account too long", FacetAccount, strings.Repeat("a", maxSubjectLen+1), ""},
		{"app as given", FacetApp, "Partner-App", "Partner-App"},
		{"app too long", FacetApp, strings.Repeat("a", maxAppLen+1), ""},
	} {
		got, err := ParseValue(c.f, c.in)
		if c.want == "" && err == nil || c.want != "" && (err != nil || got != c.want) {
			t.Errorf("%s: ParseValue(%s, %q) = %q, %v; want %q", c.name, c.f, c.in, got, err, c.want)
		}
	}
}
