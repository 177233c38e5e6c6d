package memory

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/warden-gw/warden/internal/store"
)

var _ store.Detections = (*Store)(nil)

// detections holds the detector's windowed sets and ban histories. One
// lock is enough: on the memory store the detector counts in its own
// process and calls here only when asked to (tests, a future fleet of
// one); the figures are the conformance suite's, not a hot path's.
type detections struct {
	mu       sync.Mutex
	sets     map[uint64]*obsSet // hashed key -> set
	offences map[uint64]offenceRec
	lastNow  int64 // latest time a caller passed, Unix ns: the sweeper's clock
}

// obsSet is one windowed set: members oldest first, with the time each
// was last seen.
type obsSet struct {
	members []uint64
	at      []int64
	expires int64        // latest + window: idle past it
	tally   *store.Tally // set: the key is a tally (Observation.Tally)
}

type offenceRec struct {
	n      int
	until  int64
	forget int64 // until + the longest duration
}

// add notes member at at and returns how many members the set holds
// within window before at, at most limit+1. A member seen again keeps the
// later of its times, so calls out of order (gateways' clocks a little
// apart) never shorten its life.
func (w *obsSet) add(member uint64, at, window int64, limit int) int {
	w.expires = max(w.expires, at+window)
	cut := 0
	for cut < len(w.at) && w.at[cut] < at-window {
		cut++
	}
	w.members, w.at = slices.Delete(w.members, 0, cut), slices.Delete(w.at, 0, cut)
	if i := slices.Index(w.members, member); i >= 0 {
		if w.at[i] >= at {
			return len(w.members)
		}
		w.members, w.at = slices.Delete(w.members, i, i+1), slices.Delete(w.at, i, i+1)
	}
	// Times are nearly always in order: search from the end.
	i := len(w.at)
	for i > 0 && w.at[i-1] > at {
		i--
	}
	w.members, w.at = slices.Insert(w.members, i, member), slices.Insert(w.at, i, at)
	if n := len(w.members) - (limit + 1); n > 0 {
		w.members, w.at = slices.Delete(w.members, 0, n), slices.Delete(w.at, 0, n)
	}
	return len(w.members)
}

// Observe adds each observation to its set in order; see store.Detections.
func (s *Store) Observe(_ context.Context, obs []store.Observation) ([]int, error) {
	for i := range obs {
		if err := obs[i].Validate(); err != nil {
			return nil, fmt.Errorf("memory: observe: observation %d: %w", i, err)
		}
	}
	out := make([]int, len(obs))
	d := &s.det
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sets == nil {
		d.sets = map[uint64]*obsSet{}
	}
	for i := range obs {
		o := &obs[i]
		at := o.At.UnixNano()
		d.lastNow = max(d.lastNow, at)
		h := s.hash(o.Key)
		w := d.sets[h]
		if w == nil {
			if len(d.sets) >= s.opts.MaxKeys {
				d.evictSet(at)
			}
			w = &obsSet{}
			d.sets[h] = w
		}
		if o.Tally {
			if w.tally == nil {
				w.tally = &store.Tally{}
			}
			w.expires = max(w.expires, at+int64(o.Window))
			out[i] = w.tally.Add(at, store.TallyWidth(o.Window), 1)
			continue
		}
		out[i] = w.add(o.Member, at, int64(o.Window), o.Limit)
	}
	return out, nil
}

// evictSet drops one set: the first expired one of a sample, else the one
// idle longest in it. Called with mu held.
func (d *detections) evictSet(now int64) {
	var victim uint64
	best, n := int64(0), 0
	for h, w := range d.sets {
		if n == 0 || w.expires < best {
			victim, best = h, w.expires
		}
		if n++; n >= evictSample || best <= now {
			break
		}
	}
	delete(d.sets, victim)
}

// Offend records an offence of k at now; see store.Detections.
func (s *Store) Offend(_ context.Context, now time.Time, k store.BanKey, durations []time.Duration) (store.Offence, error) {
	if err := store.ValidateDurations(durations); err != nil {
		return store.Offence{}, fmt.Errorf("memory: offend on facet %s: %w", k.Facet, err)
	}
	ns := now.UnixNano()
	h := s.banHash(k)
	d := &s.det
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lastNow = max(d.lastNow, ns)
	if d.offences == nil {
		d.offences = map[uint64]offenceRec{}
	}
	r, ok := d.offences[h]
	if ok && r.forget <= ns {
		r, ok = offenceRec{}, false
	}
	o := store.OffenceAt(r.n, time.Unix(0, r.until), now, durations)
	if !o.New {
		return o, nil
	}
	if !ok && len(d.offences) >= s.opts.MaxBans {
		d.evictOffence()
	}
	until := o.Until.UnixNano()
	d.offences[h] = offenceRec{n: o.N, until: until, forget: until + int64(store.LongestDuration(durations))}
	return o, nil
}

// lift ends the hold of the history h whose ban was removed, keeping its
// count: a later offence is new and escalates.
func (d *detections) lift(h uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if r, ok := d.offences[h]; ok {
		r.until = 0
		d.offences[h] = r
	}
}

// evictOffence drops the history of a sample forgotten first. Called with
// mu held.
func (d *detections) evictOffence() {
	var victim uint64
	best, n := int64(0), 0
	for h, r := range d.offences {
		if n == 0 || r.forget < best {
			victim, best = h, r.forget
		}
		if n++; n >= evictSample {
			break
		}
	}
	delete(d.offences, victim)
}

// clock is the latest time Observe or Offend was passed.
func (d *detections) clock() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastNow
}

// sweep drops the sets idle and the histories forgotten at now.
func (d *detections) sweep(now int64) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	removed := 0
	for h, w := range d.sets {
		if w.expires < now {
			delete(d.sets, h)
			removed++
		}
	}
	for h, r := range d.offences {
		if r.forget <= now {
			delete(d.offences, h)
			removed++
		}
	}
	return removed
}
