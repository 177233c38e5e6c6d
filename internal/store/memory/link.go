package memory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/warden-gw/warden/internal/store"
)

var (
	errTTL        = errors.New("ttl must be positive")
	errProvenance = errors.New("provenance must be list, search or social")
)

// linkGen is one generation of a link memory: the ids shown, sorted, with
// each one's best provenance beside it, at most the store's LinkCapacity.
// Full says an id was refused for room: the identity is saturated.
type linkGen struct {
	first   int64 // first insertion, Unix ns; 0 when empty
	expires int64 // latest insertion + its ttl
	ids     []uint64
	prov    []store.Provenance
	full    bool
}

func (g *linkGen) reset() {
	g.first, g.expires, g.ids, g.prov, g.full = 0, 0, g.ids[:0], g.prov[:0], false
}

func (g *linkGen) get(id uint64) store.Provenance {
	if i, ok := slices.BinarySearch(g.ids, id); ok {
		return g.prov[i]
	}
	return store.Unreferenced
}

// add links id with p, keeping the better provenance of an id already
// there. Past capacity a new id is dropped and the generation marked full:
// the id's look-ups will be Unreferenced, never better.
func (g *linkGen) add(id uint64, p store.Provenance, capacity int) {
	i, ok := slices.BinarySearch(g.ids, id)
	if ok {
		g.prov[i] = max(g.prov[i], p)
		return
	}
	if len(g.ids) >= capacity {
		g.full = true
		return
	}
	if len(g.ids) == cap(g.ids) {
		// Grow by hand so a generation never holds more than capacity.
		n := min(max(8, 2*cap(g.ids)), capacity)
		ids, prov := make([]uint64, len(g.ids), n), make([]store.Provenance, len(g.ids), n)
		copy(ids, g.ids)
		copy(prov, g.prov)
		g.ids, g.prov = ids, prov
	}
	g.ids = slices.Insert(g.ids, i, id)
	g.prov = slices.Insert(g.prov, i, p)
}

// linkFilter holds two generations: new ids go to cur; cur becomes old once
// it spans ttl and old has expired, so no id is forgotten within its ttl.
type linkFilter struct {
	cur, old linkGen
	cost     int64
}

func (f *linkFilter) expires() int64 { return max(f.cur.expires, f.old.expires) }

func (f *linkFilter) size() int64 {
	return 160 + 9*int64(cap(f.cur.ids)+cap(f.old.ids))
}

// Link remembers ids with provenance p for key until now+ttl. See doc.go.
func (s *Store) Link(_ context.Context, now time.Time, key string, ids []uint64, p store.Provenance, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("memory: link: %w", errTTL)
	}
	if p == store.Unreferenced || !p.Valid() {
		return fmt.Errorf("memory: link: %w", errProvenance)
	}
	if len(ids) == 0 {
		return nil
	}
	ns := now.UnixNano()
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
		f.cur.add(id, p, s.opts.LinkCapacity)
	}
	before := f.cost
	if f.cost = f.size(); f.cost != before {
		sh.bytes += f.cost - before
		s.makeRoom(sh, ns, kindLink, h, false, 0)
	}
	return nil
}

// Linked reports per id its best provenance among the generations
// unexpired at now.
func (s *Store) Linked(_ context.Context, now time.Time, key string, ids []uint64) ([]store.Provenance, error) {
	out := make([]store.Provenance, len(ids))
	ns := now.UnixNano()
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
		var p store.Provenance
		if cur {
			p = f.cur.get(id)
		}
		if old {
			p = max(p, f.old.get(id))
		}
		out[i] = p
	}
	return out, nil
}
