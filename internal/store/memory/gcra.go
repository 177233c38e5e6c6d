package memory

import (
	"context"
	"fmt"
	"time"

	"github.com/warden-gw/warden/internal/store"
)

// maxSpan caps products of durations so now+span never overflows int64
// (2^62 ns is about 146 years).
const maxSpan = int64(1) << 62

// mulSpan returns a*b capped at maxSpan, for a, b >= 0.
func mulSpan(a, b int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	if a > maxSpan/b {
		return maxSpan
	}
	return a * b
}

// Admit checks bans, then charges each limit on its own. See doc.go.
func (s *Store) Admit(_ context.Context, now time.Time, req *store.AdmitRequest) (store.AdmitResult, error) {
	if req == nil {
		return store.AdmitResult{}, nil
	}
	for i := range req.Limits {
		if err := req.Limits[i].Validate(); err != nil {
			return store.AdmitResult{}, fmt.Errorf("memory: admit: limit %d: %w", i, err)
		}
	}
	ns := now.UnixNano()
	if s.bans.Load() > 0 {
		for _, k := range req.Bans {
			if b, ok := s.activeBan(k, ns); ok {
				p := new(store.Ban) // only on a match, so b stays on the stack
				*p = b
				return store.AdmitResult{Ban: p}, nil
			}
		}
	}
	if len(req.Limits) == 0 {
		return store.AdmitResult{}, nil
	}
	res := make([]store.LimitResult, len(req.Limits))
	for i := range req.Limits {
		l := &req.Limits[i]
		sh, h := s.locate(l.Key)
		sh.mu.Lock()
		sh.observe(ns)
		res[i] = s.gcra(sh, h, ns, l)
		sh.mu.Unlock()
	}
	return store.AdmitResult{Limits: res}, nil
}

// gcra decides one limit at now (Unix ns). Callers hold sh.mu.
func (s *Store) gcra(sh *shard, key uint64, now int64, l *store.LimitRequest) store.LimitResult {
	t := int64(l.Interval)
	bw := mulSpan(t, int64(l.Burst)) // burst window: how far TAT may run ahead of now
	stored, exists := sh.limits[key]
	tat := max(stored, now)
	// Never below 0: a burst lowered by a reload leaves TAT further ahead.
	remaining := func(tat int64) int { return int(max(0, now+bw-tat) / t) }

	switch {
	case l.Cost > l.Burst:
		// Never admissible at this burst: refused, not charged.
		return store.LimitResult{Remaining: remaining(tat), RetryAfter: -1, ResetAfter: time.Duration(tat - now)}
	case l.Cost == 0:
		// Peek: would a request of cost 1 pass now?
		allowAt := tat + t - bw
		r := store.LimitResult{Allowed: now >= allowAt, Remaining: remaining(tat), ResetAfter: time.Duration(tat - now)}
		if !r.Allowed {
			r.RetryAfter = time.Duration(allowAt - now)
		}
		return r
	}
	newTat := tat + mulSpan(t, int64(l.Cost))
	allowAt := newTat - bw
	if now < allowAt {
		return store.LimitResult{Remaining: remaining(tat), RetryAfter: time.Duration(allowAt - now), ResetAfter: time.Duration(tat - now)}
	}
	if exists {
		sh.limits[key] = newTat
	} else {
		s.makeRoom(sh, now, kindLimit, key, true, limitCost)
		sh.limits[key] = newTat
		sh.keys++
		sh.bytes += limitCost
	}
	return store.LimitResult{Allowed: true, Remaining: remaining(newTat), ResetAfter: time.Duration(newTat - now)}
}
