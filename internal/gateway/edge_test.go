package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/refusal"
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
			for k, v := range fr.Header.All() { // the names as they go out
				w.header[string(k)] = append(w.header[string(k)], string(v))
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

			// The fasthttp response and net/http's writer send the names as
			// written (RateLimit-Policy, not Ratelimit-Policy); a proxied
			// answer's header is canonicalised by ReverseProxy's copy, so
			// there only the values are compared.
			want := got[0]
			if want.status != r.Status || want.body != string(r.Body("req-1")) || rawGet(want.header, "X-Request-Id") != "req-1" {
				t.Fatalf("fast: %d %v %q", want.status, want.header, want.body)
			}
			for i, g := range got[1:] {
				if g.status != want.status || g.body != want.body {
					t.Errorf("writer %d: %d %q, want %d %q", i+1, g.status, g.body, want.status, want.body)
				}
				get := rawGet
				if i+1 == 2 {
					get = http.Header.Get
				}
				for _, h := range headers {
					if get(g.header, h) != rawGet(want.header, h) {
						t.Errorf("writer %d: %s %q, want %q", i+1, h, get(g.header, h), rawGet(want.header, h))
					}
				}
			}
			spelt := []string{"X-Request-Id"} // and the names normalising would change, when r carries them
			if r.Policy != "" {
				spelt = append(spelt, "RateLimit-Policy", "RateLimit")
			}
			if r.Challenge != "" {
				spelt = append(spelt, "WWW-Authenticate")
			}
			for _, h := range spelt {
				if _, ok := want.header[h]; !ok {
					t.Errorf("fast: no header named %s in %v", h, want.header)
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

// rawGet is the value of the header named exactly name.
func rawGet(h http.Header, name string) string {
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

type timeoutErr struct{}

func (*timeoutErr) Error() string   { return "dial tcp: i/o timeout" }
func (*timeoutErr) Timeout() bool   { return true }
func (*timeoutErr) Temporary() bool { return true }

// TestEdgeRefusalsRecorded: what the fast front refuses at its edge,
// before an exchange is decided (CONNECT, an ambiguous path, an HTTP
// version it does not serve, a request fasthttp would not read), names
// rule request and the reason in its body, and hands the recorders an
// Access under the body's request id: the peer's ip and net, the
// account only when identified, the raw path's route when the map has
// one, the status, rule and reason.
func TestEdgeRefusalsRecorded(t *testing.T) {
	col := &collector{}
	rec := NewRecording("test", col, 16, NewRecordingMetrics(nil))
	f := recordFrontWith(t, answerYAML, Deps{Recordings: []*Recording{rec}})
	type want struct {
		status        int
		reason, route string
		account       string
	}
	var wants []want
	var ids []string
	check := func(ctx *fasthttp.RequestCtx, w want) {
		t.Helper()
		var b struct {
			Rule, Facet string
			RequestID   string `json:"request_id"`
		}
		if err := json.Unmarshal(ctx.Response.Body(), &b); err != nil || ctx.Response.StatusCode() != w.status ||
			b.Rule != refusal.RuleRequest || b.Facet != w.reason || b.RequestID == "" ||
			string(ctx.Response.Header.Peek("X-Request-Id")) != b.RequestID {
			t.Fatalf("%d %s (%v), want %d by rule request, reason %s, with its id", ctx.Response.StatusCode(), ctx.Response.Body(), err, w.status, w.reason)
		}
		wants, ids = append(wants, w), append(ids, b.RequestID)
	}
	auth := labBearer(t, "80")
	serve := func(method, uri, proto string, w want) {
		t.Helper()
		req := new(fasthttp.Request)
		req.Header.SetMethod(method)
		req.SetRequestURI(uri)
		req.Header.SetHost("gw.test")
		req.Header.Set("Authorization", auth)
		if proto != "" {
			req.Header.SetProtocol(proto)
		}
		ctx := new(fasthttp.RequestCtx)
		if err := serveOnce(f, ctx, req, bufio.NewWriter(io.Discard)); err != nil {
			t.Fatal(err)
		}
		check(ctx, w)
	}
	serve("CONNECT", "/", "", want{405, refusal.RequestConnect, "", "80"})
	serve("GET", "/v1/users/77%2Fx", "", want{400, "ambiguous_path", "GET /v1/users/{id}", "80"})
	serve("GET", "/v1/users/77", "HTTP/9.9", want{505, "malformed", "", "80"})
	// What fasthttp's server refuses to read: a body over the bound (its
	// header read, so the route and the account are known), a header
	// over it (nothing known but the peer).
	for _, c := range []struct {
		err error
		w   want
	}{
		{fasthttp.ErrBodyTooLarge, want{413, "body_too_large", "GET /v1/users/{id}", "80"}},
		{errors.New("error when reading request headers: small read buffer. Increase ReadBufferSize"), want{431, "header_too_large", "", ""}},
	} {
		req := new(fasthttp.Request)
		req.SetRequestURI("/v1/users/77")
		req.Header.Set("Authorization", auth)
		client, server := net.Pipe()
		client.Close() // nothing more to drain
		ctx := new(fasthttp.RequestCtx)
		ctx.Init2(peerConn{server}, nil, false)
		req.CopyTo(&ctx.Request)
		f.badRequest(ctx, c.err)
		check(ctx, c.w)
	}
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(col.accs) != len(wants) {
		t.Fatalf("%d Accesses, want %d (one per refusal)", len(col.accs), len(wants))
	}
	for i, a := range col.accs {
		w := wants[i]
		if a.RequestID != ids[i] || a.Status != w.status || a.Rule != refusal.RuleRequest || a.Facet != w.reason || a.Route != w.route ||
			a.Identity.IP.String() != "127.0.0.1" || a.Identity.Net.String() != "127.0.0.0/24" || a.Identity.Account != w.account ||
			a.List != "" || a.Lookup != "" || len(a.Records) != 0 {
			t.Errorf("Access %d: %+v, want id %s, %+v, ip 127.0.0.1", i, a, ids[i], w)
		}
	}
}

// peerConn is a connection from servePeer.
type peerConn struct{ net.Conn }

func (peerConn) RemoteAddr() net.Addr { return servePeer }

// panicky is a responder that panics on every request.
type panicky struct{}

// panickySeeder panics in the answer stage, after the Access was begun
// and before it was handed over.
type panickySeeder struct{}

func (panickySeeder) Seed(*Exchange, *inspect.Result, *inspect.Access) { panic("seeder bug") }

func (panicky) Respond(context.Context, *Exchange) *Local { panic("responder bug") }

// TestPanicRecorded: a panic recovered while serving is answered 500 by
// rule internal, and its Access (the identity and route Begin found)
// goes to the recorders under the body's request id, once.
//
// In the answer stage too (a seeder's panic, between the Access's start and
// its hand-off): the 500's id was "not found" when the exchange counted
// as recorded from the Access's start.
func TestPanicRecorded(t *testing.T) {
	for name, d := range map[string]Deps{
		"responder": {Responders: []Responder{panicky{}}},
		"seeder":    {Seeders: []Seeder{panickySeeder{}}},
	} {
		t.Run(name, func(t *testing.T) { testPanicRecorded(t, d) })
	}
}

func testPanicRecorded(t *testing.T, d Deps) {
	col := &collector{}
	rec := NewRecording("test", col, 8, NewRecordingMetrics(nil))
	d.Recordings = []*Recording{rec}
	var logged bytes.Buffer // written as the request is served, on this goroutine
	d.Logger = slog.New(slog.NewJSONHandler(&logged, nil))
	f := recordFrontWith(t, answerYAML, d)
	ctx := new(fasthttp.RequestCtx)
	if code := getWith(t, f, ctx, "/v1/users/1", labBearer(t, "80")); code != 500 {
		t.Fatalf("status %d, want 500", code)
	}
	var b struct {
		Rule      string
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(ctx.Response.Body(), &b); err != nil || b.Rule != refusal.RuleInternal || b.RequestID == "" {
		t.Fatalf("body %s (%v), want rule internal and an id", ctx.Response.Body(), err)
	}
	// Logged as every refusal: a "refused" line with its id and rule
	// (beside the panic's own error line).
	var refused []map[string]any
	for _, l := range strings.Split(logged.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "refused" {
			refused = append(refused, m)
		}
	}
	if len(refused) != 1 || refused[0]["request_id"] != b.RequestID || refused[0]["rule"] != refusal.RuleInternal ||
		refused[0]["status"] != float64(500) || refused[0]["level"] != "INFO" {
		t.Errorf("refused lines %v, want one for %s, rule internal, status 500:\n%s", refused, b.RequestID, logged.String())
	}
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(col.accs) != 1 {
		t.Fatalf("%d Accesses, want 1", len(col.accs))
	}
	if a := col.accs[0]; a.RequestID != b.RequestID || a.Status != 500 || a.Rule != refusal.RuleInternal || a.Route != "GET /v1/users/{id}" || a.Identity.Account != "80" {
		t.Fatalf("Access %+v, want the request's, 500 by rule internal", a)
	}
}

// TestEdgeLogBounded: a flood of refusals at the edge writes at most
// refusedLinesPerSecond lines a second, and the first line after a flood
// says how many were left out.
func TestEdgeLogBounded(t *testing.T) {
	var l refusedLog
	t0 := time.Unix(1_000_000, 0)
	written := 0
	for i := range 1000 {
		if ok, sup := l.take(t0.Add(time.Duration(i) * time.Microsecond)); ok {
			written++
			if sup != 0 {
				t.Fatalf("line %d says %d left out, none were", written, sup)
			}
		}
	}
	if written != refusedLinesPerSecond {
		t.Fatalf("%d lines in one second of 1000 refusals, want %d", written, refusedLinesPerSecond)
	}
	ok, sup := l.take(t0.Add(time.Second))
	if !ok || sup != 1000-refusedLinesPerSecond {
		t.Fatalf("next second: written %v, says %d left out, want %d", ok, sup, 1000-refusedLinesPerSecond)
	}
	if ok, sup := l.take(t0.Add(time.Second + time.Millisecond)); !ok || sup != 0 {
		t.Fatalf("then: written %v, %d left out; want written, none", ok, sup)
	}
}

// TestEdgeLogStaleTime: a line whose time was read before the second
// turned (a goroutine preempted between time.Now and take, at the
// boundary) counts against the second being counted; it does not take
// the count back to its own second and start it again. Before, each such
// line reset the count, and the next line of the new second reset it
// once more: with refusals from many goroutines at a second's turn, 100
// more lines for every stale one, past the 100 a second README promises.
func TestEdgeLogStaleTime(t *testing.T) {
	var l refusedLog
	t1 := time.Unix(1_000_001, 0)
	stale := t1.Add(-time.Microsecond) // read in the second before
	written := 0
	for i := range 3 * refusedLinesPerSecond {
		now := t1.Add(time.Duration(i) * time.Microsecond)
		if i%2 == 1 {
			now = stale
		}
		if ok, _ := l.take(now); ok {
			written++
		}
	}
	if written != refusedLinesPerSecond {
		t.Fatalf("%d lines written of %d refusals in one second, half with a stale time; want %d",
			written, 3*refusedLinesPerSecond, refusedLinesPerSecond)
	}
	// A wall clock set back an hour starts a second of its own: the
	// lines are not held back until it comes round again.
	if ok, _ := l.take(t1.Add(-time.Hour)); !ok {
		t.Fatal("a line after the clock was set back an hour was left out")
	}
}

// TestPanicAfterHandOff: a panic after the request's Access went to the
// recorders with its decided status (while the answer was made) is
// answered 500, rule internal, facet answering, and the recorders get a
// second Access of the id with that 500, later than the first, which
// supersedes it (the ledger's Find takes an id's newest). Before, the
// recorders kept only the decided status.
func TestPanicAfterHandOff(t *testing.T) {
	col := &collector{}
	rec := NewRecording("test", col, 8, NewRecordingMetrics(nil))
	f := recordFrontWith(t, answerYAML, Deps{Recordings: []*Recording{rec}})
	ctx := new(fasthttp.RequestCtx)
	if code := getWith(t, f, ctx, "/v1/users/1", labBearer(t, "80")); code != 200 {
		t.Fatalf("status %d, want 200", code)
	}
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(col.accs) != 1 || col.accs[0].Status != 200 {
		t.Fatalf("Accesses %+v, want the 200", col.accs)
	}
	first := col.accs[0]
	// The exchange as Finish leaves it: handed over.
	rec = NewRecording("test", col, 8, NewRecordingMetrics(nil))
	p := f.g.pipeline()
	p.recordings = []*Recording{rec}
	ex := &Exchange{ID: first.RequestID, Start: first.Time, Method: "GET", Path: "/v1/users/1", Identity: first.Identity, p: p, recorded: true}
	ex.Route, ex.Inspect = p.imap.Match(ex.Method, ex.Path)
	var resp fasthttp.Response
	f.g.recovered((*fastReply)(&resp), ex, "answer bug")
	var b struct {
		Rule, Facet string
		RequestID   string `json:"request_id"`
	}
	if err := json.Unmarshal(resp.Body(), &b); err != nil || resp.StatusCode() != 500 || b.Rule != refusal.RuleInternal ||
		b.Facet != refusal.InternalAnswering || b.RequestID != first.RequestID {
		t.Fatalf("%d %s (%v), want 500, rule internal, facet answering, id %s", resp.StatusCode(), resp.Body(), err, first.RequestID)
	}
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(col.accs) != 2 {
		t.Fatalf("%d Accesses, want the 200 and its 500", len(col.accs))
	}
	if a := col.accs[1]; a.RequestID != first.RequestID || a.Status != 500 || a.Rule != refusal.RuleInternal || a.Facet != refusal.InternalAnswering ||
		a.Route != "GET /v1/users/{id}" || a.Identity.Account != "80" || len(a.Records) != 0 || !a.Time.After(first.Time) {
		t.Fatalf("second Access %+v, want the 500 of %s after %v", a, first.RequestID, first.Time)
	}
}

// A flood of refusals past the edge (a client told 429 that keeps asking)
// is bounded in the log as the edge's are: at most refusedLinesPerSecond
// "refused" lines a second, and the next line written says how many were
// left out, so the lines and their suppressed counts add up to every
// refusal. Each refusal is still recorded (the collector sees them all).
// Before, each was a line: 30,000 lines a second at this machine's rate.
func TestRuleRefusalLinesBounded(t *testing.T) {
	col := &collector{}
	rec := NewRecording("test", col, 4096, NewRecordingMetrics(nil))
	var logged bytes.Buffer // written as each request is served, on this goroutine
	f := recordFrontWith(t, answerYAML, Deps{Recordings: []*Recording{rec}, Logger: slog.New(slog.NewJSONHandler(&logged, nil))})
	auth := labBearer(t, "91")
	const n = 600
	refused := 0
	seconds := map[int64]bool{}
	for range n {
		seconds[time.Now().Unix()] = true
		if getWith(t, f, new(fasthttp.RequestCtx), "/v1/users/1", auth) == 429 {
			refused++
		}
	}
	// One more refusal once the second has turned: its line carries what
	// the flood's last second left out.
	for s := time.Now().Unix(); time.Now().Unix() == s; {
		time.Sleep(10 * time.Millisecond)
	}
	if getWith(t, f, new(fasthttp.RequestCtx), "/v1/users/1", auth) != 429 {
		t.Fatal("the request after the flood was not refused")
	}
	refused++
	lines, suppressed := 0, 0
	for _, l := range strings.Split(logged.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "refused" {
			lines++
			if s, ok := m["suppressed"].(float64); ok {
				suppressed += int(s)
			}
		}
	}
	if refused < n-10 {
		t.Fatalf("%d of %d refused, want all but the burst", refused, n+1)
	}
	if most := refusedLinesPerSecond*len(seconds) + 1; lines > most {
		t.Errorf("%d refused lines for %d refusals over %d seconds, want at most %d", lines, refused, len(seconds), most)
	}
	if lines+suppressed != refused {
		t.Errorf("%d lines + %d suppressed, want the %d refusals", lines, suppressed, refused)
	}
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(col.accs) != n+1 {
		t.Errorf("%d Accesses recorded, want %d", len(col.accs), n+1)
	}
}
