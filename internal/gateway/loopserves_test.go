package gateway

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// wrk's request of bench row (e): what loopServes looks at on every
// request of the loop front.
const benchRequestHead = "GET /v1/users/4242 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAuthorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"

func readHead(tb testing.TB, s string) *fasthttp.RequestHeader {
	tb.Helper()
	var h fasthttp.RequestHeader
	if err := h.Read(bufio.NewReader(strings.NewReader(s))); err != nil {
		tb.Fatalf("%q: %v", s, err)
	}
	return &h
}

// TestLoopServes: the loop front serves plain HTTP/1.1 requests itself
// and hands the rest (chunked, Expect, upgrades, HTTP/1.0, CONNECT) over.
func TestLoopServes(t *testing.T) {
	for _, c := range []struct {
		head string
		want bool
	}{
		{benchRequestHead, true},
		{"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", true},
		{"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", true},
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n", true},
		{"GET / HTTP/1.0\r\nHost: a\r\n\r\n", false},
		{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", false},
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nHost: a\r\nupgrade: h2c\r\n\r\n", false},
		{"GET / HTTP/1.1\r\nHost: a\r\nconnection: keep-alive, upgrade\r\n\r\n", false},
		{"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", false},
	} {
		if got := loopServes(readHead(t, c.head)); got != c.want {
			t.Errorf("%q: loopServes %v, want %v", c.head, got, c.want)
		}
	}
}

// BenchmarkLoopServes: about 104 ns in cache (four Peeks, each normalising
// its name); a single pass by RequestHeader.All would parse cookies too.
func BenchmarkLoopServes(b *testing.B) {
	h := readHead(b, benchRequestHead)
	b.ReportAllocs()
	for b.Loop() {
		if !loopServes(h) {
			b.Fatal("not served")
		}
	}
}
