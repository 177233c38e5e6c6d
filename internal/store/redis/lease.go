package redis

import (
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/warden-gw/warden/internal/store"
)

// Token leases (see doc.go, "Leases"): while a limit's bucket is far from
// empty, the admit script charges a few cells more than a request costs and
// this Store spends them on later requests without a round trip. The lease
// sizes itself by the key's traffic (twice the requests since the previous
// lease, four times when that one ran out; at most Config.Lease.Tokens and
// a sixteenth of the burst), lives Config.Lease.TTL, and what is left of it
// when it lapses is given back on the key's next call. A key seen once is
// decided exactly: a lease is only asked for a key seen again. One call at a time asks a
// key's lease: requests that find it in flight wait for it (a hot key's
// requests would otherwise each go to Redis while it is away).
//
// Spending is lock-free (a compare-and-swap on the cells left): every
// request of a gateway spends from the same few hot keys (its per-ip limit
// behind a load balancer's address), and a mutex there put the two cores
// of the benchmark machine to sleep on each other.

const (
	leaseShards = 64
	// leaseKeep is how many TTLs an idle key's entry (its sizing and any
	// cells to give back) is kept before it is dropped.
	leaseKeep = 10
	// leaseShare: a lease takes at most burst/leaseShare cells.
	leaseShare = 16
	// leaseMinBurst: a limit whose burst is below it is never leased (its
	// share would be under 2 cells).
	leaseMinBurst = 2 * leaseShare
	// leaseWaits bounds how often a request waits for other requests'
	// lease calls before it asks Redis itself, exactly.
	leaseWaits = 3
)

// leaseTable holds this Store's leases, one entry per limit key.
type leaseTable struct {
	max    int   // most cells one lease takes
	ttl    int64 // µs a lease lives
	seed   maphash.Seed
	shards [leaseShards]leaseShard
}

// leaseShard's map is read without a lock (sync.Map: a request's look-up
// writes nothing shared) and written under mu, which also guards each of
// its entries' fetch and the sweep.
type leaseShard struct {
	mu    sync.Mutex
	m     sync.Map // string -> *leaseEntry
	swept int64    // µs: last sweep of idle entries (under mu)
}

// get is key's entry, or nil.
func (sh *leaseShard) get(key string) *leaseEntry {
	if v, ok := sh.m.Load(key); ok {
		return v.(*leaseEntry)
	}
	return nil
}

// leaseEntry is one limit key's lease, for one shape (interval and burst
// window): a request of another shape (a reloaded config) replaces it,
// giving back what it held.
type leaseEntry struct {
	t, bw int64
	left  atomic.Int64 // cells held, not yet spent
	until atomic.Int64 // µs: spent only before this
	// mtat is the key's TAT as this Store alone would have made it, each
	// request charged when it came (Redis charged the lease when it was
	// taken): results are computed from it, and it is sent as a floor
	// with the key's next call (see take).
	mtat atomic.Int64
	hits atomic.Int64 // requests since the latest lease was granted (sizes the next)
	seen atomic.Int64 // µs: last request
	// fetch is open while a call asking a lease for the key is in flight
	// (under the shard's mu): requests wait for it rather than each
	// asking Redis.
	fetch chan struct{}
}

func newLeaseTable(maxTokens int, ttlMicros int64) *leaseTable {
	return &leaseTable{max: maxTokens, ttl: ttlMicros, seed: maphash.MakeSeed()}
}

func (lt *leaseTable) shard(key string) *leaseShard {
	return &lt.shards[maphash.String(lt.seed, key)%leaseShards]
}

func (lt *leaseTable) entry(key string) *leaseEntry { return lt.shard(key).get(key) }

// limitPlan is what one limit of a request does: spent from a lease here
// (local), or sent to Redis asking for a lease of ask cells and giving
// back refund µs of an earlier one.
type limitPlan struct {
	local  bool
	res    store.LimitResult // when local
	t, bw  int64
	ask    int
	refund int64
	floor  int64         // µs: the key's TAT is at least this (mtat)
	fetch  chan struct{} // this plan's lease call (take)
	wait   chan struct{} // another request's lease call to wait for
}

// spend takes cost cells of key's lease when one is live for this shape
// with enough left, and returns the request's result.
func (lt *leaseTable) spend(key string, t, bw int64, cost int, now int64) (store.LimitResult, bool) {
	e := lt.entry(key)
	if e == nil {
		return store.LimitResult{}, false
	}
	return e.spend(t, bw, int64(cost), now)
}

func (e *leaseEntry) spend(t, bw, cost int64, now int64) (store.LimitResult, bool) {
	if cost <= 0 || e.t != t || e.bw != bw || now >= e.until.Load() {
		return store.LimitResult{}, false
	}
	for {
		l := e.left.Load()
		if l < cost {
			return store.LimitResult{}, false
		}
		if e.left.CompareAndSwap(l, l-cost) {
			e.hits.Add(1)
			e.seen.Store(now)
			return gcraAfter(now, e.charge(now, cost*t), t, bw), true
		}
	}
}

// charge moves mtat as GCRA would for a charge of c µs at now, and
// returns it.
func (e *leaseEntry) charge(now, c int64) int64 {
	for {
		old := e.mtat.Load()
		nt := max(old, now) + c
		if e.mtat.CompareAndSwap(old, nt) {
			return nt
		}
	}
}

