package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/ration"
	"github.com/warden-gw/warden/internal/store/memory"
)

// BenchmarkServe times the fast front's handler alone, in one goroutine:
// the request already parsed, the upstream a canned connection that answers
// at once. What it measures is warden's user-space work per request and
// fasthttp's around it, without the kernel's loopback TCP and the
// scheduler, which dominate `warden bench` and drown differences of a few
// percent. The load is row (e)'s: lab profiles by id, HS256 tokens of 1,000
// accounts, rate limits too high to refuse.
//
//	bare: no identity, no rules (the front and the proxying alone)
//	d:    row (d): account identity, per-ip and per-account limits
//	e:    row (e): examples/lab.yaml (inspection, budgets, look-up filter)
func BenchmarkServe(b *testing.B) {
	b.Setenv("LAB_JWT_SECRET", "lab-secret")
	b.Setenv("LAB_PARTNER_KEY", "pk-0123456789abcdef")
	lab := labBenchConfig(b)
	d, err := config.Parse("d.yaml", []byte(`identity: {account: {secret_env: LAB_JWT_SECRET}}
rate_limits:
  - {name: per-ip, facet: ip, rate: 1000000/s, burst: 1000000}
  - {name: per-account, facet: account, rate: 1000000/s, burst: 1000000}
`))
	if err != nil {
		b.Fatal(err)
	}
	bare, err := config.Parse("bare.yaml", []byte("{}\n"))
	if err != nil {
		b.Fatal(err)
	}
	reqs := benchRequests(b, 16384, 1000, 100000)
	for _, c := range []struct {
		name string
		cfg  *config.Config
	}{{"bare", bare}, {"d", d}, {"e", lab}} {
		b.Run(c.name, func(b *testing.B) {
			f := benchFront(b, c.cfg)
			ctx := new(fasthttp.RequestCtx)
			sink := bufio.NewWriter(io.Discard)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := serveOnce(f, ctx, reqs[i%len(reqs)], sink); err != nil {
					b.Fatal(err)
				}
				if code := ctx.Response.StatusCode(); code != 200 {
					b.Fatalf("status %d: %s", code, ctx.Response.Body())
				}
				i++
			}
		})
	}
}

// servePeer is the client address of requests served by serveOnce.
var servePeer = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}

// serveOnce serves req with the fast front's handler in ctx, set up as the
// front's server sets up each request, and writes the answer to w as the
// server does (which also ends a streamed body and so frees its upstream
// connection).
func serveOnce(f *fastFront, ctx *fasthttp.RequestCtx, req *fasthttp.Request, w *bufio.Writer) error {
	ctx.Init(req, servePeer, nil)
	f.serve(ctx)
	if err := ctx.Response.Write(w); err != nil {
		return err
	}
	return w.Flush()
}

// benchFront builds the fast front on cfg, its upstream a cannedConn.
func benchFront(b testing.TB, cfg *config.Config) *fastFront {
	b.Helper()
	cfg.Upstream.URL = "http://platform.test"
	cfg.Log.Level = "warn"
	cfg.Front = config.FrontFast
	log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	g := testGateway(b, cfg, prometheus.NewRegistry(), log)
	f, ok := g.front.(*fastFront)
	if !ok {
		b.Fatalf("front %s, want fast", g.Front())
	}
	f.client.Dial = func(string) (net.Conn, error) { return &cannedConn{}, nil }
	return f
}

// testGateway builds a gateway on cfg (defaults set, then validated) with a
// memory store and its metrics on reg; both last until the test ends.
func testGateway(tb testing.TB, cfg *config.Config, reg prometheus.Registerer, log *slog.Logger) *Gateway {
	tb.Helper()
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	st := memory.New(memory.Options{SweepEvery: -1})
	tb.Cleanup(func() { st.Close() })
	m, err := NewMetrics(reg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	p, err := NewPipeline(ctx, cfg, Deps{Store: st, Ration: ration.NewMetrics(nil), Metrics: m, Logger: log})
	if err != nil {
		tb.Fatal(err)
	}
	g, err := New(cfg, p, m, log)
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

// benchRequests are n look-ups of profiles uniform over 1..profiles, each
// with the HS256 token of one of accounts accounts, as `warden bench` sends.
func benchRequests(b *testing.B, n, accounts, profiles int) []*fasthttp.Request {
	b.Helper()
	toks := make([]string, accounts)
	for i := range toks {
		t, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": strconv.Itoa(1 + i*profiles/accounts), "iat": time.Now().Unix(), "created": time.Now().AddDate(-2, 0, 0).Unix(),
		}).SignedString([]byte("lab-secret"))
		if err != nil {
			b.Fatal(err)
		}
		toks[i] = t
	}
	out := make([]*fasthttp.Request, n)
	x := uint64(1)
	for i := range out {
		x = x*6364136223846793005 + 1442695040888963407
		r := new(fasthttp.Request)
		r.SetRequestURI(fmt.Sprintf("/v1/users/%d", 1+int(x>>33)%profiles))
		r.Header.SetHost("127.0.0.1:8080")
		r.Header.Set("Authorization", "Bearer "+toks[i%accounts])
		out[i] = r
	}
	return out
}

// cannedConn is an upstream connection that answers each request written to
// it, at once, with a lab profile of the id in the request line. It does not
// allocate per request, so the benchmark's allocations are the gateway's.
type cannedConn struct {
	body, resp []byte
	off        int
}

