package memory

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/warden-gw/warden/internal/store"
)

// ShardState is a copy of one shard's limits, budgets and link filters, for
// a snapshot. Keys are the store's keyed hashes (HashKey), times are Unix
// nanoseconds, so a restore later honours windows and expiries. Slices
// point into arenas the ShardState reuses from one export to the next.
type ShardState struct {
	Limits  []LimitState
	Budgets []BudgetState
	Links   []LinkState

	ids     []uint64 // arena for budgets' subjects, filters' generations and answers' opens
	regs    []uint8  // arena for budgets' sketches
	prov    []byte   // arena for generations' provenances
	tags    []uint32 // arena for generations' answer tags
	answers []AnswerState
}

// LimitState is one GCRA limit: its theoretical arrival time.
type LimitState struct {
	Key uint64
	TAT int64
}

// BudgetState is one distinct-subject budget in its window.
type BudgetState struct {
	Key           uint64
	Start, Window int64
	Subjects      []uint64 // the exact set, in no order
	Sketch        []uint8  // HyperLogLog registers (SketchRegisters), nil when exact only
}

// SketchRegisters is the length of BudgetState.Sketch.
const SketchRegisters = hllM

// LinkState is one link filter's two generations and its fan-out cap's
// state: the opens counted per answer (Answers, unexpired ones, at most
// store.MaxFanoutAnswers of at most store.MaxFanoutLimit ids each) and the
// end of its hold (Held, Unix ns; 0: none). Snapshots before version 3
// have neither: a restore then counts afresh.
type LinkState struct {
	Key      uint64
	Cur, Old LinkGenState
	Answers  []AnswerState
	Held     int64
}

// AnswerState is the distinct ids one identity opened from one answer
// (tag) in the window ending at Expires.
type AnswerState struct {
	Tag     uint32
	Expires int64
	IDs     []uint64
}

// LinkGenState is one generation: the sorted ids shown (Small) with each
// one's provenance (Prov, as long as Small) and the tag of the answer that
// showed it (Tags, as long as Small; nil before version 3 snapshots: tag
// 0, never counted by the fan-out cap), and whether it was saturated
// (Full). Bits is a bloom filter of a version 1 snapshot: such a
// generation cannot say which ids it holds, nor how they were shown, and
// is dropped on import (its ids become unreferenced, never better).
type LinkGenState struct {
	First, Expires int64
	Small, Bits    []uint64
	Prov           []byte
	Tags           []uint32
	Full           bool
}

// Reset empties st, keeping its memory.
func (st *ShardState) Reset() {
	st.Limits, st.Budgets, st.Links = st.Limits[:0], st.Budgets[:0], st.Links[:0]
	st.ids, st.regs, st.prov, st.tags, st.answers = st.ids[:0], st.regs[:0], st.prov[:0], st.tags[:0], st.answers[:0]
}

// Keys is how many entries st holds.
func (st *ShardState) Keys() int { return len(st.Limits) + len(st.Budgets) + len(st.Links) }

// Shards is the number of shards, for ExportShard.
func (s *Store) Shards() int { return len(s.shards) }

// ExportShard copies shard i into st (after Reset), holding the shard's
// lock only while copying: the caller encodes and writes with no lock held.
// Each key is copied whole under the lock, so a snapshot is consistent per
// key. Entries idle at the shard's clock are left out.
func (s *Store) ExportShard(i int, st *ShardState) {
	st.Reset()
	sh := s.shards[i]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := sh.lastNow
	// Arenas sized first, so the slices taken from them stay valid.
	ids, regs, gens, answers := 0, 0, 0, 0
	for _, b := range sh.budgets {
		ids += b.exact.len()
		if b.sketch != nil {
			regs += hllM
		}
	}
	for _, f := range sh.links {
		gens += len(f.cur.ids) + len(f.old.ids)
		answers += len(f.answers)
		for i := range f.answers {
			ids += len(f.answers[i].ids)
		}
	}
	st.ids = slices.Grow(st.ids[:0], ids+gens)
	st.regs = slices.Grow(st.regs[:0], regs)
	st.prov = slices.Grow(st.prov[:0], gens)
	st.tags = slices.Grow(st.tags[:0], gens)
	st.answers = slices.Grow(st.answers[:0], answers)
	for key, tat := range sh.limits {
		if tat > now {
			st.Limits = append(st.Limits, LimitState{Key: key, TAT: tat})
		}
	}
	for key, b := range sh.budgets {
		if b.start+b.window <= now {
			continue
		}
		from := len(st.ids)
		b.exact.each(func(x uint64) { st.ids = append(st.ids, x) })
		bs := BudgetState{Key: key, Start: b.start, Window: b.window, Subjects: st.ids[from:len(st.ids):len(st.ids)]}
		if b.sketch != nil {
			from := len(st.regs)
			st.regs = append(st.regs, b.sketch.regs[:]...)
			bs.Sketch = st.regs[from:len(st.regs):len(st.regs)]
		}
		st.Budgets = append(st.Budgets, bs)
	}
	for key, f := range sh.links {
		if f.expires() <= now {
			continue
		}
		ls := LinkState{Key: key, Cur: st.copyGen(&f.cur), Old: st.copyGen(&f.old)}
		if f.held > now {
			ls.Held = f.held
		}
		from := len(st.answers)
		for i := range f.answers {
			if a := &f.answers[i]; a.expires > now {
				st.answers = append(st.answers, AnswerState{Tag: a.tag, Expires: a.expires, IDs: st.take(a.ids)})
			}
		}
		if len(st.answers) > from {
			ls.Answers = st.answers[from:len(st.answers):len(st.answers)]
		}
		st.Links = append(st.Links, ls)
	}
}

