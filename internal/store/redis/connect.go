package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/warden-gw/warden/internal/store"
)

// Bounds of the background reconnect of a store Connect started before Redis
// could be reached.
const (
	retryMin = 100 * time.Millisecond
	retryMax = 5 * time.Second
)

// Connect opens the store as New does, except when Redis cannot be reached
// yet (nothing listens, no route, the dial or handshake times out): then it
// returns at once a store whose every call fails with store.ErrUnavailable,
// and keeps connecting in the background until it succeeds, ctx ends or the
// store is closed. A gateway started during a Redis outage thus serves in
// its failure mode (open: admit; closed: 503) and recovers by itself, as it
// does from an outage that begins later. Every other error (a refused
// password, an untrusted certificate, a bad config) is returned: retrying
// cannot mend it.
func Connect(ctx context.Context, cfg Config, opts Options) (store.Store, error) {
	s, err := New(ctx, cfg, opts)
	if err == nil {
		return s, nil
	}
	if !unreachable(err) {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log.Warn("redis: unreachable at start; serving in the failure mode and connecting in the background", slog.String("error", err.Error()))
	ctx, cancel := context.WithCancel(ctx)
	p := &pending{cancel: cancel, done: make(chan struct{})}
	p.last.Store(&err)
	go p.connect(ctx, cfg, opts, log)
	return p, nil
}

// unreachable reports whether a connect error may be Redis not being there
// yet, rather than a refusal that retrying cannot change.
func unreachable(err error) bool {
	var dns *net.DNSError
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.As(err, &dns):
		return true
	case errors.As(err, &ne) && ne.Timeout():
		return true
	}
	return false
}

// pending stands in for a Store until the background connect succeeds, then
// hands every call to it.
type pending struct {
	cur    atomic.Pointer[Store]
	last   atomic.Pointer[error] // the latest connect error
	cancel context.CancelFunc
	done   chan struct{} // closed when connect returns
	once   sync.Once
}

func (p *pending) connect(ctx context.Context, cfg Config, opts Options, log *slog.Logger) {
	defer close(p.done)
	wait := retryMin
	for attempt := 1; ; attempt++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		s, err := New(ctx, cfg, opts)
		if err == nil {
			p.cur.Store(s)
			log.Info("redis: connected", slog.Int("attempts", attempt+1))
			return
		}
		p.last.Store(&err)
		if attempt&(attempt-1) == 0 { // 1st, 2nd, 4th, 8th...: a trace without a flood
			log.Warn("redis: still unreachable", slog.Int("attempts", attempt+1), slog.String("error", err.Error()))
		}
		wait = min(2*wait, retryMax)
	}
}

// store returns the connected store, or the error every call gets until then.
func (p *pending) store() (*Store, error) {
	if s := p.cur.Load(); s != nil {
		return s, nil
	}
	return nil, fmt.Errorf("redis: not connected yet: %w", unavailable(*p.last.Load()))
}

func (p *pending) Admit(ctx context.Context, now time.Time, req *store.AdmitRequest) (store.AdmitResult, error) {
	s, err := p.store()
	if err != nil {
		return store.AdmitResult{}, err
	}
	return s.Admit(ctx, now, req)
}

// AdmitLocal is the connected Store's, so a gateway started while Redis was
// away decides from leases too once it is there (the guard asks it first).
func (p *pending) AdmitLocal(now time.Time, req *store.AdmitRequest) (store.AdmitResult, bool) {
	if s := p.cur.Load(); s != nil {
		return s.AdmitLocal(now, req)
	}
	return store.AdmitResult{}, false
}

func (p *pending) Spend(ctx context.Context, now time.Time, reqs []store.SpendRequest) ([]store.SpendResult, error) {
	s, err := p.store()
	if err != nil {
		return nil, err
	}
	return s.Spend(ctx, now, reqs)
}

func (p *pending) PutBan(ctx context.Context, b store.Ban) error {
	s, err := p.store()
	if err != nil {
		return err
	}
	return s.PutBan(ctx, b)
}

func (p *pending) RemoveBan(ctx context.Context, k store.BanKey) (bool, error) {
	s, err := p.store()
	if err != nil {
		return false, err
	}
	return s.RemoveBan(ctx, k)
}

func (p *pending) ListBans(ctx context.Context, now time.Time) ([]store.Ban, error) {
	s, err := p.store()
	if err != nil {
		return nil, err
	}
	return s.ListBans(ctx, now)
}

func (p *pending) Link(ctx context.Context, now time.Time, key string, ids []uint64, pv store.Provenance, answer uint32, ttl time.Duration) error {
	s, err := p.store()
	if err != nil {
		return err
	}
	return s.Link(ctx, now, key, ids, pv, answer, ttl)
}

func (p *pending) Linked(ctx context.Context, now time.Time, key string, ids []uint64, fan *store.Fanout, dst []store.Provenance) ([]store.Provenance, error) {
	s, err := p.store()
	if err != nil {
		return nil, err
	}
	return s.Linked(ctx, now, key, ids, fan, dst)
}

// Ping is the connected Store's; until then it fails as every call does.
func (p *pending) Ping(ctx context.Context) error {
	s, err := p.store()
	if err != nil {
		return err
	}
	return s.Ping(ctx)
}

// Close stops the background connect and closes the store if it connected.
func (p *pending) Close() error {
	p.once.Do(p.cancel)
	<-p.done
	if s := p.cur.Load(); s != nil {
		return s.Close()
	}
	return nil
}