// raise lifts mtat to tat (µs).
func (e *leaseEntry) raise(tat int64) {
	for {
		old := e.mtat.Load()
		if tat <= old || e.mtat.CompareAndSwap(old, tat) {
			return
		}
	}
}

// unspend gives back cost cells spend took (a request abandoned), and
// takes its charge off mtat (which must not count it: it is a floor).
func (lt *leaseTable) unspend(key string, t, bw int64, cost int) {
	if e := lt.entry(key); e != nil && e.t == t && e.bw == bw {
		e.mtat.Add(-int64(cost) * t)
		e.left.Add(int64(cost))
	}
}

// take spends from key's lease as spend does; otherwise it plans the call
// to Redis: what to give back and how large a lease to ask for (none while
// another call asks one for the key: with wait, the plan waits for that
// call instead). A plan with fetch set must be finished (finish).
func (lt *leaseTable) take(key string, t, bw int64, burst, cost int, now int64, wait bool) limitPlan {
	p := limitPlan{t: t, bw: bw}
	if r, ok := lt.spend(key, t, bw, cost, now); ok {
		p.local, p.res = true, r
		return p
	}
	sh := lt.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	lt.sweep(sh, now)
	e := sh.get(key)
	if e == nil || e.t != t || e.bw != bw {
		ne := &leaseEntry{t: t, bw: bw}
		ne.seen.Store(now)
		ne.hits.Store(1)
		if e != nil {
			if e.t == t { // a new burst: the cells held are given back
				p.refund = e.left.Swap(0) * t
			}
			if e.fetch != nil {
				close(e.fetch) // its waiters go on; its finish finds the new entry
			}
			sh.m.Store(string([]byte(key)), ne)
		} else {
			// First sight: exact, but remembered so a return asks a lease.
			sh.m.Store(string([]byte(key)), ne)
		}
		return p
	}
	e.seen.Store(now)
	hits := e.hits.Add(1)
	if r, ok := e.spend(t, bw, int64(cost), now); ok { // a lease came meanwhile
		p.local, p.res = true, r
		return p
	}
	// Redis charged this Store's spent cells when their leases were taken,
	// so its TAT may have refilled past them meanwhile; mtat, charged as
	// requests came, is a floor the exact TAT is above (other gateways
	// only add to it): the call raises the key to it. One gateway alone
	// thus leaves Redis exactly where per-request calls would have.
	p.floor = e.mtat.Load()
	if cost > 0 && e.fetch != nil && wait {
		p.wait = e.fetch
		return p
	}
	if cost == 0 || e.fetch != nil {
		return p // a peek (adjusted by what is held), or exact beside a fetch
	}
	// Lapsed, or too few cells for cost: give back what is left. The next
	// lease is twice what the key took since the last one, four times when
	// it ran out (the key is busier than its lease).
	e.until.Store(0)
	left := e.left.Swap(0)
	p.refund = left * t
	if burst >= leaseMinBurst {
		grow := int64(2)
		if left == 0 {
			grow = 4
		}
		if p.ask = int(min(int64(lt.max), int64(burst/leaseShare), grow*hits)); p.ask < 2 {
			p.ask = 0
		}
	}
	if p.ask > 0 {
		e.fetch = make(chan struct{})
		p.fetch = e.fetch
	}
	return p
}

// finish ends the lease call of plan p for key: it records the n cells
// Redis leased (0: none, or the call failed), tat being the key's TAT
// after them (µs), and lets the requests waiting for it go on.
// p.fetch is read and cleared under the shard's lock: the batch that got
// the reply and a caller that stopped waiting may both finish p.
func (lt *leaseTable) finish(key string, p *limitPlan, n int, tat, now int64) {
	sh := lt.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if p.fetch == nil {
		return
	}
	e := sh.get(key)
	if e == nil || e.fetch != p.fetch {
		p.fetch = nil // replaced meanwhile: the cells are lost (charged, never spent)
		return
	}
	close(e.fetch)
	e.fetch, p.fetch = nil, nil
	if n == 0 {
		return
	}
	e.raise(tat - int64(n)*p.t)
	e.hits.Store(0)
	e.until.Store(now + lt.ttl)
	e.left.Add(int64(n))
}

// view is the key's TAT as this Store sees it, from tat, the one Redis
// holds (µs): less the cells held unspent, at least mtat. ok is false when
// the Store holds no lease state for the key.
func (lt *leaseTable) view(key string, t, bw, tat int64) (int64, bool) {
	e := lt.entry(key)
	if e == nil || e.t != t || e.bw != bw {
		return 0, false
	}
	return max(tat-e.left.Load()*t, e.mtat.Load()), true
}

// sweep drops entries idle for leaseKeep TTLs, at most once a TTL per
// shard (callers hold sh.mu); their unspent cells stay charged (at most a
// lease, once).
func (lt *leaseTable) sweep(sh *leaseShard, now int64) {
	if now-sh.swept < lt.ttl {
		return
	}
	sh.swept = now
	sh.m.Range(func(k, v any) bool {
		if e := v.(*leaseEntry); now-e.seen.Load() > leaseKeep*lt.ttl && e.fetch == nil {
			sh.m.Delete(k)
		}
		return true
	})
}

// gcraAfter is the result of an admitted request that left the key's TAT
// at tat, as the admit script computes it.
func gcraAfter(now, tat, t, bw int64) store.LimitResult {
	tat = max(tat, now)
	return store.LimitResult{
		Allowed:    true,
		Remaining:  int(max(0, now+bw-tat) / t),
		ResetAfter: microsDuration(tat - now),
	}
}