// take copies src to the ids arena.
func (st *ShardState) take(src []uint64) []uint64 {
	if src == nil {
		return nil
	}
	from := len(st.ids)
	st.ids = append(st.ids, src...)
	return st.ids[from:len(st.ids):len(st.ids)]
}

func (st *ShardState) copyGen(g *linkGen) LinkGenState {
	from := len(st.prov)
	for _, p := range g.prov {
		st.prov = append(st.prov, byte(p))
	}
	prov := st.prov[from:len(st.prov):len(st.prov)]
	from = len(st.tags)
	st.tags = append(st.tags, g.tags...)
	tags := st.tags[from:len(st.tags):len(st.tags)]
	return LinkGenState{First: g.first, Expires: g.expires, Small: st.take(g.ids), Prov: prov, Tags: tags, Full: g.full}
}

// Restored counts what Import kept and what it dropped (expired at now, or
// not fitting this store: a version 1 bloom filter, an
// impossible value).
type Restored struct {
	Limits, Budgets, Links int
	Dropped                int
}

// Add sums two counts.
func (r *Restored) Add(o Restored) {
	r.Limits += o.Limits
	r.Budgets += o.Budgets
	r.Links += o.Links
	r.Dropped += o.Dropped
}

// Import adds st's entries that are unexpired at now, each to the shard its
// key picks here (the shard count may have changed). It is meant for a
// store not yet serving; entries already held for the same key are
// replaced. Nothing in st is trusted: impossible values drop the entry.
// Import copies what it keeps; st may be reused.
func (s *Store) Import(now time.Time, st *ShardState) Restored {
	ns := now.UnixNano()
	var r Restored
	for _, l := range st.Limits {
		if l.TAT <= ns {
			r.Dropped++
			continue
		}
		sh := s.shards[l.Key&s.mask]
		sh.mu.Lock()
		sh.observe(ns)
		sh.remove(kindLimit, l.Key)
		s.makeRoom(sh, ns, kindLimit, l.Key, true, limitCost)
		sh.limits[l.Key] = l.TAT
		sh.keys++
		sh.bytes += limitCost
		sh.mu.Unlock()
		r.Limits++
	}
	for i := range st.Budgets {
		b := s.budgetOf(&st.Budgets[i], ns)
		if b == nil {
			r.Dropped++
			continue
		}
		key := st.Budgets[i].Key
		sh := s.shards[key&s.mask]
		sh.mu.Lock()
		sh.observe(ns)
		sh.remove(kindBudget, key)
		s.makeRoom(sh, ns, kindBudget, key, true, b.cost)
		sh.budgets[key] = b
		sh.keys++
		sh.bytes += b.cost
		sh.mu.Unlock()
		r.Budgets++
	}
	for i := range st.Links {
		f := s.linkOf(&st.Links[i], ns)
		if f == nil {
			r.Dropped++
			continue
		}
		key := st.Links[i].Key
		sh := s.shards[key&s.mask]
		sh.mu.Lock()
		sh.observe(ns)
		sh.remove(kindLink, key)
		s.makeRoom(sh, ns, kindLink, key, true, f.cost)
		sh.links[key] = f
		sh.keys++
		sh.bytes += f.cost
		sh.mu.Unlock()
		r.Links++
	}
	return r
}

// maxRegister is the largest value a register of the sketch can hold.
const maxRegister = 64 - hllP + 1

