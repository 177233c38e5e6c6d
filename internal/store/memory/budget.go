package memory

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/warden-gw/warden/internal/store"
)

var (
	errWindow = errors.New("window must be positive")
	errLimit  = errors.New("limit must not be negative")
)

// sketchCost is a budget's sketch: 2^14 registers and its sums.
const sketchCost = hllM + 64

// budget is one distinct-subject count in one tumbling window.
type budget struct {
	start  int64      // window start, Unix ns
	window int64      // window length, ns
	exact  subjectSet // the first ExactMax subjects
	sketch *hll       // every counted subject, once exact is full
	cost   int64
}

func (b *budget) count() int {
	if b.sketch == nil {
		return b.exact.len()
	}
	return max(b.exact.len(), b.sketch.est)
}

func (b *budget) size() int64 {
	c := 96 + b.exact.bytes()
	if b.sketch != nil {
		c += sketchCost
	}
	return c
}

// windowStart aligns now to a multiple of w since the Unix epoch.
func windowStart(now, w int64) int64 {
	m := now % w
	if m < 0 {
		m += w
	}
	return now - m
}

// mix64 is SplitMix64's finaliser: a bijection that spreads sequential ids
// over all 64 bits, as the sketch and the bloom filter need.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Spend offers each request's subjects to its budget. See doc.go.
func (s *Store) Spend(_ context.Context, now time.Time, reqs []store.SpendRequest) ([]store.SpendResult, error) {
	n := 0
	for i := range reqs {
		switch {
		case reqs[i].Window <= 0:
			return nil, fmt.Errorf("memory: spend: budget %d: %w", i, errWindow)
		case reqs[i].Limit < 0:
			return nil, fmt.Errorf("memory: spend: budget %d: %w", i, errLimit)
		}
		n += len(reqs[i].Subjects)
	}
	ns := now.UnixNano()
	out := make([]store.SpendResult, len(reqs))
	allowed := make([]bool, n)
	for i := range reqs {
		r := &reqs[i]
		a := allowed[:len(r.Subjects):len(r.Subjects)]
		allowed = allowed[len(r.Subjects):]
		sh, h := s.locate(r.Key)
		sh.mu.Lock()
		sh.observe(ns)
		out[i] = store.SpendResult{Allowed: a, Count: s.spend(sh, h, ns, r, a)}
		sh.mu.Unlock()
	}
	return out, nil
}

// spend decides one budget and returns its count. Callers hold sh.mu.
func (s *Store) spend(sh *shard, key uint64, now int64, r *store.SpendRequest, allowed []bool) int {
	w := int64(r.Window)
	start := windowStart(now, w)
	b := sh.budgets[key]
	// A request whose now lags the budget's window (callers' clocks differ
	// by a little) is judged in the newer window rather than resetting it.
	if b != nil && (b.window != w || b.start < start) {
		b.start, b.window, b.sketch = start, w, nil
		b.exact.reset()
	}
	if b == nil {
		if len(r.Subjects) == 0 {
			return 0
		}
		b = &budget{start: start, window: w}
		b.cost = b.size()
		s.makeRoom(sh, now, kindBudget, key, true, b.cost)
		sh.budgets[key] = b
		sh.keys++
		sh.bytes += b.cost
	}
	before := b.cost
	for i, subj := range r.Subjects {
		n := b.exact.len()
		switch {
		case b.exact.has(subj):
			allowed[i] = true
		case b.sketch == nil && n < r.Limit && n < s.opts.ExactMax:
			b.exact.add(subj)
			allowed[i] = true
		case b.sketch == nil && n < r.Limit:
			// The exact set is full: count on in a sketch seeded with it.
			sk := newHLL()
			b.exact.each(func(e uint64) { sk.insert(mix64(e)) })
			b.sketch = sk
			fallthrough
		case b.sketch != nil && b.count() < r.Limit:
			// Not provably counted: counted as new. A subject the sketch
			// holds already leaves it unchanged, so a re-view is free while
			// the budget has room.
			b.sketch.insert(mix64(subj))
			allowed[i] = true
		}
	}
	if b.cost = b.size(); b.cost != before {
		sh.bytes += b.cost - before
		s.makeRoom(sh, now, kindBudget, key, false, 0)
	}
	return b.count()
}
