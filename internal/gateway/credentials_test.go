package gateway

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/identify"
)

// recordConn is an upstream connection that keeps what was written to it
// (the request warden forwarded) and answers each request with an empty
// JSON object.
type recordConn struct {
	cannedConn // the net.Conn stubs; Read and Write are recordConn's
	got        *bytes.Buffer
	pending    []byte
}

const recordAnswer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"

func (c *recordConn) Write(p []byte) (int, error) {
	c.got.Write(p)
	c.pending = append(c.pending, recordAnswer...)
	return len(p), nil
}

func (c *recordConn) Read(p []byte) (int, error) {
	if len(c.pending) == 0 {
		return 0, errNoRequest
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

// recordFront is the fast front on yaml, its upstream connections writing
// into the returned buffer.
func recordFront(tb testing.TB, yaml string) (*fastFront, *bytes.Buffer) {
	tb.Helper()
	cfg, err := config.Parse("credentials.yaml", []byte(yaml))
	if err != nil {
		tb.Fatal(err)
	}
	f := benchFront(tb, cfg)
	got := new(bytes.Buffer)
	f.client.Dial = func(string) (net.Conn, error) { return &recordConn{got: got}, nil }
	return f, got
}

const credentialsYAML = `identity:
  account: {secret_env: LAB_JWT_SECRET, subject_pattern: '^[1-9][0-9]*$', unverified: %s}
`

// FuzzCredentials sends Authorization values made from byte-level variants
// of one valid token through the fast front (whose preparation the loop
// front shares), under both policies, and reads what the upstream received
// as net/http would. The invariant: either warden verified the credential
// as the token's account, or the upstream receives no credential.
func FuzzCredentials(f *testing.F) {
	f.Setenv("LAB_JWT_SECRET", "lab-secret")
	tok := strings.TrimPrefix(labBearer(f, "77"), "Bearer ")
	for _, v := range credentialVariants(tok) {
		f.Add(v, uint8(0))
	}
	f.Add("Bearer "+tok, uint8(1))
	f.Add("Bearer "+tok, uint8(2))
	refuse, refuseGot := recordFront(f, strings.Replace(credentialsYAML, "%s", "refuse", 1))
	strip, stripGot := recordFront(f, strings.Replace(credentialsYAML, "%s", "strip", 1))
	names := [...]string{"Authorization", "authorization", "AUTHORIZATION"}
	ctx := new(fasthttp.RequestCtx)
	f.Fuzz(func(t *testing.T, value string, name uint8) {
		raw := "GET /x HTTP/1.1\r\nHost: gw.test\r\n" + names[int(name)%len(names)] + ": " + value + "\r\n\r\n"
		for _, fr := range []struct {
			f   *fastFront
			got *bytes.Buffer
		}{{refuse, refuseGot}, {strip, stripGot}} {
			var req fasthttp.Request
			if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
				return // the front answers 400: nothing reaches the upstream
			}
			var id identify.Identity
			fr.f.g.pipeline().ident.Identify(time.Now(), &identify.Input{Peer: servePeer.AddrPort().Addr().Unmap(), Header: fastHeader{&req.Header}}, &id)
			fr.got.Reset()
			var out bytes.Buffer
			if err := serveOnce(fr.f, ctx, &req, bufio.NewWriter(&out)); err != nil {
				t.Fatal(err)
			}
			if fr.got.Len() == 0 {
				continue // refused: the upstream received nothing
			}
			up, err := http.ReadRequest(bufio.NewReader(fr.got))
			if err != nil {
				t.Fatalf("the upstream cannot read what warden forwarded: %v\n%q", err, fr.got.String())
			}
			if auth := up.Header.Values("Authorization"); len(auth) > 0 && id.Account != "77" {
				t.Fatalf("credential %q forwarded as %q, verified as %q (why %q)", value, auth, id.Account, id.UnverifiedWhy)
			}
		}
	})
}

// credentialVariants are byte-level variants of tok in an Authorization
// value: white space of every kind around and inside it, the scheme
// spelled otherwise, bytes flipped, cut and doubled.
func credentialVariants(tok string) []string {
	spaces := []string{" ", "\t", "\u00a0", "\u0085", "\u3000", "\u2028", "\ufeff", "\u200b", "\x0b", "\x0c", "\x00", "\r"}
	var out []string
	for _, s := range spaces {
		out = append(out,
			"Bearer "+tok+s, "Bearer "+s+tok, s+"Bearer "+tok, "Bearer"+s+tok,
			"Bearer "+tok[:20]+s+tok[20:])
	}
	out = append(out,
		"Bearer "+tok, "bearer "+tok, "BEARER "+tok, "Bearer  "+tok, tok, "Basic "+tok,
		"Bearer "+tok+","+tok, "Bearer "+tok+" "+tok, "Bearer "+tok+"=", "Bearer "+tok+".",
		"Bearer "+tok[:len(tok)-1], "Bearer "+tok[:len(tok)-1]+otherLast(tok), "Bearer "+strings.ToUpper(tok[:10])+tok[10:],
		"Bearer "+strings.Repeat("a", 9000), "Bearer", "Bearer ", "")
	return out
}

// otherLast is a last base64url digit for tok that changes the signature:
// its top bit flipped (the low bits of a last digit may be padding, which
// a lenient decoder ignores).
func otherLast(tok string) string {
	const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(b64, tok[len(tok)-1])
	return string(b64[i^32])
}

// TestCredentialVariants runs the fuzz invariant over the seed variants on
// both policies, and checks that each policy did what it says: refuse
// answers 401, strip forwards without the header.
func TestCredentialVariants(t *testing.T) {
	t.Setenv("LAB_JWT_SECRET", "lab-secret")
	tok := strings.TrimPrefix(labBearer(t, "77"), "Bearer ")
	refuse, refuseGot := recordFront(t, strings.Replace(credentialsYAML, "%s", "refuse", 1))
	strip, stripGot := recordFront(t, strings.Replace(credentialsYAML, "%s", "strip", 1))
	ctx := new(fasthttp.RequestCtx)
	var verified []string
	refused, stripped := 0, 0
	for _, v := range credentialVariants(tok) {
		raw := "GET /x HTTP/1.1\r\nHost: gw.test\r\nAuthorization: " + v + "\r\n\r\n"
		var req fasthttp.Request
		if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
			continue
		}
		var reqStrip fasthttp.Request
		req.CopyTo(&reqStrip)
		refuseGot.Reset()
		if err := serveOnce(refuse, ctx, &req, bufio.NewWriter(new(bytes.Buffer))); err != nil {
			t.Fatal(err)
		}
		status := ctx.Response.StatusCode()
		stripGot.Reset()
		if err := serveOnce(strip, ctx, &reqStrip, bufio.NewWriter(new(bytes.Buffer))); err != nil {
			t.Fatal(err)
		}
		up, err := http.ReadRequest(bufio.NewReader(stripGot))
		if err != nil {
			t.Fatalf("%q: strip forwarded nothing readable: %v", v, err)
		}
		switch status {
		case 200: // verified: forwarded as it came under both policies
			verified = append(verified, strings.ReplaceAll(v, tok, "TOK"))
			if refuseGot.Len() == 0 || len(up.Header.Values("Authorization")) != 1 {
				t.Errorf("%q: verified but not forwarded with its credential", v)
			}
		case 401:
			refused++
			if refuseGot.Len() != 0 {
				t.Errorf("%q: refused with 401 yet forwarded", v)
			}
			if len(up.Header.Values("Authorization")) != 0 {
				t.Errorf("%q: strip forwarded the credential", v)
			}
			stripped++
		default:
			t.Errorf("%q: status %d", v, status)
		}
	}
	// The scheme in any case, one or more spaces after it, space or tab
	// around the whole value (RFC 9110 OWS): nothing else.
	slices.Sort(verified)
	want := []string{"\tBearer TOK", " Bearer TOK", "BEARER TOK", "Bearer  TOK", "Bearer  TOK", "Bearer TOK", "Bearer TOK",
		"Bearer TOK\t", "Bearer TOK ", "bearer TOK"}
	if !slices.Equal(verified, want) || refused < 40 || stripped != refused {
		t.Fatalf("verified %q, refused %d, stripped %d: want %q verified, every other refused and stripped", verified, refused, stripped, want)
	}
}
