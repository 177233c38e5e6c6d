package memory

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/dchest/siphash"

	"github.com/warden-gw/warden/internal/store"
)

var _ store.Store = (*Store)(nil)

// Options configure a Store. Zero values take the defaults named on each
// field.
type Options struct {
	// Shards is the number of independently locked partitions, rounded up
	// to a power of two. Default 256: short lock holds when sweeping.
	Shards int
	// MaxKeys bounds the number of limit, budget and link-filter keys held
	// (bans are bounded by MaxBans). Default 2,097,152.
	MaxKeys int
	// MaxBytes bounds the approximate memory of those keys. Default 1 GiB.
	MaxBytes int64
	// MaxBans bounds the number of bans; PutBan fails past it. Default 1,000,000.
	MaxBans int
	// ExactMax is how many subjects a budget counts exactly in a window
	// before it also counts in a HyperLogLog sketch. Default 1024.
	ExactMax int
	// LinkCapacity is the number of ids one link-memory generation holds
	// exactly; past it an identity is saturated (see store.Provenance).
	// Default 4096.
	LinkCapacity int
	// SweepEvery is how often idle keys are removed. Default 1 minute;
	// negative disables the background sweeper.
	SweepEvery time.Duration
	// HashKey keys the hash that replaces key strings (see doc.go). Zero:
	// drawn at random. A store restored from a snapshot takes the key the
	// snapshot was written with (HashKey on the old store), or its keys no
	// longer find their state.
	HashKey [16]byte
	// Bans, when set, is told of every ban change before the change takes
	// effect; an error refuses the change. Nil: bans live in memory only.
	Bans BanJournal
}

// BanJournal records ban changes where they outlive the process (the ban
// log of package disk). Calls are serialised by the store, in the order
// the changes take effect, and never made with a shard lock held.
type BanJournal interface {
	PutBan(ctx context.Context, b store.Ban) error
	RemoveBan(ctx context.Context, k store.BanKey) error
}

const (
	defaultShards       = 256
	defaultMaxKeys      = 2 << 20
	defaultMaxBytes     = 1 << 30
	defaultMaxBans      = 1_000_000
	defaultExactMax     = 1024
	defaultLinkCapacity = 4096
	defaultSweepEvery   = time.Minute
	evictSample         = 8
)

func (o Options) withDefaults() Options {
	if o.Shards <= 0 {
		o.Shards = defaultShards
	}
	o.Shards = 1 << bits.Len(uint(o.Shards-1))
	if o.MaxKeys <= 0 {
		o.MaxKeys = defaultMaxKeys
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = defaultMaxBytes
	}
	if o.MaxBans <= 0 {
		o.MaxBans = defaultMaxBans
	}
	if o.ExactMax <= 0 {
		o.ExactMax = defaultExactMax
	}
	if o.LinkCapacity <= 0 {
		o.LinkCapacity = defaultLinkCapacity
	}
	if o.SweepEvery == 0 {
		o.SweepEvery = defaultSweepEvery
	}
	return o
}