// budgetOf rebuilds a budget, or returns nil when it has expired at now or
// cannot be one.
func (s *Store) budgetOf(bs *BudgetState, now int64) *budget {
	if bs.Window <= 0 || bs.Window > maxSpan || bs.Start > maxSpan || bs.Start < -maxSpan || bs.Start+bs.Window <= now || windowStart(bs.Start, bs.Window) != bs.Start {
		return nil
	}
	if bs.Sketch != nil && len(bs.Sketch) != hllM {
		return nil
	}
	b := &budget{start: bs.Start, window: bs.Window}
	for _, x := range bs.Subjects {
		if !b.exact.has(x) {
			b.exact.add(x)
		}
	}
	if bs.Sketch != nil {
		sk := newHLL()
		for i, r := range bs.Sketch {
			if r > maxRegister {
				return nil
			}
			sk.regs[i] = r
			sk.sum += hllPow[r] - 1
			if r != 0 {
				sk.zeros--
			}
		}
		ez := float64(sk.zeros)
		sk.est = int(hllAlpha*hllM*(hllM-ez)/(sk.sum+beta14(ez)) + 0.5)
		b.sketch = sk
	}
	b.cost = b.size()
	return b
}

// linkOf rebuilds a link filter, or returns nil when both generations have
// expired at now or do not fit this store (the sweep drops such a filter,
// its fan-out state with it, in a running store too). The fan-out cap's
// answers expired at now and its hold if ended are dropped, and so is an
// answer no store could have made: tag 0, past store.MaxFanoutLimit ids,
// a tag told twice, or past store.MaxFanoutAnswers of them.
func (s *Store) linkOf(ls *LinkState, now int64) *linkFilter {
	f := &linkFilter{}
	ok := s.genOf(&f.cur, &ls.Cur, now)
	if !s.genOf(&f.old, &ls.Old, now) && !ok {
		return nil
	}
	if ls.Held > now {
		f.held = ls.Held
	}
	for i := range ls.Answers {
		a := &ls.Answers[i]
		switch {
		case a.Expires <= now || a.Tag == 0 || len(a.IDs) > store.MaxFanoutLimit || len(f.answers) == store.MaxFanoutAnswers:
			continue
		case slices.ContainsFunc(f.answers, func(b answerOpens) bool { return b.tag == a.Tag }):
			continue
		}
		f.answers = append(f.answers, answerOpens{tag: a.Tag, expires: a.Expires, ids: slices.Clone(a.IDs)})
	}
	f.cost = f.size()
	return f
}

// genOf fills g from gs and reports whether it holds anything unexpired.
// A generation without provenances (version 1 snapshots) counts its ids as
// shown in a list, the worst provenance of a shown id; one without answer
// tags (before version 3) gives its ids tag 0, never counted by the
// fan-out cap; a bloom filter (version 1) is dropped; ids past this
// store's capacity are dropped and the generation marked full.
func (s *Store) genOf(g *linkGen, gs *LinkGenState, now int64) bool {
	switch {
	case gs.Expires <= now || gs.First == 0 || gs.First > gs.Expires:
		return false
	case gs.Bits != nil:
		return false
	case gs.Prov != nil && len(gs.Prov) != len(gs.Small):
		return false
	case gs.Tags != nil && len(gs.Tags) != len(gs.Small):
		return false
	}
	g.first, g.expires, g.full = gs.First, gs.Expires, gs.Full
	for i, id := range gs.Small {
		p := store.List
		if gs.Prov != nil {
			p = store.Provenance(gs.Prov[i])
		}
		if p == store.Unreferenced || !p.Valid() {
			continue
		}
		var tag uint32
		if gs.Tags != nil {
			tag = gs.Tags[i]
		}
		g.add(id, p, tag, s.opts.LinkCapacity)
	}
	return true
}

// ImportBans adds bans unexpired at now without telling the journal (they
// come from it), up to MaxBans. It returns how many it kept.
func (s *Store) ImportBans(now time.Time, bans []store.Ban) int {
	s.banMu.Lock()
	defer s.banMu.Unlock()
	ns, kept := now.UnixNano(), 0
	for _, b := range bans {
		if !b.Until.IsZero() && b.Until.UnixNano() <= ns {
			continue
		}
		h := s.banHash(b.Key())
		if s.putBan(s.shards[h&s.mask], h, b) {
			kept++
		}
	}
	return kept
}

// WithBans calls fn with every ban held (expired ones included, sorted by
// facet and value) while no ban can change: the journal rewrites itself
// from them. fn must not call the Store's ban methods.
func (s *Store) WithBans(ctx context.Context, fn func(context.Context, []store.Ban) error) error {
	s.banMu.Lock()
	defer s.banMu.Unlock()
	var all []store.Ban
	for _, sh := range s.shards {
		sh.mu.Lock()
		for _, b := range sh.bans {
			all = append(all, b)
		}
		sh.mu.Unlock()
	}
	slices.SortFunc(all, func(a, b store.Ban) int {
		return cmp.Or(cmp.Compare(a.Facet, b.Facet), cmp.Compare(a.Value, b.Value))
	})
	if err := fn(ctx, all); err != nil {
		return fmt.Errorf("memory: bans: %w", err)
	}
	return nil
}
