package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/valyala/fasthttp"

	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/ration"
	"github.com/warden-gw/warden/internal/store/memory"
)

// collector is a recorder that keeps what it is fed.
type collector struct {
	mu   sync.Mutex
	accs []*inspect.Access
}

func (c *collector) Record(a *inspect.Access) {
	c.mu.Lock()
	c.accs = append(c.accs, a)
	c.mu.Unlock()
}

// stuck is a recorder that never returns until released.
type stuck struct{ release chan struct{} }

func (s stuck) Record(*inspect.Access) { <-s.release }

// recordFrontWith is the fast front on yaml with deps' recordings,
// responders and seeders, its upstream the canned lab profile.
func recordFrontWith(t *testing.T, yaml string, d Deps) *fastFront {
	t.Helper()
	t.Setenv("LAB_JWT_SECRET", "lab-secret")
	cfg, err := config.Parse("answer.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Upstream.URL = "http://platform.test"
	cfg.Front = config.FrontFast
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st := memory.New(memory.Options{SweepEvery: -1})
	t.Cleanup(func() { st.Close() })
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	log := d.Logger
	d.Store, d.Ration, d.Metrics = st, ration.NewMetrics(nil), m
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	p, err := NewPipeline(ctx, cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(cfg, p, m, log)
	if err != nil {
		t.Fatal(err)
	}
	f := g.front.(*fastFront)
	f.client.Dial = func(string) (net.Conn, error) { return &cannedConn{}, nil }
	return f
}

const answerYAML = `identity: {account: {secret_env: LAB_JWT_SECRET}}
rate_limits:
  - {name: per-account, facet: account, rate: 1/h, burst: 3, routes: ["GET /v1/users/{id}"]}
inspect:
  routes:
    - route: "GET /v1/users/{id}"
      records: ["$"]
      id: id
      lookup: id
      classes: {contact: [email, phone]}
    - route: "GET /v1/users/{id}/followers"
      records: ["$.users[*]"]
      id: id
      list: id
      cursor: cursor
ration:
  budgets:
    - {name: contact-account, facet: account, class: contact, limit: 1, window: 24h}
`

// labBearer is an Authorization value for the lab account sub, a year old.
func labBearer(t testing.TB, sub string) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": sub, "iat": time.Now().Unix(), "created": time.Now().AddDate(-1, 0, 0).Unix(),
	}).SignedString([]byte("lab-secret"))
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + tok
}

func getWith(t *testing.T, f *fastFront, ctx *fasthttp.RequestCtx, path, auth string) int {
	t.Helper()
	req := new(fasthttp.Request)
	req.SetRequestURI(path)
	req.Header.SetHost("gw.test")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if err := serveOnce(f, ctx, req, bufio.NewWriter(io.Discard)); err != nil {
		t.Fatal(err)
	}
	return ctx.Response.StatusCode()
}

// Every request warden inspected or refused reaches the recorders as an
// Access: served, masked, refused in Begin (a rate limit, a credential),
// with the decision that was made.
func TestRecordersSeeEveryAccess(t *testing.T) {
	col := &collector{}
	rm := NewRecordingMetrics(nil)
	rec := NewRecording("test", col, 64, rm)
	f := recordFrontWith(t, answerYAML, Deps{Recordings: []*Recording{rec}})
	ctx := new(fasthttp.RequestCtx)
	auth := labBearer(t, "77")
	want := []int{200, 200, 200, 429, 401, 200, 200}
	got := []int{
		getWith(t, f, ctx, "/v1/users/1", auth), // contact served
		getWith(t, f, ctx, "/v1/users/2", auth), // masked: budget of 1
		getWith(t, f, ctx, "/v1/users/2", auth), // still masked
		getWith(t, f, ctx, "/v1/users/3", auth), // the 4th: rate limited
		getWith(t, f, ctx, "/v1/users/4", auth+"\u00a0"),
		getWith(t, f, ctx, "/elsewhere", ""),                                                 // not mapped, not refused: no Access
		getWith(t, f, ctx, "/v1/users/7/followers?limit=3&cursor=%zz&cur%73or=abc%3D", auth), // the cursor as the platform reads it: abc=
	}
	if !slicesEqual(got, want) {
		t.Fatalf("statuses %v, want %v", got, want)
	}
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(col.accs) != 6 {
		t.Fatalf("%d Accesses, want 6: %+v", len(col.accs), col.accs)
	}
	a := col.accs
	if a[0].Status != 200 || a[0].Rule != "" || len(a[0].Records) != 1 || a[0].Records[0].ID != "1" ||
		a[0].Records[0].Served() != 1 || a[0].Identity.Account != "77" || a[0].Route != "GET /v1/users/{id}" || a[0].Lookup != "1" {
		t.Errorf("served: %+v", a[0])
	}
	if a[1].Records[0].Masked != 1 || len(a[1].MaskRules) != 1 || a[1].MaskRules[0] != "contact-account" {
		t.Errorf("masked: %+v", a[1])
	}
	if a[3].Status != 429 || a[3].Rule != "per-account" || a[3].Facet != "account" || a[3].Records != nil || a[3].Route != "GET /v1/users/{id}" {
		t.Errorf("rate limited: %+v", a[3])
	}
	if a[4].Status != 401 || a[4].Rule != "identity" || a[4].Facet != "account" || a[4].Identity.Account != "" {
		t.Errorf("unverified credential: %+v", a[4])
	}
	if a[5].List != "7" || a[5].Page != "abc=" || a[5].Route != "GET /v1/users/{id}/followers" || a[5].Status != 200 {
		t.Errorf("list page: %+v", a[5])
	}
	for _, x := range a {
		if x.RequestID == "" || x.Time.IsZero() {
			t.Errorf("no request id or time: %+v", x)
		}
	}
}

