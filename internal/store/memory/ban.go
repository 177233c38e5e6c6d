package memory

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/warden-gw/warden/internal/store"
)

// activeBan returns the ban on k when it is unexpired at now (Unix ns).
func (s *Store) activeBan(k store.BanKey, now int64) (store.Ban, bool) {
	sh := s.banShard(k)
	sh.mu.Lock()
	b, ok := sh.bans[k]
	sh.mu.Unlock()
	if !ok || (!b.Until.IsZero() && b.Until.UnixNano() <= now) {
		return store.Ban{}, false
	}
	return b, true
}

// PutBan stores b, replacing any ban on the same facet value.
func (s *Store) PutBan(_ context.Context, b store.Ban) error {
	sh := s.banShard(b.Key())
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.bans[b.Key()]; !ok {
		if s.bans.Load() >= int64(s.opts.MaxBans) {
			return fmt.Errorf("memory: put ban on facet %s: ban table full (%d bans)", b.Facet, s.opts.MaxBans)
		}
		s.bans.Add(1)
	}
	sh.bans[b.Key()] = b
	return nil
}

// RemoveBan deletes the ban on k and reports whether an unexpired one existed.
// Expiry is judged by the latest now callers passed, like the sweeper's.
func (s *Store) RemoveBan(_ context.Context, k store.BanKey) (bool, error) {
	sh := s.banShard(k)
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
