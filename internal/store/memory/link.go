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
// each one's best provenance and the answer that showed it beside it, at
// most the store's LinkCapacity. Full says an id was refused for room: the
// identity is saturated.
type linkGen struct {
	first   int64 // first insertion, Unix ns; 0 when empty
	expires int64 // latest insertion + its ttl
	ids     []uint64
	prov    []store.Provenance
	tags    []uint32 // answer tags (0: not told)
	full    bool
}

func (g *linkGen) reset() {
	g.first, g.expires, g.ids, g.prov, g.tags, g.full = 0, 0, g.ids[:0], g.prov[:0], g.tags[:0], false
}

func (g *linkGen) get(id uint64) (store.Provenance, uint32) {
	if i, ok := slices.BinarySearch(g.ids, id); ok {
		return g.prov[i], g.tags[i]
	}
	return store.Unreferenced, 0
}

// add links id with p from answer tag, keeping the better provenance of an
// id already there (and the latest answer of that provenance). Past
// capacity a new id is dropped and the generation marked full: the id's
// look-ups will be Unreferenced, never better.
func (g *linkGen) add(id uint64, p store.Provenance, tag uint32, capacity int) {
	i, ok := slices.BinarySearch(g.ids, id)
	if ok {
		if p > g.prov[i] || p == g.prov[i] && tag != 0 {
			g.prov[i], g.tags[i] = p, tag
		}
		return
	}
	if len(g.ids) >= capacity {
		g.full = true
		return
	}
	if len(g.ids) == cap(g.ids) {
		// Grow by hand so a generation never holds more than capacity.
		n := min(max(8, 2*cap(g.ids)), capacity)
		ids, prov, tags := make([]uint64, len(g.ids), n), make([]store.Provenance, len(g.ids), n), make([]uint32, len(g.ids), n)
		copy(ids, g.ids)
		copy(prov, g.prov)
		copy(tags, g.tags)
		g.ids, g.prov, g.tags = ids, prov, tags
	}
	g.ids = slices.Insert(g.ids, i, id)
	g.prov = slices.Insert(g.prov, i, p)
	g.tags = slices.Insert(g.tags, i, tag)
}

// answerOpens is the ids an identity opened from one answer (fan-out cap),
// at most the cap's limit, until expires.
type answerOpens struct {
	tag     uint32
	expires int64
	ids     []uint64
}

// linkFilter holds two generations: new ids go to cur; cur becomes old once
// it spans ttl and old has expired, so no id is forgotten within its ttl.
type linkFilter struct {
	cur, old linkGen
	cost     int64
	answers  []answerOpens // fan-out cap, at most store.MaxFanoutAnswers
	held     int64         // fan-out hold until, Unix ns
}

func (f *linkFilter) expires() int64 { return max(f.cur.expires, f.old.expires) }

func (f *linkFilter) size() int64 {
	n := 200 + 13*int64(cap(f.cur.ids)+cap(f.old.ids)) + 40*int64(cap(f.answers))
	for i := range f.answers {
		n += 8 * int64(cap(f.answers[i].ids))
	}
	return n
}

// open counts id as opened from answer tag under fan at ns and reports
// whether it is past the cap (or held).
func (f *linkFilter) open(ns int64, id uint64, tag uint32, fan *store.Fanout) bool {
	if f.held > ns {
		return true
	}
	if tag == 0 {
		return false
	}
	a := f.answer(ns, tag, int64(fan.Window))
	if slices.Contains(a.ids, id) {
		return false
	}
	if len(a.ids) < fan.Limit {
		a.ids = append(a.ids, id)
		return false
	}
	if fan.Hold > 0 {
		f.held = ns + int64(fan.Hold)
	}
	return true
}

// answer is tag's opens live at ns, made (expiring at ns+window) when
// none: in the room of an expired one, else a new one, else (with
// MaxFanoutAnswers held) in the room of the one expiring soonest.
func (f *linkFilter) answer(ns int64, tag uint32, window int64) *answerOpens {
	soonest := -1
	for i := range f.answers {
		a := &f.answers[i]
		if a.expires > ns && a.tag == tag {
			return a
		}
		if soonest < 0 || a.expires < f.answers[soonest].expires {
			soonest = i
		}
	}
	if soonest < 0 || f.answers[soonest].expires > ns && len(f.answers) < store.MaxFanoutAnswers {
		f.answers = append(f.answers, answerOpens{})
		soonest = len(f.answers) - 1
	}
	a := &f.answers[soonest]
	a.tag, a.expires, a.ids = tag, ns+window, a.ids[:0]
	return a
}

// Link remembers ids with provenance p from answer for key until now+ttl.
// See doc.go.
func (s *Store) Link(_ context.Context, now time.Time, key string, ids []uint64, p store.Provenance, answer uint32, ttl time.Duration) error {
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
		f.cur.add(id, p, answer, s.opts.LinkCapacity)
	}
	before := f.cost
	if f.cost = f.size(); f.cost != before {
		sh.bytes += f.cost - before
		s.makeRoom(sh, ns, kindLink, h, false, 0)
	}
	return nil
}

// Linked reports per id its best provenance among the generations
// unexpired at now, in dst's memory when it has room, and with fan counts
// the opens per answer (see store.Fanout).
func (s *Store) Linked(_ context.Context, now time.Time, key string, ids []uint64, fan *store.Fanout, dst []store.Provenance) ([]store.Provenance, error) {
	if fan != nil {
		if err := fan.Validate(len(ids)); err != nil {
			return nil, fmt.Errorf("memory: linked: %w", err)
		}
		fan.Reset(len(ids))
	}
	out := append(dst[:0], make([]store.Provenance, len(ids))...) // zeroed: Unreferenced
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
		var p, q store.Provenance
		var tag, otag uint32
		if cur {
			p, tag = f.cur.get(id)
		}
		if old {
			// The current generation's showing is the later one: it
			// wins a tie.
			if q, otag = f.old.get(id); q > p {
				p, tag = q, otag
			}
		}
		out[i] = p
		if fan != nil && fan.Caps(p) {
			fan.Capped[i] = f.open(ns, fan.Subject(i, ids), tag, fan)
		}
	}
	if fan != nil {
		before := f.cost
		if f.cost = f.size(); f.cost != before {
			sh.bytes += f.cost - before
			s.makeRoom(sh, ns, kindLink, h, false, 0)
		}
	}
	return out, nil
}