// A recorder that does not keep up never slows the request path: its
// queue fills, the rest are dropped and counted.
func TestRecorderNeverBlocks(t *testing.T) {
	s := stuck{release: make(chan struct{})}
	rm := NewRecordingMetrics(nil)
	rec := NewRecording("stuck", s, 2, rm)
	f := recordFrontWith(t, strings.Replace(answerYAML, "burst: 3", "burst: 100", 1), Deps{Recordings: []*Recording{rec}})
	ctx := new(fasthttp.RequestCtx)
	auth := labBearer(t, "78")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 20 {
			if code := getWith(t, f, ctx, "/v1/users/"+string(rune('1'+i%9)), auth); code != 200 {
				t.Errorf("request %d: %d", i, code)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second): // a deadlock, not a speed target
		t.Fatal("requests waited for a stuck recorder")
	}
	// Two queued, and one held by the recorder if its goroutine took it
	// in time: 17 or 18 dropped.
	var m dto.Metric
	if err := rm.dropped.WithLabelValues("stuck").Write(&m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetCounter().GetValue(); got != 17 && got != 18 {
		t.Errorf("dropped %v, want 17 or 18", got)
	}
	close(s.release)
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A responder answers a request itself: the upstream is never asked.
type teapot struct{}

func (teapot) Respond(_ context.Context, ex *Exchange) *Local {
	if ex.Path != "/v1/users/424242" {
		return nil
	}
	return &Local{Status: 200, Body: []byte(`{"id":"424242"}`)}
}

func TestResponderAnswersItself(t *testing.T) {
	f := recordFrontWith(t, answerYAML, Deps{Responders: []Responder{teapot{}}})
	dialled := 0
	f.client.Dial = func(string) (net.Conn, error) { dialled++; return &cannedConn{}, nil }
	ctx := new(fasthttp.RequestCtx)
	auth := labBearer(t, "79")
	if code := getWith(t, f, ctx, "/v1/users/424242", auth); code != 200 || string(ctx.Response.Body()) != `{"id":"424242"}` ||
		string(ctx.Response.Header.ContentType()) != "application/json" || len(ctx.Response.Header.Peek("X-Request-Id")) == 0 {
		t.Fatalf("responder's answer: %d %s", code, ctx.Response.Body())
	}
	if dialled != 0 {
		t.Fatal("the upstream was asked for an answer warden made itself")
	}
	if code := getWith(t, f, ctx, "/v1/users/5", auth); code != 200 || dialled != 1 || !strings.Contains(string(ctx.Response.Body()), "user5@") {
		t.Fatalf("other requests go upstream: %d, dialled %d: %s", code, dialled, ctx.Response.Body())
	}
	// A responder never answers a refused request: the ban comes first.
	if code := getWith(t, f, ctx, "/v1/users/424242", auth+"x"); code != 401 {
		t.Fatalf("unverified credential: %d, want 401", code)
	}
}

// A request whose upstream failed yields an Access too.
func TestUpstreamFailureRecorded(t *testing.T) {
	col := &collector{}
	rec := NewRecording("test", col, 8, NewRecordingMetrics(nil))
	f := recordFrontWith(t, answerYAML, Deps{Recordings: []*Recording{rec}})
	f.client.Dial = func(string) (net.Conn, error) { return nil, errors.New("refused") }
	ctx := new(fasthttp.RequestCtx)
	if code := getWith(t, f, ctx, "/v1/users/1", labBearer(t, "80")); code != 502 {
		t.Fatalf("status %d, want 502", code)
	}
	if code := getWith(t, f, ctx, "/elsewhere", ""); code != 502 {
		t.Fatalf("status %d, want 502", code)
	}
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(col.accs) != 2 || col.accs[0].Status != 502 || col.accs[0].Rule != "upstream" || col.accs[0].Identity.Account != "80" ||
		col.accs[0].Route != "GET /v1/users/{id}" {
		t.Fatalf("Accesses %+v, want a 502 by rule upstream on the route", col.accs)
	}
	// The route not mapped yields one too (its body names the request id,
	// which leads to explain), with no route.
	if a := col.accs[1]; a.Status != 502 || a.Rule != "upstream" || a.Route != "" || a.RequestID == "" {
		t.Fatalf("Access of the route not mapped %+v, want a 502 by rule upstream, no route", a)
	}
}

func slicesEqual(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// snap is a transient recorder: it copies what it checks of each Access
// (strings cloned: they may share the Access's memory) and keeps nothing
// of it but the pointer's value (never followed after Record). hold, when set, makes the first Record announce its Access on
// fed and wait for hold to close before reading it.
type snap struct {
	mu    sync.Mutex
	seen  []accSnap
	ptrs  map[*inspect.Access]int
	fed   chan *inspect.Access
	hold  chan struct{}
	first bool
}

type accSnap struct {
	id, lookup, rec string
	status          int
	served          inspect.ClassSet
}

func (s *snap) Transient() bool { return true }

func (s *snap) Record(a *inspect.Access) {
	if s.hold != nil && !s.first {
		s.first = true
		s.fed <- a
		<-s.hold
	}
	x := accSnap{id: strings.Clone(a.RequestID), lookup: strings.Clone(a.Lookup), status: a.Status}
	if len(a.Records) > 0 {
		x.rec, x.served = strings.Clone(a.Records[0].ID), a.Records[0].Served()
	}
	s.mu.Lock()
	s.seen = append(s.seen, x)
	if s.ptrs == nil {
		s.ptrs = map[*inspect.Access]int{}
	}
	s.ptrs[a]++
	s.mu.Unlock()
}

// With transient recorders only, an Access's memory is reused once every
// recorder is done with it, and never before: a recorder still holding
// the first Access reads it as it was while later requests are served and
// their Accesses recorded by a faster recorder.
func TestTransientRecordersReuseAccesses(t *testing.T) {
	fast := &snap{}
	slow := &snap{fed: make(chan *inspect.Access, 1), hold: make(chan struct{})}
	rm := NewRecordingMetrics(nil)
	fr, sr := NewRecording("fast", fast, 8192, rm), NewRecording("slow", slow, 8192, rm) // room for every request below
	f := recordFrontWith(t, strings.Replace(answerYAML, "burst: 3", "burst: 100000", 1), Deps{Recordings: []*Recording{fr, sr}})
	if !f.g.cur.Load().reuse {
		t.Fatal("pipeline with transient recorders only does not reuse Accesses")
	}
	ctx := new(fasthttp.RequestCtx)
	auth := labBearer(t, "81")
	const n = 300
	for i := range n {
		id := strconv.Itoa(1 + i%97)
		if code := getWith(t, f, ctx, "/v1/users/"+id, auth); code != 200 {
			t.Fatalf("request %d: %d", i, code)
		}
		if i == 0 {
			<-slow.fed // the slow recorder holds the first Access from here on
		}
	}
	close(slow.hold)
	// Once the slow recorder lets go, boxes come back: requests go on
	// until one is reused (a bound, not a time: the recordings run when
	// the scheduler lets them).
	reused := false
	for i := n; i < 20*n && !reused; i++ {
		if code := getWith(t, f, ctx, "/v1/users/"+strconv.Itoa(1+i%97), auth); code != 200 {
			t.Fatalf("request %d: %d", i, code)
		}
		fast.mu.Lock()
		reused = len(fast.ptrs) < len(fast.seen)
		fast.mu.Unlock()
	}
	for _, rc := range []*Recording{fr, sr} {
		if err := rc.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if !reused {
		t.Errorf("%d Accesses in %d boxes: none reused", len(fast.seen), len(fast.ptrs))
	}
	for name, s := range map[string]*snap{"fast": fast, "slow": slow} {
		if len(s.seen) != len(fast.seen) || len(s.seen) < n {
			t.Fatalf("%s recorder: %d Accesses, want %d (at least %d)", name, len(s.seen), len(fast.seen), n)
		}
		for i, x := range s.seen {
			want := strconv.Itoa(1 + i%97)
			if x.id != fast.seen[i].id || x.lookup != want || x.rec != want || x.status != 200 || x.served > 1 {
				t.Fatalf("%s recorder, Access %d: %+v, want request %s, look-up and record %s", name, i, x, fast.seen[i].id, want)
			}
		}
	}
}

// One recorder that keeps Accesses (not transient) turns reuse off: what
// it kept stays as it was.
func TestKeepingRecorderStopsReuse(t *testing.T) {
	col := &collector{}
	rm := NewRecordingMetrics(nil)
	recs := []*Recording{NewRecording("snap", &snap{}, 64, rm), NewRecording("keep", col, 64, rm)}
	f := recordFrontWith(t, strings.Replace(answerYAML, "burst: 3", "burst: 100000", 1), Deps{Recordings: recs})
	if f.g.cur.Load().reuse {
		t.Fatal("pipeline reuses Accesses that a recorder keeps")
	}
	ctx := new(fasthttp.RequestCtx)
	auth := labBearer(t, "82")
	for i := range 50 {
		if code := getWith(t, f, ctx, "/v1/users/"+strconv.Itoa(1+i), auth); code != 200 {
			t.Fatalf("request %d: %d", i, code)
		}
	}
	for _, rc := range recs {
		if err := rc.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for i, a := range col.accs {
		if want := strconv.Itoa(1 + i); a.Lookup != want || a.Records[0].ID != want {
			t.Fatalf("kept Access %d: look-up %q record %q, want %s", i, a.Lookup, a.Records[0].ID, want)
		}
	}
}