var (
	errNoRequest = errors.New("cannedConn: read with no request written")
	cannedLocal  = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40001}
	cannedRemote = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8081}
)

func (c *cannedConn) Write(p []byte) (int, error) {
	// GET /v1/users/ID HTTP/1.1: one request per write (fasthttp flushes
	// each request whole).
	id := []byte("0")
	if i := bytes.Index(p, []byte("/v1/users/")); i >= 0 {
		rest := p[i+len("/v1/users/"):]
		if j := bytes.IndexAny(rest, " ?"); j >= 0 {
			id = rest[:j]
		}
	}
	pad := 0 // ?pad=N lengthens the bio by N bytes
	if i := bytes.Index(p, []byte("pad=")); i >= 0 {
		for _, c := range p[i+len("pad="):] {
			if c < '0' || c > '9' {
				break
			}
			pad = pad*10 + int(c-'0')
		}
	}
	b := append(c.body[:0], `{"id":"`...)
	b = append(b, id...)
	b = append(b, `","username":"user_`...)
	b = append(b, id...)
	b = append(b, `","full_name":"Maya Santos","bio":"Collecting old cameras and older stories. Grew up by the sea, live in the city now. Museums, markets and long walks. Mountains in summer, books in winter.`...)
	for range pad {
		b = append(b, 'x')
	}
	b = append(b, `","city":"Vancouver","category":"Parent","is_business":false,"follower_count":17,"following_count":33,"posts_count":0,"created_at":"2025-08-31T18:29:59Z","email":"user`...)
	b = append(b, id...)
	b = append(b, `@example.net","phone":"+16045228111"}`...)
	c.body = b
	r := append(c.resp[:0], "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "...)
	r = strconv.AppendInt(r, int64(len(b)), 10)
	r = append(r, "\r\n\r\n"...)
	c.resp = append(r, b...)
	c.off = 0
	return len(p), nil
}

func (c *cannedConn) Read(p []byte) (int, error) {
	if c.off >= len(c.resp) {
		return 0, errNoRequest
	}
	n := copy(p, c.resp[c.off:])
	c.off += n
	return n, nil
}

func (c *cannedConn) Close() error                     { return nil }
func (c *cannedConn) LocalAddr() net.Addr              { return cannedLocal }
func (c *cannedConn) RemoteAddr() net.Addr             { return cannedRemote }
func (c *cannedConn) SetDeadline(time.Time) error      { return nil }
func (c *cannedConn) SetReadDeadline(time.Time) error  { return nil }
func (c *cannedConn) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkPrepare rewrites a request for the upstream as the fast front
// does (forwarding headers added to the header) and as the loop front does
// (added as wire lines to the serialised request), and serialises it.
func BenchmarkPrepare(b *testing.B) {
	cfg, err := config.Parse("bare.yaml", []byte("{}\n"))
	if err != nil {
		b.Fatal(err)
	}
	f := benchFront(b, cfg)
	reqs := benchRequests(b, 1024, 1000, 100000)
	p := f.g.pipeline()
	peer := netip.MustParseAddr("127.0.0.1")
	var req fasthttp.Request
	var out, lines []byte
	bw := bufio.NewWriter(appendWriter{&out})
	for _, raw := range []bool{false, true} {
		b.Run(map[bool]string{false: "header", true: "lines"}[raw], func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				reqs[i%len(reqs)].CopyTo(&req)
				ex := Exchange{ID: "0123456789abcdef01234567", Method: "GET", Path: "/v1/users/1"}
				out, lines = out[:0], lines[:0]
				if raw {
					f.prepare(&req, p, peer, &ex, false, &lines)
				} else {
					f.prepare(&req, p, peer, &ex, false, nil)
				}
				bw.Reset(appendWriter{&out})
				if err := req.Write(bw); err != nil || bw.Flush() != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// labBenchConfig is examples/lab.yaml as warden bench's rows run it: the
// rate limits too high to refuse, so each request looks them up and
// spends them but none is refused.
func labBenchConfig(b *testing.B) *config.Config {
	b.Helper()
	cfg, err := config.Load("../../examples/lab.yaml")
	if err != nil {
		b.Fatal(err)
	}
	for i := range cfg.Limits {
		cfg.Limits[i].Rate, cfg.Limits[i].Burst = "1000000/s", 1000000
	}
	return cfg
}

// rowE strips from cfg what row (e) has not: the detector and the budgets
// naming provenances (row e-prov's).
func rowE(cfg *config.Config) {
	cfg.Detect.Enabled = false
	kept := cfg.Ration.Budgets[:0]
	for _, bu := range cfg.Ration.Budgets {
		if len(bu.Provenance) == 0 {
			kept = append(kept, bu)
		}
	}
	cfg.Ration.Budgets = kept
}

// serveMeasured serves reqs round robin through f for b.N requests and
// reports the process's CPU per request (cpu-ns/op); done runs before the
// CPU is read (the recordings' backlog is the run's CPU too).
func serveMeasured(b *testing.B, f *fastFront, reqs []*fasthttp.Request, done func()) {
	ctx := new(fasthttp.RequestCtx)
	sink := bufio.NewWriter(io.Discard)
	b.ReportAllocs()
	i := 0
	start := cpuNow()
	for b.Loop() {
		if err := serveOnce(f, ctx, reqs[i%len(reqs)], sink); err != nil {
			b.Fatal(err)
		}
		i++
	}
	done()
	b.ReportMetric(float64(cpuNow()-start)/float64(b.N), "cpu-ns/op")
}
