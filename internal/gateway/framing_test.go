package gateway

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/valyala/fasthttp"
)

const chunkedHead = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"

func TestChunkedEnd(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		ok   bool
		fail bool
	}{
		{in: "0\r\n\r\n", n: 5, ok: true},
		{in: "5\r\nhello\r\n0\r\n\r\nGET", n: 15, ok: true},
		{in: "5;a=b\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n", n: 38, ok: true},
		{in: "A\r\n0123456789\r\n0\r\n\r\n", n: 20, ok: true},
		{in: "5 \r\nhello\r\n0\r\n\r\n", n: 16, ok: true},
		{in: "5\r\nhel"},
		{in: "5\r\nhello\r"},
		{in: "5\r\nhello\r\n0\r\n"},
		{in: "5\r\nhello\r\n0\r\nX-T: 1\r\n"},
		{in: "5"},
		{in: "5\r"},
		{in: "", ok: false},
		{in: "x\r\n", fail: true},
		{in: "5\nhello\r\n", fail: true},
		{in: "5\r\nhelloXY0\r\n\r\n", fail: true},
		{in: "5 ;a\r\nhello\r\n", fail: true},
		{in: "5;a\nb\r\n", fail: true},
		{in: "0\r\nX-T: 1\n\r\n", fail: true},
		{in: "11111111111111111\r\n", fail: true},
	} {
		n, ok, err := chunkedEnd([]byte(tc.in))
		if (err != nil) != tc.fail || ok != tc.ok || (ok && n != tc.n) {
			t.Errorf("chunkedEnd(%q) = %d, %v, %v; want %d, %v, fail %v", tc.in, n, ok, err, tc.n, tc.ok, tc.fail)
		}
	}
}

// FuzzChunkedEnd holds chunkedEnd to fasthttp's parser, which reads the
// answer once the loop front thinks it whole: where chunkedEnd finds an
// end, fasthttp reads a body that ends there or refuses it (a malformed
// trailer: the loop answers 502, as the fast front does); where it wants
// more, fasthttp cannot read the bytes whole either. chunkedEnd may refuse
// what fasthttp tolerates (a bare LF ending the trailers): the loop then
// answers 502, stricter but never reading a different end.
func FuzzChunkedEnd(f *testing.F) {
	for _, s := range []string{"0\r\n\r\n", "5\r\nhello\r\n0\r\n\r\n", "5;a=b\r\nhello\r\n0\r\nX-T: 1\r\n\r\n", "5\r\nhel", "5 \r\nhello\r\n0\r\n\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, ok, err := chunkedEnd(b)
		if ok && (n <= 0 || n > len(b)) {
			t.Fatalf("end %d of %d bytes", n, len(b))
		}
		var resp fasthttp.Response
		br := bufio.NewReader(bytes.NewReader(append([]byte(chunkedHead), b...)))
		ferr := resp.ReadLimitBody(br, 1<<20) // fasthttp allocates a chunk's announced size
		switch {
		case ok:
			if used := len(chunkedHead) + len(b) - br.Buffered(); ferr == nil && used != len(chunkedHead)+n {
				t.Fatalf("chunkedEnd ends %q at %d, fasthttp at %d", b, n, used-len(chunkedHead))
			}
		case err == nil && ferr == nil:
			t.Fatalf("chunkedEnd wants more of %q; fasthttp reads it whole", b)
		}
	})
}

func TestFrameAnswer(t *testing.T) {
	for _, tc := range []struct {
		in         string
		head       bool
		need       int
		whole      bool
		untilClose bool
		fail       bool
	}{
		{in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", need: 43},
		{in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", need: 43, whole: true},
		{in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", head: true, need: 38, whole: true},
		{in: "HTTP/1.1 204 No Content\r\n\r\n", need: 27, whole: true},
		{in: "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", need: 48, whole: true},
		{in: "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", need: 80, whole: true},
		{in: "HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 200 O"},
		{in: chunkedHead + "2\r\nok\r\n0\r\n\r\n", need: len(chunkedHead) + 12, whole: true},
		{in: chunkedHead + "2\r\no"},
		{in: chunkedHead + "2\nok", fail: true},
		{in: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nsome", untilClose: true},
		{in: "HTTP/1.1 101 Switching Protocols\r\n\r\n", fail: true},
		{in: "HTTP/1.1 200 OK\r\nContent-Le"},
		{in: "NOT HTTP\r\n\r\n", fail: true},
	} {
		fr := frameAnswer([]byte(tc.in), tc.head, 1<<10)
		if (fr.err != nil) != tc.fail || fr.whole != tc.whole || fr.untilClose != tc.untilClose || (!tc.fail && fr.need != tc.need) {
			t.Errorf("frameAnswer(%q) = %+v; want need %d whole %v untilClose %v fail %v", tc.in, fr, tc.need, tc.whole, tc.untilClose, tc.fail)
		}
	}
	// A chunked body whose end has not come says where it starts, so that
	// the loop scans it alone until then.
	if fr := frameAnswer([]byte(chunkedHead+"2\r\no"), false, 1<<10); fr.chunkAt != len(chunkedHead) {
		t.Errorf("chunked body at %d, want %d", fr.chunkAt, len(chunkedHead))
	}
	if fr := frameAnswer(bytes.Repeat([]byte("x"), 2<<10), false, 1<<10); fr.err == nil {
		t.Error("a header past the bound is not refused")
	}
}
