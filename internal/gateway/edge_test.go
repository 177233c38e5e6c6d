package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// A refusal is written alike over every front's replyWriter: the fasthttp
// response (fast and loop fronts), net/http's writer and a proxied answer
// replaced in ModifyResponse (std front).
func TestRefusalSameOnEveryFront(t *testing.T) {
	refusals := map[string]*Refusal{
		"rate limit": {Status: 429, Rule: "per-ip", Facet: "ip", Error: "rate limited", RetryAfter: 1500 * time.Millisecond,
			Policy: `"per-ip";q=10;w=1`, State: `"per-ip";r=0;t=2`},
		"credential": {Status: 401, Rule: "identity", Facet: "account", Error: "account credential not verified: signature",
			Challenge: `Bearer error="invalid_token"`},
		"ban": {Status: 403, Rule: "ban", Facet: "ip", Error: "banned"},
	}
	headers := []string{"Content-Type", "Retry-After", "RateLimit-Policy", "RateLimit", "WWW-Authenticate", "X-Request-Id"}
	for name, r := range refusals {
		t.Run(name, func(t *testing.T) {
			type written struct {
				status int
				header http.Header
				body   string
			}
			var got []written

			var fr fasthttp.Response
			writeRefusal((*fastReply)(&fr), r, "req-1")
			w := written{status: fr.StatusCode(), header: http.Header{}, body: string(fr.Body())}
			for _, h := range headers {
				if v := fr.Header.Peek(h); len(v) > 0 {
					w.header.Set(h, string(v))
				}
			}
			got = append(got, w)

			rec := httptest.NewRecorder()
			writeRefusal(&statusRecorder{ResponseWriter: rec}, r, "req-1")
			got = append(got, written{status: rec.Code, header: rec.Header(), body: rec.Body.String()})

			proxied := &http.Response{StatusCode: 200, Header: http.Header{}}
			writeRefusal((*proxiedReply)(proxied), r, "req-1")
			b, _ := io.ReadAll(proxied.Body)
			if proxied.ContentLength != int64(len(b)) {
				t.Errorf("proxied: ContentLength %d for %d bytes", proxied.ContentLength, len(b))
			}
			got = append(got, written{status: proxied.StatusCode, header: proxied.Header, body: string(b)})

			want := got[0]
			if want.status != r.Status || want.body != string(r.Body("req-1")) || want.header.Get("X-Request-Id") != "req-1" {
				t.Fatalf("fast: %d %v %q", want.status, want.header, want.body)
			}
			for i, g := range got[1:] {
				if g.status != want.status || g.body != want.body {
					t.Errorf("writer %d: %d %q, want %d %q", i+1, g.status, g.body, want.status, want.body)
				}
				for _, h := range headers {
					if g.header.Get(h) != want.header.Get(h) {
						t.Errorf("writer %d: %s %q, want %q", i+1, h, g.header.Get(h), want.header.Get(h))
					}
				}
			}
		})
	}
}

func TestUpstreamFailure(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		status int
		kind   string
	}{
		{"fasthttp timeout", fasthttp.ErrTimeout, 504, "timeout"},
		{"fasthttp dial timeout", fasthttp.ErrDialTimeout, 504, "timeout"},
		{"dial timeout", &timeoutErr{}, 504, "timeout"},
		{"deadline", fmt.Errorf("round trip: %w", context.DeadlineExceeded), 504, "timeout"},
		{"read deadline", fmt.Errorf("read: %w", os.ErrDeadlineExceeded), 504, "timeout"},
		{"fasthttp too large", fasthttp.ErrBodyTooLarge, 502, "too_large"},
		{"std too large", errTooLarge, 502, "too_large"},
		{"client gone", context.Canceled, 499, "client_gone"},
		{"closed", errUpstreamClosed, 502, "unreachable"},
		{"refused", errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), 502, "unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, kind, _ := upstreamFailure(tc.err); status != tc.status || kind != tc.kind {
				t.Errorf("%v: %d %s, want %d %s", tc.err, status, kind, tc.status, tc.kind)
			}
		})
	}
}

type timeoutErr struct{}

func (*timeoutErr) Error() string   { return "dial tcp: i/o timeout" }
func (*timeoutErr) Timeout() bool   { return true }
func (*timeoutErr) Temporary() bool { return true }
