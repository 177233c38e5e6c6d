package guard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/store"
)

var _ store.Store = (*Guard)(nil)

// ErrFailedOpen marks a permissive result returned because the store failed
// in "open" mode. It never matches store.ErrUnavailable.
var ErrFailedOpen = errors.New("store failed open")

// Modes.
const (
	ModeOpen   = "open"
	ModeClosed = "closed"
)

// Config is the fault handling around the store (the `store` section's
// failure settings; the lead decides where they sit in the file).
type Config struct {
	// Mode is "open" (admit on store failure, counted) or "closed" (refuse
	// with 503). Default "closed".
	Mode string `yaml:"mode"`
	// Timeout bounds each store call. Default 250ms.
	Timeout time.Duration `yaml:"timeout"`
	// BreakerFailures consecutive failures open the breaker. Default 5.
	BreakerFailures int `yaml:"breaker_failures"`
	// BreakerCooldown is how long an open breaker keeps calls off the store
	// before probing. Default 2s.
	BreakerCooldown time.Duration `yaml:"breaker_cooldown"`
}

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.Mode == "" {
		c.Mode = ModeClosed
	}
	if c.Timeout == 0 {
		c.Timeout = 250 * time.Millisecond
	}
	if c.BreakerFailures == 0 {
		c.BreakerFailures = 5
	}
	if c.BreakerCooldown == 0 {
		c.BreakerCooldown = 2 * time.Second
	}
}

// Validate reports every problem, each starting with its YAML key.
func (c *Config) Validate() error {
	var errs []error
	if c.Mode != ModeOpen && c.Mode != ModeClosed {
		errs = append(errs, fmt.Errorf("mode: %q is neither %q nor %q", c.Mode, ModeOpen, ModeClosed))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("timeout: %v must be positive", c.Timeout))
	}
	if c.BreakerFailures < 1 {
		errs = append(errs, fmt.Errorf("breaker_failures: %d must be at least 1", c.BreakerFailures))
	}
	if c.BreakerCooldown <= 0 {
		errs = append(errs, fmt.Errorf("breaker_cooldown: %v must be positive", c.BreakerCooldown))
	}
	return errors.Join(errs...)
}

// Metrics are the guard's Prometheus metrics.
type Metrics struct {
	errors     *prometheus.CounterVec
	rejected   *prometheus.CounterVec
	failedOpen *prometheus.CounterVec
	state      prometheus.Gauge
	changes    *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them on reg. Call it once
// per process; pass the result to every New.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_store_errors_total",
			Help: "Store calls that failed (backend error or timeout), by operation.",
		}, []string{"op"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_store_breaker_rejected_total",
			Help: "Store calls not made because the circuit breaker was open, by operation.",
		}, []string{"op"}),
		failedOpen: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_store_failed_open_total",
			Help: "Decisions answered permissively because the store failed in open mode, by operation.",
		}, []string{"op"}),
		state: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "warden_store_breaker_state",
			Help: "Store circuit breaker: 0 closed, 1 open, 2 half-open.",
		}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_store_breaker_transitions_total",
			Help: "Store circuit breaker state changes, by new state.",
		}, []string{"state"}),
	}
	for _, c := range []prometheus.Collector{m.errors, m.rejected, m.failedOpen, m.state, m.changes} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("guard: register metrics: %w", err)
		}
	}
	return m, nil
}

// State is the breaker's state.
type State int

// Breaker states.
const (
	Closed State = iota
	Open
	HalfOpen
)

func (s State) String() string {
	switch s {
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return "closed"
}

// Guard is a store.Store with fault handling. It is safe for concurrent use.
type Guard struct {
	inner store.Store
	cfg   Config
	m     *Metrics
	log   *slog.Logger
	now   func() time.Time // the breaker's clock; wall time outside tests

	mu       sync.Mutex
	state    State
	fails    int
	openedAt time.Time
	probing  bool
	lastErr  string
	// tripped mirrors state != Closed for the lock-free local path.
	tripped atomic.Bool
}

// New wraps inner. cfg must be defaulted and valid; m comes from NewMetrics;
// log may be nil (slog.Default()).
func New(inner store.Store, cfg Config, m *Metrics, log *slog.Logger) (*Guard, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("guard: config: %w", err)
	}
	if m == nil {
		return nil, errors.New("guard: no metrics (use NewMetrics)")
	}
	if log == nil {
		log = slog.Default()
	}
	m.state.Set(float64(Closed))
	return &Guard{inner: inner, cfg: cfg, m: m, log: log, now: time.Now}, nil
}

