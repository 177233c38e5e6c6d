package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/warden-gw/warden/internal/store"
)

// The ban mirror (see doc.go, "Leases"): every ban, copied from Redis, so
// that a request is judged without a round trip. PutBan and RemoveBan
// publish the ban's field on P{bans}:n from the script that writes; each
// Store subscribes and reads that one ban again on its notice (a detector
// banning many values must not make every gateway reload them all), and
// reads them all when it (re)subscribes and every banReload. The mirror is
// current only while subscribed and loaded since the latest notice: while
// it is not (Redis unreachable, a notice not yet applied), every Admit goes
// to Redis as before.
type banMirror struct {
	subscribed atomic.Bool
	notices    atomic.Int64 // notices (and subscriptions) seen
	loaded     atomic.Int64 // notices applied; -1: never loaded
	// bans is read lock-free by every request (sync.Map) and written by
	// the reloader alone: a whole reload swaps in a new map.
	bans      atomic.Pointer[sync.Map] // store.BanKey -> store.Ban
	mu        sync.Mutex
	fields    []string // notices' ban fields not yet applied; "" reads all
	kick      chan struct{}
	ready     chan struct{} // closed at the first current load
	readyOnce atomic.Bool
}

const (
	// banReload reads every ban even without a notice: the backstop for a
	// notice lost on a reconnect race, and for bans written by a gateway
	// that does not publish (a version before the mirror).
	banReload = 30 * time.Second
	// banMirrorWait bounds how long New waits for the first load.
	banMirrorWait = time.Second
)

func newBanMirror() *banMirror {
	m := &banMirror{kick: make(chan struct{}, 1), ready: make(chan struct{})}
	m.loaded.Store(-1)
	m.bans.Store(new(sync.Map))
	return m
}

// current reports whether the mirror holds every ban Redis holds, as of
// the latest notice.
func (m *banMirror) current() bool {
	return m.subscribed.Load() && m.loaded.Load() == m.notices.Load()
}

// notice records that the ban of field changed ("": any may have), so the
// mirror is not current until the reloader has read it again.
func (m *banMirror) notice(field string) {
	m.mu.Lock()
	m.fields = append(m.fields, field)
	m.notices.Add(1)
	m.mu.Unlock()
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// match returns the first of keys banned at now (µs), or nil.
func (m *banMirror) match(keys []store.BanKey, now int64) *store.Ban {
	bans := m.bans.Load()
	for _, k := range keys {
		if v, ok := bans.Load(k); ok {
			if b := v.(store.Ban); banUntil(b) > now {
				return &b
			}
		}
	}
	return nil
}

// watchBans keeps the subscription to the ban notices, resubscribing
// after a lost connection, until ctx ends.
func (s *Store) watchBans(ctx context.Context) {
	wait := retryMin
	for ctx.Err() == nil {
		start := time.Now()
		hctx := rueidis.WithOnSubscriptionHook(ctx, func(sub rueidis.PubSubSubscription) {
			if sub.Kind == "subscribe" {
				s.mirror.subscribed.Store(true)
				s.mirror.notice("") // read all: bans may have changed while away
			}
		})
		err := s.client.Receive(hctx, s.client.B().Subscribe().Channel(s.bansN).Build(), func(msg rueidis.PubSubMessage) {
			s.mirror.notice(msg.Message)
		})
		s.mirror.subscribed.Store(false)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > retryMax {
			wait = retryMin // it held a while: this is a new outage
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

// reloadBans applies the notices as they come, and reads every ban each
// banReload.
func (s *Store) reloadBans(ctx context.Context) {
	m := s.mirror
	tick := time.NewTicker(banReload)
	defer tick.Stop()
	for {
		all := false
		select {
		case <-ctx.Done():
			return
		case <-m.kick:
		case <-tick.C:
			all = true
		}
		m.mu.Lock()
		n := m.notices.Load()
		fields := m.fields
		m.fields = nil
		m.mu.Unlock()
		for _, f := range fields {
			all = all || f == ""
		}
		var err error
		if all {
			err = s.loadBans(ctx)
		} else {
			err = s.loadFields(ctx, fields)
		}
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
			m.notice("")
			continue
		}
		m.loaded.Store(n)
		if m.current() && m.readyOnce.CompareAndSwap(false, true) {
			close(m.ready)
		}
	}
}

// loadBans reads every ban (expired ones too: match judges by now) into a
// new map.
func (s *Store) loadBans(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, max(s.readTimeout, time.Second))
	defer cancel()
	raws, err := s.client.Do(ctx, s.client.B().Hvals().Key(s.bansD).Build()).AsStrSlice()
	if err != nil {
		return unavailable(err)
	}
	bans := new(sync.Map)
	for _, raw := range raws {
		var b store.Ban
		if err := json.Unmarshal([]byte(raw), &b); err != nil {
			return fmt.Errorf("decode ban: %w", err)
		}
		bans.Store(b.Key(), b)
	}
	s.mirror.bans.Store(bans)
	return nil
}

// loadFields reads the bans of fields again, in one round trip: a field
// with no ban any more is dropped from the mirror.
func (s *Store) loadFields(ctx context.Context, fields []string) error {
	ctx, cancel := context.WithTimeout(ctx, max(s.readTimeout, time.Second))
	defer cancel()
	raws, err := s.client.Do(ctx, s.client.B().Hmget().Key(s.bansD).Field(fields...).Build()).ToArray()
	if err != nil {
		return unavailable(err)
	}
	if len(raws) != len(fields) {
		return unavailable(errBadReply)
	}
	bans := s.mirror.bans.Load()
	for i, f := range fields {
		raw, err := raws[i].ToString()
		if rueidis.IsRedisNil(err) {
			facet, value, _ := strings.Cut(f, "\x00")
			bans.Delete(store.BanKey{Facet: facet, Value: value})
			continue
		}
		if err != nil {
			return unavailable(err)
		}
		var b store.Ban
		if err := json.Unmarshal([]byte(raw), &b); err != nil {
			return fmt.Errorf("decode ban: %w", err)
		}
		bans.Store(b.Key(), b)
	}
	return nil
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