// Store is the in-memory state store. It is safe for concurrent use.
type Store struct {
	opts     Options
	k0, k1   uint64 // SipHash key
	shards   []*shard
	mask     uint64
	maxKeys  int   // per shard
	maxBytes int64 // per shard

	bans      atomic.Int64 // ban entries
	banMu     sync.Mutex   // serialises ban writers with rebuilds of banBits
	banBits   atomic.Pointer[banFilter]
	evictions atomic.Int64
	det       detections // the detector's shared counters (detect.go)

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// kind names the map an entry lives in, for eviction.
type kind uint8

const (
	kindLimit kind = iota
	kindBudget
	kindLink
)

type shard struct {
	mu sync.Mutex
	// Keys are seeded 64-bit hashes of the callers' key strings (see doc.go).
	limits  map[uint64]int64 // GCRA theoretical arrival time, Unix ns
	budgets map[uint64]*budget
	links   map[uint64]*linkFilter
	bans    map[store.BanKey]store.Ban
	keys    int
	bytes   int64
	lastNow int64 // the latest now a caller passed, Unix ns: the sweeper's clock
	_       [64]byte
}

// New returns a Store and starts its sweeper unless opts.SweepEvery < 0.
// Close stops the sweeper.
func New(opts Options) *Store {
	opts = opts.withDefaults()
	if opts.HashKey == ([16]byte{}) {
		_, _ = rand.Read(opts.HashKey[:]) // never fails (crypto/rand)
	}
	s := &Store{
		opts:     opts,
		k0:       binary.LittleEndian.Uint64(opts.HashKey[:8]),
		k1:       binary.LittleEndian.Uint64(opts.HashKey[8:]),
		shards:   make([]*shard, opts.Shards),
		mask:     uint64(opts.Shards - 1),
		maxKeys:  max(1, (opts.MaxKeys+opts.Shards-1)/opts.Shards),
		maxBytes: max(1, (opts.MaxBytes+int64(opts.Shards)-1)/int64(opts.Shards)),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	s.banBits.Store(new(banFilter))
	for i := range s.shards {
		s.shards[i] = &shard{
			limits:  make(map[uint64]int64),
			budgets: make(map[uint64]*budget),
			links:   make(map[uint64]*linkFilter),
			bans:    make(map[store.BanKey]store.Ban),
		}
	}
	if opts.SweepEvery > 0 {
		go s.sweepLoop(opts.SweepEvery)
	} else {
		close(s.done)
	}
	return s
}

// Close stops the sweeper. The Store holds no other resources; calls after
// Close still work.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { close(s.stop) })
	<-s.done
	return nil
}

// Stats is a snapshot of the store's size, for metrics.
type Stats struct {
	Keys      int   // limit, budget and link-filter keys
	Bytes     int64 // their approximate memory
	Bans      int
	Evictions int64 // unexpired keys dropped because the store was full
}

// Stats counts what the store holds now.
func (s *Store) Stats() Stats {
	var st Stats
	for _, sh := range s.shards {
		sh.mu.Lock()
		st.Keys += sh.keys
		st.Bytes += sh.bytes
		st.Bans += len(sh.bans)
		sh.mu.Unlock()
	}
	st.Evictions = s.evictions.Load()
	return st
}

// HashKey is the key of the hash that replaces key strings, for a snapshot.
func (s *Store) HashKey() [16]byte { return s.opts.HashKey }

// hash is the keyed hash of a key string (SipHash-2-4: a random key means
// nobody can aim for a collision, and unlike hash/maphash it is the same in
// the next process, so a snapshot's hashes still find their keys).
func (s *Store) hash(key string) uint64 {
	return siphash.Hash(s.k0, s.k1, unsafe.Slice(unsafe.StringData(key), len(key)))
}

// locate hashes key: the hash picks the shard and is the key in its maps.
func (s *Store) locate(key string) (*shard, uint64) {
	h := s.hash(key)
	return s.shards[h&s.mask], h
}

func (s *Store) banHash(k store.BanKey) uint64 {
	return s.hash(k.Value) ^ s.hash(k.Facet)*0x9e3779b97f4a7c15
}

// observe advances the shard's clock; callers hold sh.mu.
func (sh *shard) observe(now int64) {
	if now > sh.lastNow {
		sh.lastNow = now
	}
}

// makeRoom evicts entries from sh until one more key of extra bytes fits.
// The entry (k, key) being updated is never chosen. Callers hold sh.mu.
func (s *Store) makeRoom(sh *shard, now int64, k kind, key uint64, newKey bool, extra int64) {
	for {
		keys := sh.keys
		if newKey {
			keys++
		}
		if keys <= s.maxKeys && sh.bytes+extra <= s.maxBytes {
			return
		}
		if !s.evictOne(sh, now, k, key) {
			return // nothing else to drop: one entry larger than the bound
		}
	}
}

// evictOne drops one entry: from a sample of the preferred kind's map, an
// expired one if sampled, else the one whose loss costs least (the oldest).
// Map iteration starts at a random slot, so the sample is random.
func (s *Store) evictOne(sh *shard, now int64, prefer kind, avoid uint64) bool {
	// Other kinds by what their loss costs: a limit at most one burst, a link
	// filter false enumeration alarms, a budget a reset count.
	for _, k := range [...]kind{prefer, kindLimit, kindLink, kindBudget} {
		if s.evictFrom(sh, now, k, k == prefer, avoid) {
			return true
		}
	}
	return false
}

func (s *Store) evictFrom(sh *shard, now int64, k kind, avoidSame bool, avoid uint64) bool {
	var victim uint64
	found := false
	var best int64
	n := 0
	consider := func(key uint64, age int64) bool {
		if avoidSame && key == avoid {
			return true
		}
		if !found || age < best {
			victim, best, found = key, age, true
		}
		n++
		return n < evictSample && age > now
	}
	switch k {
	case kindLimit:
		for key, tat := range sh.limits {
			if !consider(key, tat) {
				break
			}
		}
	case kindBudget:
		for key, b := range sh.budgets {
			if !consider(key, b.start+b.window) {
				break
			}
		}
	case kindLink:
		for key, f := range sh.links {
			if !consider(key, f.expires()) {
				break
			}
		}
	}
	if !found {
		return false
	}
	if best > now {
		s.evictions.Add(1)
	}
	sh.remove(k, victim)
	return true
}

func (sh *shard) remove(k kind, key uint64) {
	switch k {
	case kindLimit:
		if _, ok := sh.limits[key]; ok {
			delete(sh.limits, key)
			sh.keys--
			sh.bytes -= limitCost
		}
	case kindBudget:
		if b, ok := sh.budgets[key]; ok {
			delete(sh.budgets, key)
			sh.keys--
			sh.bytes -= b.cost
		}
	case kindLink:
		if f, ok := sh.links[key]; ok {
			delete(sh.links, key)
			sh.keys--
			sh.bytes -= f.cost
		}
	}
}

// limitCost approximates one limit entry: its map slot (hash and TAT),
// control byte, load-factor and growth slack, as BenchmarkMemoryPerKey
// measures it.
const limitCost = 40

func (s *Store) sweepLoop(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			var now int64
			for _, sh := range s.shards {
				sh.mu.Lock()
				now = max(now, sh.lastNow)
				sh.mu.Unlock()
			}
			now = max(now, s.det.clock())
			if now != 0 {
				s.sweep(now)
			}
		}
	}
}

// sweep removes everything idle at now: limits back at a full burst, budgets
// whose window ended, link filters and bans past their expiry. The clock is
// the latest now callers passed, never the wall clock, so expiry agrees with
// the decisions. It returns how many entries it removed.
func (s *Store) sweep(now int64) int {
	removed := 0
	for _, sh := range s.shards {
		removed += s.sweepShard(sh, now)
	}
	return removed + s.sweepBans(now) + s.det.sweep(now)
}

func (s *Store) sweepShard(sh *shard, now int64) int {
	removed := 0
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for key, tat := range sh.limits {
		if tat <= now {
			sh.remove(kindLimit, key)
			removed++
		}
	}
	for key, b := range sh.budgets {
		if b.start+b.window <= now {
			sh.remove(kindBudget, key)
			removed++
		}
	}
	for key, f := range sh.links {
		if f.expires() <= now {
			sh.remove(kindLink, key)
			removed++
		}
	}
	return removed
}