// State reports the breaker's state now.
func (g *Guard) State() State {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.state
}

// setState changes state and says so; callers hold g.mu.
func (g *Guard) setState(s State) {
	if s == g.state {
		return
	}
	from := g.state
	g.state = s
	g.tripped.Store(s != Closed)
	g.m.state.Set(float64(s))
	g.m.changes.WithLabelValues(s.String()).Inc()
	switch s {
	case Open:
		g.log.Warn("store circuit breaker opened: calls skip the store for the cool-down",
			"from", from.String(), "consecutive_failures", g.fails, "cooldown", g.cfg.BreakerCooldown, "mode", g.cfg.Mode, "err", g.lastErr)
	case HalfOpen:
		g.log.Info("store circuit breaker half-open: probing the store")
	case Closed:
		g.log.Info("store circuit breaker closed: store recovered", "from", from.String())
	}
}

// acquire says whether a call may go to the store now.
func (g *Guard) acquire() (ok, probe bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch g.state {
	case Closed:
		return true, false
	case Open:
		if g.now().Sub(g.openedAt) < g.cfg.BreakerCooldown {
			return false, false
		}
		g.setState(HalfOpen)
	}
	if g.probing {
		return false, false
	}
	g.probing = true
	return true, true
}

// release records a call's outcome: failed (a store failure), or neither
// success nor failure when the caller went away (counted false, skip true).
func (g *Guard) release(probe, failed, skip bool, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if probe {
		g.probing = false
	}
	switch {
	case skip:
	case failed:
		g.fails++
		g.lastErr = err.Error()
		if g.state == HalfOpen || (g.state == Closed && g.fails >= g.cfg.BreakerFailures) {
			g.openedAt = g.now()
			g.setState(Open)
		}
	default:
		g.fails = 0
		if g.state != Closed && probe {
			g.setState(Closed)
		}
	}
}

// call runs f with the per-call timeout under the breaker. It returns
// errUnavail (wrapping store.ErrUnavailable) when the store failed or the
// breaker refused the call; other errors (invalid requests, the caller's
// own cancellation) as they are.
func (g *Guard) call(ctx context.Context, op string, f func(ctx context.Context) error) (unavailable bool, err error) {
	ok, probe := g.acquire()
	if !ok {
		g.m.rejected.WithLabelValues(op).Inc()
		return true, fmt.Errorf("guard: %s: circuit breaker open: %w", op, store.ErrUnavailable)
	}
	cctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
	err = f(cctx)
	cancel()
	if err == nil {
		g.release(probe, false, false, nil)
		return false, nil
	}
	if ctx.Err() != nil {
		g.release(probe, false, true, nil)
		return false, err
	}
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		g.m.errors.WithLabelValues(op).Inc()
		g.release(probe, true, false, err)
		if !errors.Is(err, store.ErrUnavailable) {
			err = fmt.Errorf("%w: %w", store.ErrUnavailable, err)
		}
		return true, fmt.Errorf("guard: %s: %w", op, err)
	}
	g.release(probe, false, false, nil) // the store answered: it is up
	return false, err
}

// failOpen reports whether this failure is answered permissively, and the
// error to return with that answer.
func (g *Guard) failOpen(op string, err error) (bool, error) {
	if g.cfg.Mode != ModeOpen {
		return false, err
	}
	g.m.failedOpen.WithLabelValues(op).Inc()
	return true, fmt.Errorf("guard: %s: %w (cause: %v)", op, ErrFailedOpen, err)
}

// Pinger is a store that can say whether its backend answers.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Ping asks the inner store whether its backend answers, within the
// per-call timeout (nil when it cannot tell). It leaves the breaker and
// the failure counters alone: a readiness probe is no decision.
func (g *Guard) Ping(ctx context.Context) error {
	p, ok := g.inner.(Pinger)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, g.cfg.Timeout)
	defer cancel()
	return p.Ping(ctx)
}

// localAdmitter is a store that can decide some Admits without waiting on
// its backend (the Redis store's ban mirror and token leases).
type localAdmitter interface {
	AdmitLocal(now time.Time, req *store.AdmitRequest) (store.AdmitResult, bool)
}

