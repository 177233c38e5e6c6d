package memory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

var errTTL = errors.New("ttl must be positive")

// bloomProbes with 9.6 bits per id gives a 1% false-positive rate.
const bloomProbes = 7

// linkGen is one generation of a link filter: an exact sorted set while it
// takes less memory than the bloom filter would, the bloom filter after.
type linkGen struct {
	first   int64 // first insertion, Unix ns; 0 when empty
	expires int64 // latest insertion + its ttl
	small   []uint64
	bits    []uint64
}

func (g *linkGen) reset() {
	g.first, g.expires, g.small, g.bits = 0, 0, g.small[:0], nil
}

func (g *linkGen) has(id uint64, m uint64) bool {
	if g.bits == nil {
		_, ok := slices.BinarySearch(g.small, id)
		return ok
	}
	h := mix64(id)
	h1, h2 := uint32(h), uint32(h>>32)|1
	for i := range uint32(bloomProbes) {
		x := (uint64(h1+i*h2) * m) >> 32
		if g.bits[x>>6]&(1<<(x&63)) == 0 {
			return false
		}
	}
	return true
}

func (g *linkGen) add(id uint64, m uint64) {
	if g.bits == nil {
		pos, ok := slices.BinarySearch(g.small, id)
		if ok {
			return
		}
		if limit := int(m / 64); len(g.small) < limit {
			if len(g.small) == cap(g.small) {
				// Grow by hand so the set never takes more than the filter.
				grown := make([]uint64, len(g.small), min(max(8, 2*cap(g.small)), limit))
				copy(grown, g.small)
				g.small = grown
			}
			g.small = slices.Insert(g.small, pos, id)
			return
		}
		// The exact set would outgrow the bloom filter: switch to it.
		g.bits = make([]uint64, m/64)
		for _, e := range g.small {
			g.set(e, m)
		}
		g.small = nil
	}
	g.set(id, m)
}

func (g *linkGen) set(id uint64, m uint64) {
	h := mix64(id)
	h1, h2 := uint32(h), uint32(h>>32)|1
	for i := range uint32(bloomProbes) {
		x := (uint64(h1+i*h2) * m) >> 32
		g.bits[x>>6] |= 1 << (x & 63)
	}
}

// linkFilter holds two generations: new ids go to cur; cur becomes old once
// it spans ttl and old has expired, so no id is forgotten within its ttl.
type linkFilter struct {
	cur, old linkGen
	cost     int64
}

func (f *linkFilter) expires() int64 { return max(f.cur.expires, f.old.expires) }

func (f *linkFilter) size() int64 {
	return 128 + 8*int64(cap(f.cur.small)+len(f.cur.bits)+cap(f.old.small)+len(f.old.bits))
}

// Link remembers ids for key until now+ttl. See doc.go.
func (s *Store) Link(_ context.Context, now time.Time, key string, ids []uint64, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("memory: link: %w", errTTL)
	}
	if len(ids) == 0 {
		return nil
	}
	ns, m := now.UnixNano(), uint64(s.bloomBits)
	exp := ns + min(int64(ttl), maxSpan)
	sh, h := s.locate(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.observe(ns)
	f := sh.links[h]
	if f == nil {
		f = &linkFilter{}
		f.cost = f.size()
		s.makeRoom(sh, ns, kindLink, h, true, f.cost)
		sh.links[h] = f
		sh.keys++
		sh.bytes += f.cost
	}
	if f.old.expires <= ns {
		f.old.reset()
	}
	if f.cur.expires <= ns {
		f.cur.reset()
	}
	if f.cur.first != 0 && ns-f.cur.first >= int64(ttl) && f.old.first == 0 {
		f.cur, f.old = f.old, f.cur
	}
	if f.cur.first == 0 {
		f.cur.first = ns
	}
	f.cur.expires = max(f.cur.expires, exp)
	for _, id := range ids {
		f.cur.add(id, m)
	}
	before := f.cost
	if f.cost = f.size(); f.cost != before {
		sh.bytes += f.cost - before
		s.makeRoom(sh, ns, kindLink, h, false, 0)
	}
	return nil
}

// Linked reports per id whether it was linked to key and is unexpired at now.
func (s *Store) Linked(_ context.Context, now time.Time, key string, ids []uint64) ([]bool, error) {
	out := make([]bool, len(ids))
	ns, m := now.UnixNano(), uint64(s.bloomBits)
	sh, h := s.locate(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.observe(ns)
	f := sh.links[h]
	if f == nil {
		return out, nil
	}
	cur, old := f.cur.expires > ns, f.old.expires > ns
	for i, id := range ids {
		out[i] = (cur && f.cur.has(id, m)) || (old && f.old.has(id, m))
	}
	return out, nil
}
