package detect

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"sync"
	"time"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/store"
)

// Shared is the detector's state in the store (store.Detections): on
// Redis, the counts and ban histories of every gateway in one place.
type Shared interface {
	Observe(ctx context.Context, obs []store.Observation) ([]int, error)
	Offend(ctx context.Context, now time.Time, k store.BanKey, durations []time.Duration) (store.Offence, error)
}

const (
	// flushEvery and flushMax bound the wait before an observation reaches
	// the store: a ban is at most this late (plus a round trip) after the
	// fleet's count crosses a limit, and Redis sees one call per flush.
	flushEvery = 50 * time.Millisecond
	flushMax   = 512
	// maxWaiting bounds the observations held while the store lags; past
	// it they are dropped (counted): this gateway's own counts keep them.
	maxWaiting = 4096
	// storeTimeout bounds one store call of the detector (the guard's own
	// timeout is usually shorter).
	storeTimeout = 2 * time.Second
)

// WithShared has the detector count and escalate in s as well as in its
// own process: every Access's observations go to s in batches (at most
// flushMax, at most flushEvery apart) off the recording goroutine, and a
// fleet-wide count past a limit bans like a local one. Escalation asks s,
// so a second offence on another gateway, or after a restart, gets the
// second duration. When s fails, the detector counts (metrics) and goes on
// deciding on its own counts. Close stops the flushing.
func WithShared(s Shared) Option {
	return func(d *Detector) {
		f := &fleet{s: s, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
		var b [8]byte
		_, _ = rand.Read(b[:]) // never fails (crypto/rand)
		f.base = binary.LittleEndian.Uint64(b[:])
		d.fleet = f
	}
}

// fleet sends observations to the shared store and judges its counts.
type fleet struct {
	s    Shared
	kick chan struct{}
	stop chan struct{}
	done chan struct{}
	once sync.Once
	// manual: no flushing goroutine; the caller flushes (tests).
	manual bool

	mu      sync.Mutex
	waiting []observed
	events  uint64    // members of counted events: base+events, unique in the fleet
	base    uint64    // drawn at random per process
	logged  time.Time // the latest store failure line, at most one per 10 s
}

// observed is one observation and what a count past its limit means.
type observed struct {
	store.Observation
	r     *rule
	facet identify.Facet
	value string
	acc   *inspect.Access
	// tally marks enumeration's counts (a windowed tally); the
	// observation of a never-shown id names its rule's tallies of
	// look-ups and of never-shown ones.
	tally              bool
	looksKey, unrefKey string
}

// key is a rule's set in the store for one facet value.
func (r *rule) key(part string, f identify.Facet, v string) string {
	return "detect:" + r.Name + ":" + part + ":" + f.String() + ":" + v
}

// event is a member no other event in the fleet has. Called with d.mu held.
func (f *fleet) event() uint64 {
	f.events++
	return f.base + f.events
}

// add queues observations (from Record) and wakes the flusher when a
// batch is full.
func (f *fleet) add(d *Detector, obs []observed) {
	if len(obs) == 0 {
		return
	}
	f.mu.Lock()
	room := maxWaiting - len(f.waiting)
	if room < len(obs) {
		d.m.dropped.Add(float64(len(obs) - max(room, 0)))
		obs = obs[:max(room, 0)]
	}
	f.waiting = append(f.waiting, obs...)
	full := len(f.waiting) >= flushMax
	f.mu.Unlock()
	if full {
		select {
		case f.kick <- struct{}{}:
		default:
		}
	}
}

// run flushes every flushEvery, or sooner when a batch is full, until
// Close; then once more.
func (f *fleet) run(d *Detector) {
	defer close(f.done)
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			f.flush(d)
			return
		case <-t.C:
		case <-f.kick:
		}
		f.flush(d)
	}
}

// flush sends what waits, flushMax observations per call, and bans on
// the counts past their limits. A failed call drops its batch (this
// gateway counted it already) and leaves the rest for the next tick.
func (f *fleet) flush(d *Detector) {
	// The tallies' latest counts, across batches: an Access's observations
	// may straddle two.
	var tallies map[string]int
	for {
		f.mu.Lock()
		n := min(len(f.waiting), flushMax)
		batch := make([]observed, n)
		copy(batch, f.waiting)
		rest := copy(f.waiting, f.waiting[n:])
		clear(f.waiting[rest:])
		f.waiting = f.waiting[:rest]
		f.mu.Unlock()
		if n == 0 {
			return
		}
		if tallies == nil {
			tallies = map[string]int{}
		}
		obs := make([]store.Observation, n)
		for i := range batch {
			obs[i] = batch[i].Observation
		}
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		counts, err := f.s.Observe(ctx, obs)
		cancel()
		d.m.calls.WithLabelValues("observe").Inc()
		if err != nil {
			f.failed(d, "observe", err)
			return
		}
		for _, fi := range d.judge(batch, counts, tallies) {
			d.ban(fi.acc, fi.firing)
		}
	}
}

// accFiring is a firing with the Access that made it.
type accFiring struct {
	firing
	acc *inspect.Access
}

// judge turns the fleet's counts past their rules' limits into firings.
// tallies holds the latest count of each tally seen in this flush.
func (d *Detector) judge(batch []observed, counts []int, tallies map[string]int) []accFiring {
	var out []accFiring
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := range batch {
		o, n := &batch[i], counts[i]
		r := o.r
		switch {
		case o.tally:
			tallies[o.Key] = n
			continue
		case n <= r.Limit:
			continue
		case r.Kind == Enumeration:
			// Its tallies went before it; absent (dropped while the store
			// lagged), the ratio is unknown and the next look-up judges.
			l, okL := tallies[o.looksKey]
			u, okU := tallies[o.unrefKey]
			if okL && okU && float64(u) >= r.Ratio*float64(l) {
				out = append(out, accFiring{firing{r: r, facet: o.facet, value: o.value, n: n, looks: l, unref: u, fleet: true}, o.acc})
			}
		case r.Kind == Cohort:
			for _, fi := range d.cohort(r, o.value, n, o.acc.Identity.Account, o.At.UnixNano()) {
				fi.fleet = true
				out = append(out, accFiring{fi, o.acc})
			}
		default:
			out = append(out, accFiring{firing{r: r, facet: o.facet, value: o.value, n: n, refusal: o.acc.Rule, fleet: true}, o.acc})
		}
	}
	return out
}

// offend asks the store for the offence of key at now.
func (f *fleet) offend(d *Detector, now time.Time, key store.BanKey) (store.Offence, error) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	o, err := f.s.Offend(ctx, now, key, d.cfg.BanDurations)
	d.m.calls.WithLabelValues("offend").Inc()
	if err != nil {
		f.failed(d, "offend", err)
	}
	return o, err
}

// failed counts a store failure and says so at most once per 10 s.
func (f *fleet) failed(d *Detector, op string, err error) {
	d.m.storeErrs.WithLabelValues(op).Inc()
	now := time.Now()
	f.mu.Lock()
	quiet := now.Sub(f.logged) < 10*time.Second
	if !quiet {
		f.logged = now
	}
	f.mu.Unlock()
	if !quiet {
		d.log.Warn("detect: shared store failed; deciding on this gateway's counts", slog.String("op", op), slog.Any("err", err))
	}
}

// Close stops sending to the shared store after one last flush. Without
// one it does nothing. Call it after the last Record.
func (d *Detector) Close() {
	if d.fleet == nil || d.fleet.manual {
		return
	}
	d.fleet.once.Do(func() { close(d.fleet.stop) })
	<-d.fleet.done
}
