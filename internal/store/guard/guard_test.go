package guard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/warden-gw/warden/internal/store"
	"github.com/warden-gw/warden/internal/store/redis"
	"github.com/warden-gw/warden/internal/store/redis/redistest"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func newMetrics(t *testing.T) *Metrics {
	t.Helper()
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	return m
}

// failing is a store whose Admit fails while down is set: the one fault a
// real Redis cannot be told to produce on a given call.
type failing struct {
	store.Store
	down  atomic.Bool
	calls atomic.Int64
}

func (f *failing) Admit(ctx context.Context, now time.Time, req *store.AdmitRequest) (store.AdmitResult, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return store.AdmitResult{}, fmt.Errorf("test: %w", store.ErrUnavailable)
	}
	return store.AdmitResult{Limits: []store.LimitResult{{Allowed: false}}}, nil
}

func TestBreakerTransitions(t *testing.T) {
	f := &failing{}
	m := newMetrics(t)
	cfg := Config{Mode: ModeClosed, Timeout: time.Second, BreakerFailures: 3, BreakerCooldown: time.Minute}
	g, err := New(f, cfg, m, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	clock := t0
	g.now = func() time.Time { return clock }
	req := &store.AdmitRequest{Limits: []store.LimitRequest{{Key: "k", Interval: time.Second, Burst: 1, Cost: 1}}}
	steps := []struct {
		name      string
		down      bool
		advance   time.Duration
		wantErr   bool
		wantCall  bool // the call reached the store
		wantState State
	}{
		{"healthy", false, 0, false, true, Closed},
		{"failure 1", true, 0, true, true, Closed},
		{"failure 2", true, 0, true, true, Closed},
		{"failure 3 opens", true, 0, true, true, Open},
		{"open: store not called", true, 0, true, false, Open},
		{"still cooling down", false, 59 * time.Second, true, false, Open},
		{"probe fails, open again", true, time.Second, true, true, Open},
		{"cool-down restarts", false, 30 * time.Second, true, false, Open},
		{"probe succeeds, closed", false, 30 * time.Second, false, true, Closed},
		{"one failure does not open", true, 0, true, true, Closed},
		{"success resets the count", false, 0, false, true, Closed},
		{"failure after reset", true, 0, true, true, Closed},
	}
	for _, st := range steps {
		f.down.Store(st.down)
		clock = clock.Add(st.advance)
		before := f.calls.Load()
		res, err := g.Admit(context.Background(), t0, req)
		if (err != nil) != st.wantErr {
			t.Fatalf("%s: err %v, want error %v", st.name, err, st.wantErr)
		}
		if err != nil && (!errors.Is(err, store.ErrUnavailable) || errors.Is(err, ErrFailedOpen) || len(res.Limits) != 0) {
			t.Fatalf("%s: closed mode returned %+v, %v; want no result and ErrUnavailable", st.name, res, err)
		}
		if called := f.calls.Load() > before; called != st.wantCall {
			t.Fatalf("%s: store called %v, want %v", st.name, called, st.wantCall)
		}
		if s := g.State(); s != st.wantState {
			t.Fatalf("%s: state %v, want %v", st.name, s, st.wantState)
		}
	}
	if got := value(m.changes.WithLabelValues("open")); got != 2 {
		t.Errorf("transitions to open: %v, want 2", got)
	}
	if got := value(m.errors.WithLabelValues("admit")); got != 6 {
		t.Errorf("admit errors: %v, want 6", got)
	}
	if got := value(m.rejected.WithLabelValues("admit")); got != 3 {
		t.Errorf("breaker rejections: %v, want 3", got)
	}
}

func TestFailOpenResults(t *testing.T) {
	f := &failing{}
	f.down.Store(true)
	m := newMetrics(t)
	cfg := Config{Mode: ModeOpen, Timeout: time.Second, BreakerFailures: 100, BreakerCooldown: time.Second}
	g, err := New(f, cfg, m, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	req := &store.AdmitRequest{Limits: []store.LimitRequest{{Key: "a", Interval: time.Second, Burst: 1}, {Key: "b", Interval: time.Second, Burst: 1}}}
	res, err := g.Admit(context.Background(), t0, req)
	if !errors.Is(err, ErrFailedOpen) || errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("err %v: want ErrFailedOpen and not ErrUnavailable", err)
	}
	if len(res.Limits) != 2 || !res.Limits[0].Allowed || !res.Limits[1].Allowed || res.Ban != nil {
		t.Fatalf("fail-open result %+v, want both limits allowed", res)
	}
	if got := value(m.failedOpen.WithLabelValues("admit")); got != 1 {
		t.Errorf("failed-open admits %v, want 1", got)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"defaults are valid", Config{}, ""},
		{"bad mode", Config{Mode: "half"}, `mode: "half" is neither "open" nor "closed"`},
		{"negative timeout", Config{Timeout: -1}, "timeout: -1ns must be positive"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.SetDefaults()
			err := c.cfg.Validate()
			if got := fmt.Sprint(err); (c.want == "" && err != nil) || (c.want != "" && got != c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

// TestRedisKilledUnderLoad kills and restarts a real redis-server while
// workers admit and spend through a guard, in both modes: decisions follow
// the mode, the breaker opens, and it closes by itself once Redis is back.
func TestRedisKilledUnderLoad(t *testing.T) {
	for _, mode := range []string{ModeOpen, ModeClosed} {
		t.Run(mode, func(t *testing.T) {
			srv := redistest.Start(t)
			rcfg := redis.Config{Addrs: []string{srv.Addr()}, DialTimeout: 200 * time.Millisecond}
			rcfg.SetDefaults()
			rs, err := redis.New(context.Background(), rcfg, redis.Options{})
			if err != nil {
				t.Fatalf("redis.New: %v", err)
			}
			m := newMetrics(t)
			g, err := New(rs, Config{Mode: mode, Timeout: 300 * time.Millisecond, BreakerFailures: 3, BreakerCooldown: 50 * time.Millisecond}, m, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()

			var phase atomic.Int32 // 0 up, 1 down, 2 back
			var ok, failedOpen, refused [4]atomic.Int64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Go(func() {
					for i := 0; i < 200_000; i++ { // bounded; stop ends it sooner
						select {
						case <-stop:
							return
						default:
						}
						p := phase.Load()
						req := &store.AdmitRequest{Limits: []store.LimitRequest{
							{Key: fmt.Sprintf("w%d", w), Interval: time.Microsecond, Burst: 1 << 20, Cost: 1},
							{Key: "shared", Interval: time.Microsecond, Burst: 1 << 20, Cost: 1},
						}}
						res, err := g.Admit(context.Background(), time.Now(), req)
						if phase.Load() != p {
							p = 3 // the call spanned a kill or a restart
						}
						switch {
						case err == nil:
							if len(res.Limits) != 2 {
								t.Errorf("admit: %d results", len(res.Limits))
								return
							}
							ok[p].Add(1)
						case errors.Is(err, ErrFailedOpen):
							if mode != ModeOpen || len(res.Limits) != 2 || !res.Limits[0].Allowed || !res.Limits[1].Allowed {
								t.Errorf("mode %s: failed open with %+v", mode, res)
								return
							}
							failedOpen[p].Add(1)
						case errors.Is(err, store.ErrUnavailable):
							if mode != ModeClosed || len(res.Limits) != 0 {
								t.Errorf("mode %s: refused with %+v, %v", mode, res, err)
								return
							}
							refused[p].Add(1)
						default:
							t.Errorf("admit: unexpected error %v", err)
							return
						}
						if i%8 == 0 {
							_, err := g.Spend(context.Background(), time.Now(), []store.SpendRequest{{Key: "b", Window: time.Hour, Limit: 10, Subjects: []uint64{uint64(i)}}})
							if err != nil && !errors.Is(err, ErrFailedOpen) && !errors.Is(err, store.ErrUnavailable) {
								t.Errorf("spend: unexpected error %v", err)
								return
							}
						}
					}
				})
			}
			waitFor := func(what string, cond func() bool) {
				t.Helper()
				deadline := time.Now().Add(20 * time.Second)
				for !cond() {
					if time.Now().After(deadline) {
						close(stop)
						wg.Wait()
						t.Fatalf("%s: not within 20s (state %v)", what, g.State())
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			waitFor("decisions while up", func() bool { return ok[0].Load() > 100 })
			phase.Store(1)
			srv.Kill()
			waitFor("breaker opens", func() bool { return g.State() == Open })
			waitFor("decisions while down", func() bool { return failedOpen[1].Load()+refused[1].Load() > 100 })
			srv.Restart()
			phase.Store(2)
			waitFor("breaker closes", func() bool { return g.State() == Closed && ok[2].Load() > 100 })
			close(stop)
			wg.Wait()

			if mode == ModeOpen && (failedOpen[1].Load() == 0 || refused[1].Load() != 0) {
				t.Errorf("open mode while down: %d failed open, %d refused; want only failed open", failedOpen[1].Load(), refused[1].Load())
			}
			if mode == ModeClosed && (refused[1].Load() == 0 || failedOpen[1].Load() != 0) {
				t.Errorf("closed mode while down: %d refused, %d failed open; want only refused", refused[1].Load(), failedOpen[1].Load())
			}
			if failedOpen[0].Load()+refused[0].Load() != 0 {
				t.Errorf("before the kill: %d failed open, %d refused; want none", failedOpen[0].Load(), refused[0].Load())
			}
			// The first failures may all be Spends: Admits decided from the
			// Redis store's leases do not reach Redis until its ban mirror
			// sees the connection go (well under a millisecond), and three
			// failed Spends open the breaker for both.
			errs := value(m.errors.WithLabelValues("admit")) + value(m.errors.WithLabelValues("spend"))
			if errs == 0 || value(m.rejected.WithLabelValues("admit")) == 0 {
				t.Errorf("store errors (%v) or breaker rejections (%v) not counted", errs, value(m.rejected.WithLabelValues("admit")))
			}
			if got := value(m.changes.WithLabelValues("closed")); got < 1 {
				t.Errorf("transitions to closed: %v, want at least 1", got)
			}
			wantOpen := 0.0
			if mode == ModeOpen {
				wantOpen = float64(failedOpen[0].Load() + failedOpen[1].Load() + failedOpen[2].Load() + failedOpen[3].Load())
			}
			if got := value(m.failedOpen.WithLabelValues("admit")); got != wantOpen {
				t.Errorf("failed-open admits metric %v, want %v", got, wantOpen)
			}
		})
	}
}

// TestRedisSlow makes a real Redis unresponsive (DEBUG SLEEP): calls time
// out at the guard's timeout, the breaker opens, and it closes once Redis
// answers again.
func TestRedisSlow(t *testing.T) {
	srv := redistest.Start(t)
	rcfg := redis.Config{Addrs: []string{srv.Addr()}}
	rcfg.SetDefaults()
	rs, err := redis.New(context.Background(), rcfg, redis.Options{})
	if err != nil {
		t.Fatalf("redis.New: %v", err)
	}
	m := newMetrics(t)
	g, err := New(rs, Config{Mode: ModeClosed, Timeout: 50 * time.Millisecond, BreakerFailures: 2, BreakerCooldown: 20 * time.Millisecond}, m, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	req := &store.AdmitRequest{Limits: []store.LimitRequest{{Key: "slow", Interval: time.Microsecond, Burst: 1 << 20, Cost: 1}}}
	// Before Redis is slowed, an Admit answers: the first call also loads
	// the script and warms the connection, which on a loaded machine can
	// take longer than the 50 ms timeout, so it may take a few tries.
	var before error
	for range 20 {
		if _, before = g.Admit(context.Background(), time.Now(), req); before == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if before != nil {
		t.Fatalf("admit before: %v", before)
	}
	slept := make(chan error, 1)
	go func() { _, err := srv.Do("DEBUG", "SLEEP", "1"); slept <- err }()
	timedOut := false
	for range 200 {
		_, err := g.Admit(context.Background(), time.Now(), req)
		if errors.Is(err, store.ErrUnavailable) && errors.Is(err, context.DeadlineExceeded) {
			timedOut = true
		}
		if timedOut && g.State() == Open {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !timedOut || g.State() != Open {
		t.Fatalf("slow Redis: timed out %v, state %v; want a timeout and an open breaker", timedOut, g.State())
	}
	if err := <-slept; err != nil {
		t.Fatalf("DEBUG SLEEP: %v", err)
	}
	for range 400 {
		if _, err := g.Admit(context.Background(), time.Now(), req); err == nil && g.State() == Closed {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("breaker did not close after Redis answered again (state %v)", g.State())
}

// value reads a counter or gauge.
func value(c prometheus.Metric) float64 {
	var d dto.Metric
	if err := c.Write(&d); err != nil {
		return -1
	}
	if d.Counter != nil {
		return d.Counter.GetValue()
	}
	return d.Gauge.GetValue()
}
