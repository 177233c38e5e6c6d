package memory

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/warden-gw/warden/internal/store"
)

// banFilter has a bit set for every banned facet value's hash (and, until
// the next sweep, for removed ones), so Admit skips the shard lock and map
// for the values that were never banned: nearly all of them.
type banFilter struct{ bits [1024]atomic.Uint64 }

func (f *banFilter) set(h uint64) { f.bits[h>>54].Or(1 << (h & 63)) }
func (f *banFilter) has(h uint64) bool {
	return f.bits[h>>54].Load()&(1<<(h&63)) != 0
}

// activeBan returns the ban on k when it is unexpired at now (Unix ns).
func (s *Store) activeBan(k store.BanKey, now int64) (store.Ban, bool) {
	h := s.banHash(k)
	if !s.banBits.Load().has(h) {
		return store.Ban{}, false
	}
	sh := s.shards[h&s.mask]
	sh.mu.Lock()
	b, ok := sh.bans[k]
	sh.mu.Unlock()
	if !ok || (!b.Until.IsZero() && b.Until.UnixNano() <= now) {
		return store.Ban{}, false
	}
	return b, true
}

// PutBan stores b, replacing any ban on the same facet value. With a
// journal, the change is journaled first (banMu held, no shard lock), so an
// acknowledged ban is on disk and the journal's order is the store's.
func (s *Store) PutBan(ctx context.Context, b store.Ban) error {
	h := s.banHash(b.Key())
	s.banMu.Lock()
	defer s.banMu.Unlock()
	sh := s.shards[h&s.mask]
	if s.opts.Bans != nil {
		sh.mu.Lock()
		_, exists := sh.bans[b.Key()]
		sh.mu.Unlock()
		if !exists && s.bans.Load() >= int64(s.opts.MaxBans) {
			return fmt.Errorf("memory: put ban on facet %s: ban table full (%d bans)", b.Facet, s.opts.MaxBans)
		}
		if err := s.opts.Bans.PutBan(ctx, b); err != nil {
			return fmt.Errorf("memory: put ban on facet %s: %w", b.Facet, err)
		}
	}
	if !s.putBan(sh, h, b) {
		return fmt.Errorf("memory: put ban on facet %s: ban table full (%d bans)", b.Facet, s.opts.MaxBans)
	}
	return nil
}

// putBan stores b in sh unless the ban table is full; callers hold banMu.
func (s *Store) putBan(sh *shard, h uint64, b store.Ban) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.bans[b.Key()]; !ok {
		if s.bans.Load() >= int64(s.opts.MaxBans) {
			return false
		}
		s.bans.Add(1)
	}
	// The bit goes first: a reader that sees it before the ban finds none yet.
	s.banBits.Load().set(h)
	sh.bans[b.Key()] = b
	return true
}

// sweepBans removes bans expired at now and rebuilds the filter without
// the bits of removed bans.
func (s *Store) sweepBans(now int64) int {
	s.banMu.Lock()
	defer s.banMu.Unlock()
	removed := 0
	f := new(banFilter)
	for _, sh := range s.shards {
		sh.mu.Lock()
		for key, b := range sh.bans {
			if !b.Until.IsZero() && b.Until.UnixNano() <= now {
				delete(sh.bans, key)
				s.bans.Add(-1)
				removed++
				continue
			}
			f.set(s.banHash(key))
		}
		sh.mu.Unlock()
	}
	s.banBits.Store(f)
	return removed
}

// RemoveBan deletes the ban on k and reports whether an unexpired one existed.
// Expiry is judged by the latest now callers passed, like the sweeper's.
func (s *Store) RemoveBan(ctx context.Context, k store.BanKey) (bool, error) {
	// The ban's history stays (a later offence still escalates), its hold
	// ends with it: the detector may ban the value again at once.
	s.det.lift(s.banHash(k))
	sh := s.shards[s.banHash(k)&s.mask]
	if s.opts.Bans != nil {
		s.banMu.Lock()
		defer s.banMu.Unlock()
		sh.mu.Lock()
		_, ok := sh.bans[k]
		sh.mu.Unlock()
		if !ok {
			return false, nil
		}
		if err := s.opts.Bans.RemoveBan(ctx, k); err != nil {
			return false, fmt.Errorf("memory: remove ban on facet %s: %w", k.Facet, err)
		}
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	b, ok := sh.bans[k]
	if !ok {
		return false, nil
	}
	delete(sh.bans, k)
	s.bans.Add(-1)
	return b.Until.IsZero() || sh.lastNow == 0 || b.Until.UnixNano() > sh.lastNow, nil
}

// ListBans returns the bans unexpired at now, sorted by facet, then value.
func (s *Store) ListBans(_ context.Context, now time.Time) ([]store.Ban, error) {
	ns := now.UnixNano()
	var out []store.Ban
	for _, sh := range s.shards {
		sh.mu.Lock()
		sh.observe(ns)
		for _, b := range sh.bans {
			if b.Until.IsZero() || b.Until.UnixNano() > ns {
				out = append(out, b)
			}
		}
		sh.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b store.Ban) int {
		return cmp.Or(cmp.Compare(a.Facet, b.Facet), cmp.Compare(a.Value, b.Value))
	})
	return out, nil
}
