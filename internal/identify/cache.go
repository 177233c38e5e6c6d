package identify

import (
	"hash/maphash"
	"sync"
	"time"
)

// account is what a verified token says; shared by every request carrying
// the same token, so never modified after verification.
type account struct {
	subject    string
	created    time.Time
	ageUnknown bool // no readable created claim, and missing_created is youngest
	scopes     []string
	refused    string // why the token was refused (subject empty): a cached refusal
}

const cacheShards = 16

// tokenCache remembers verification results so a token is verified once,
// not per request. It is a bounded LRU, sharded so concurrent requests seldom
// meet on one lock. Entries are keyed by a seeded hash of the token and hold
// the token itself, so a hash collision is a miss, never someone else's
// account. An account with refused set is a cached refusal.
type tokenCache struct {
	off    bool // benchmarks measure verification without the cache
	seed   maphash.Seed
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu         sync.Mutex
	idx        map[uint64]int32
	ents       []cacheEntry
	max        int
	head, tail int32 // most and least recently used, -1 when empty
}

type cacheEntry struct {
	key        uint64
	token      string
	until      int64 // unix nanoseconds, exclusive
	acct       *account
	prev, next int32
}

func newTokenCache(size int) *tokenCache {
	c := &tokenCache{seed: maphash.MakeSeed()}
	per := max(1, (size+cacheShards-1)/cacheShards)
	for i := range c.shards {
		s := &c.shards[i]
		s.idx = make(map[uint64]int32, per)
		s.max = per
		s.head, s.tail = -1, -1
	}
	return c
}

func (c *tokenCache) hash(token string) uint64 { return maphash.String(c.seed, token) }

// get returns the cached result for token at now; ok is false on a miss.
func (c *tokenCache) get(key uint64, token string, now time.Time) (acct *account, ok bool) {
	if c.off {
		return nil, false
	}
	s := &c.shards[key%cacheShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	i, hit := s.idx[key]
	if !hit {
		return nil, false
	}
	e := &s.ents[i]
	if e.token != token || now.UnixNano() >= e.until {
		return nil, false
	}
	s.toFront(i)
	return e.acct, true
}

// put stores a result valid until until.
func (c *tokenCache) put(key uint64, token string, acct *account, until time.Time) {
	if c.off {
		return
	}
	s := &c.shards[key%cacheShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	i, hit := s.idx[key]
	switch {
	case hit:
	case len(s.ents) < s.max:
		s.ents = append(s.ents, cacheEntry{prev: -1, next: -1})
		i = int32(len(s.ents) - 1)
		s.link(i)
	default: // reuse the least recently used entry
		i = s.tail
		delete(s.idx, s.ents[i].key)
	}
	s.idx[key] = i
	s.ents[i].key, s.ents[i].token, s.ents[i].until, s.ents[i].acct = key, token, until.UnixNano(), acct
	s.toFront(i)
}

func (s *cacheShard) link(i int32) {
	e := &s.ents[i]
	e.prev, e.next = -1, s.head
	if s.head >= 0 {
		s.ents[s.head].prev = i
	}
	s.head = i
	if s.tail < 0 {
		s.tail = i
	}
}

func (s *cacheShard) toFront(i int32) {
	if s.head == i {
		return
	}
	e := &s.ents[i]
	if e.prev >= 0 {
		s.ents[e.prev].next = e.next
	}
	if e.next >= 0 {
		s.ents[e.next].prev = e.prev
	}
	if s.tail == i {
		s.tail = e.prev
	}
	s.link(i)
}