// Admit decides under the guard; in open mode a failed store admits. A
// decision the store makes without its backend skips the per-call timeout
// and the breaker (it cannot fail or wait), unless the breaker is open.
func (g *Guard) Admit(ctx context.Context, now time.Time, req *store.AdmitRequest) (store.AdmitResult, error) {
	if la, ok := g.inner.(localAdmitter); ok && !g.tripped.Load() {
		if res, ok := la.AdmitLocal(now, req); ok {
			return res, nil
		}
	}
	var res store.AdmitResult
	unavail, err := g.call(ctx, "admit", func(ctx context.Context) (err error) {
		res, err = g.inner.Admit(ctx, now, req)
		return err
	})
	if !unavail {
		return res, err
	}
	open, err := g.failOpen("admit", err)
	if !open {
		return store.AdmitResult{}, err
	}
	res = store.AdmitResult{}
	if req != nil {
		res.Limits = make([]store.LimitResult, len(req.Limits))
		for i := range res.Limits {
			res.Limits[i].Allowed = true
		}
	}
	return res, err
}

// Spend decides under the guard; in open mode a failed store allows every
// subject (Count 0: unknown).
func (g *Guard) Spend(ctx context.Context, now time.Time, reqs []store.SpendRequest) ([]store.SpendResult, error) {
	var res []store.SpendResult
	unavail, err := g.call(ctx, "spend", func(ctx context.Context) (err error) {
		res, err = g.inner.Spend(ctx, now, reqs)
		return err
	})
	if !unavail {
		return res, err
	}
	open, err := g.failOpen("spend", err)
	if !open {
		return nil, err
	}
	res = make([]store.SpendResult, len(reqs))
	for i := range reqs {
		a := make([]bool, len(reqs[i].Subjects))
		for j := range a {
			a[j] = true
		}
		res[i] = store.SpendResult{Allowed: a}
	}
	return res, err
}

// Link records under the guard; in open mode a failure is ErrFailedOpen.
func (g *Guard) Link(ctx context.Context, now time.Time, key string, ids []uint64, p store.Provenance, answer uint32, ttl time.Duration) error {
	unavail, err := g.call(ctx, "link", func(ctx context.Context) error {
		return g.inner.Link(ctx, now, key, ids, p, answer, ttl)
	})
	if !unavail {
		return err
	}
	_, err = g.failOpen("link", err)
	return err
}

// Linked checks under the guard; in open mode a failed store reports every
// id as shown in a list (no unreferenced look-up is flagged, and no
// provenance better than the worst of a shown id is granted) and no open
// capped by the fan-out cap (its counts are in the store).
func (g *Guard) Linked(ctx context.Context, now time.Time, key string, ids []uint64, fan *store.Fanout, dst []store.Provenance) ([]store.Provenance, error) {
	var res []store.Provenance
	unavail, err := g.call(ctx, "linked", func(ctx context.Context) (err error) {
		res, err = g.inner.Linked(ctx, now, key, ids, fan, dst)
		return err
	})
	if !unavail {
		return res, err
	}
	open, err := g.failOpen("linked", err)
	if !open {
		return nil, err
	}
	res = append(dst[:0], make([]store.Provenance, len(ids))...)
	for i := range res {
		res[i] = store.List
	}
	if fan != nil {
		fan.Reset(len(ids))
	}
	return res, err
}

// PutBan never fails open.
func (g *Guard) PutBan(ctx context.Context, b store.Ban) error {
	_, err := g.call(ctx, "put_ban", func(ctx context.Context) error { return g.inner.PutBan(ctx, b) })
	return err
}

// RemoveBan never fails open.
func (g *Guard) RemoveBan(ctx context.Context, k store.BanKey) (bool, error) {
	var ok bool
	_, err := g.call(ctx, "remove_ban", func(ctx context.Context) (err error) {
		ok, err = g.inner.RemoveBan(ctx, k)
		return err
	})
	return ok, err
}

// ListBans never fails open.
func (g *Guard) ListBans(ctx context.Context, now time.Time) ([]store.Ban, error) {
	var bans []store.Ban
	_, err := g.call(ctx, "list_bans", func(ctx context.Context) (err error) {
		bans, err = g.inner.ListBans(ctx, now)
		return err
	})
	return bans, err
}

// Close closes the wrapped store.
func (g *Guard) Close() error { return g.inner.Close() }
