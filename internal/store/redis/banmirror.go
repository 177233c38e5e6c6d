package redis

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/warden-gw/warden/internal/store"
)

// The ban mirror (see doc.go, "Leases"): every ban, copied from Redis, so
// that a request is judged without a round trip. PutBan and RemoveBan
// publish a notice on P{bans}:n in the same script that writes; each Store
// subscribes and reloads on every notice. The mirror is current only while
// subscribed and loaded since the latest notice: while it is not (Redis
// unreachable, a reload pending), every Admit goes to Redis as before.
type banMirror struct {
	subscribed atomic.Bool
	notices    atomic.Int64 // notices (and subscriptions) seen
	loaded     atomic.Int64 // notices the mirror was loaded after; -1: never
	bans       atomic.Pointer[map[store.BanKey]store.Ban]
	kick       chan struct{} // a reload is wanted
	ready      chan struct{} // closed at the first current load
	readyOnce  atomic.Bool
}

const (
	// banReload reloads the mirror even without a notice: the backstop
	// for a notice lost on a reconnect race, and for bans written by a
	// gateway that does not publish (a version before the mirror).
	banReload = 5 * time.Second
	// banMirrorWait bounds how long New waits for the first load.
	banMirrorWait = time.Second
)

func newBanMirror() *banMirror {
	m := &banMirror{kick: make(chan struct{}, 1), ready: make(chan struct{})}
	m.loaded.Store(-1)
	return m
}

// current reports whether the mirror holds every ban Redis holds, as of
// the latest notice.
func (m *banMirror) current() bool {
	return m.subscribed.Load() && m.loaded.Load() == m.notices.Load()
}

func (m *banMirror) notice() {
	m.notices.Add(1)
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// match returns the first of keys banned at now (µs), or nil.
func (m *banMirror) match(keys []store.BanKey, now int64) *store.Ban {
	p := m.bans.Load()
	if p == nil || len(*p) == 0 {
		return nil
	}
	for _, k := range keys {
		if b, ok := (*p)[k]; ok && banUntil(b) > now {
			return &b
		}
	}
	return nil
}

// watchBans keeps the subscription to the ban notices, resubscribing
// after a lost connection, until ctx ends.
func (s *Store) watchBans(ctx context.Context) {
	wait := retryMin
	for ctx.Err() == nil {
		hctx := rueidis.WithOnSubscriptionHook(ctx, func(sub rueidis.PubSubSubscription) {
			if sub.Kind == "subscribe" {
				s.mirror.subscribed.Store(true)
				s.mirror.notice() // load now: bans may have changed while away
			}
		})
		err := s.client.Receive(hctx, s.client.B().Subscribe().Channel(s.bansN).Build(), func(rueidis.PubSubMessage) {
			s.mirror.notice()
		})
		s.mirror.subscribed.Store(false)
		if ctx.Err() != nil {
			return
		}
		s.log.Debug("redis store: ban notices unsubscribed; admits go to Redis until resubscribed", slog.String("error", errString(err)))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, retryMax)
	}
}

// reloadBans loads the mirror on every notice and every banReload.
func (s *Store) reloadBans(ctx context.Context) {
	tick := time.NewTicker(banReload)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.mirror.kick:
		case <-tick.C:
			if !s.mirror.subscribed.Load() {
				continue
			}
		}
		n := s.mirror.notices.Load()
		bans, err := s.loadBans(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Debug("redis store: ban mirror reload failed; admits go to Redis until it succeeds", slog.String("error", err.Error()))
			select {
			case <-ctx.Done():
				return
			case <-time.After(retryMin):
			}
			s.mirror.notice()
			continue
		}
		s.mirror.bans.Store(&bans)
		s.mirror.loaded.Store(n)
		if s.mirror.current() && s.mirror.readyOnce.CompareAndSwap(false, true) {
			close(s.mirror.ready)
		}
	}
}

// loadBans reads every ban (expired ones too: match judges by now).
func (s *Store) loadBans(ctx context.Context) (map[store.BanKey]store.Ban, error) {
	ctx, cancel := context.WithTimeout(ctx, max(s.readTimeout, time.Second))
	defer cancel()
	raws, err := s.client.Do(ctx, s.client.B().Hvals().Key(s.bansD).Build()).AsStrSlice()
	if err != nil {
		return nil, unavailable(err)
	}
	out := make(map[store.BanKey]store.Ban, len(raws))
	for _, raw := range raws {
		var b store.Ban
		if err := json.Unmarshal([]byte(raw), &b); err != nil {
			return nil, err
		}
		out[b.Key()] = b
	}
	return out, nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
