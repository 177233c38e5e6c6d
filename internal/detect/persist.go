package detect

import (
	"slices"
	"time"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/store"
)

// Persisted counts what Restore kept of a saved state and what it dropped
// (expired at the restart, of a rule no longer configured or changed, past
// the bounds, impossible).
type Persisted struct {
	Offences, Tracks, Dropped int
}

// ExportDetect copies into st (after Reset) the state that decides future
// bans, as of now: every value's ban history not yet forgotten (the
// longest ban duration after its latest ban ended), and the tracks' windows
// and tallies unexpired at now, least recently used track first. A rule in
// shadow mode keeps no history and its windows are left out; so are the
// fan-out rules' list answers (at most 1,024 ids a track: a restart costs
// a harvester one list read). It takes the detector's lock to copy, a
// chunk of tracks at a time: the recording waits for one chunk at most
// (never the request path: its hand-off drops past a full queue).
func (d *Detector) ExportDetect(now time.Time, st *store.DetectState) {
	st.Reset()
	ns := now.UnixNano()
	keep := int64(store.LongestDuration(d.cfg.BanDurations))
	byFacet := d.rulesByFacet()
	d.mu.Lock()
	for k, o := range d.offences {
		if o.n < 1 || o.until.UnixNano()+keep <= ns {
			continue
		}
		st.Offences = append(st.Offences, store.DetectOffence{Facet: k.Facet, Value: k.Value, N: o.n,
			Until: o.until.UnixNano(), Seen: store.UnixNano(o.seen), Banned: store.UnixNano(o.banned), Everyone: o.everyone})
	}
	order := make([]*track, 0, len(d.tracks))
	for t := d.back; t != nil; t = t.prev {
		order = append(order, t)
	}
	d.mu.Unlock()
	// The tracks are copied exportChunk at a time, the lock taken for
	// each chunk: the recording waits at most for one chunk's copy (at
	// max_tracked, the whole copy is tens of ms of CPU). A track changed
	// between chunks is copied as it is when its chunk comes (each track
	// whole, under the lock); one dropped meanwhile is copied all the same
	// (a restore keeps the bound). Keys, times, windows and accounts go to
	// arenas sized per chunk, not an allocation per window.
	st.Tracks = slices.Grow(st.Tracks, len(order))
	for len(order) > 0 {
		chunk := order[:min(len(order), exportChunk)]
		order = order[len(chunk):]
		d.mu.Lock()
		var a exportArena
		a.size(chunk)
		for _, t := range chunk {
			if dt, ok := a.track(t, byFacet, ns); ok {
				st.Tracks = append(st.Tracks, dt)
			}
		}
		d.mu.Unlock()
	}
}

// exportChunk is how many tracks ExportDetect copies per taking of the
// lock.
const exportChunk = 1024

// size makes the arenas hold what the tracks could need. Called with mu
// held.
func (a *exportArena) size(tracks []*track) {
	keys, wins, accts := 0, 0, 0
	for _, t := range tracks {
		for i := range t.wins {
			keys += t.wins[i].n
		}
		wins += len(t.wins)
		accts += len(t.accounts)
	}
	a.keys, a.ats = make([]uint64, 0, keys), make([]int64, 0, keys)
	a.wins, a.accts = make([]store.DetectWindow, 0, wins), make([]store.DetectAccount, 0, accts)
}

// track copies what of t a snapshot keeps, and reports whether there is
// any. Called with mu held.
func (a *exportArena) track(t *track, byFacet map[identify.Facet][]*rule, ns int64) (store.DetectTrack, bool) {
	dt := store.DetectTrack{Kind: uint8(t.key.kind), Facet: t.key.facet.String(), Value: t.key.value}
	switch t.key.kind {
	case trackFacet, trackCohort:
		from := len(a.wins)
		for _, r := range byFacet[t.key.facet] {
			if !r.saved(t.key.kind) || r.slot >= len(t.wins) {
				continue
			}
			dw := store.DetectWindow{Rule: r.Name}
			w := &t.wins[r.slot]
			k := len(a.keys)
			for i := range w.n {
				if s := w.slot(i); ns-s.at <= int64(r.Window) {
					a.keys, a.ats = append(a.keys, s.key), append(a.ats, s.at)
				}
			}
			if len(a.keys) > k {
				dw.Keys, dw.At = a.keys[k:len(a.keys):len(a.keys)], a.ats[k:len(a.ats):len(a.ats)]
			}
			if r.Kind == Enumeration && r.enum < len(t.enum) {
				lt := &t.enum[r.enum]
				if last, all := lt.all.Buckets(); last > store.TallyBucket(ns, r.width)-store.TallyBuckets {
					dw.Tally, dw.Width, dw.Last, dw.All = true, r.width, last, all
					_, dw.Unreferenced = lt.unreferenced.Buckets()
				}
			}
			if len(dw.Keys) > 0 || dw.Tally {
				a.wins = append(a.wins, dw)
			}
		}
		if len(a.wins) == from {
			return dt, false
		}
		dt.Windows = a.wins[from:len(a.wins):len(a.wins)]
		if t.key.kind == trackCohort {
			from := len(a.accts)
			for acct := range t.accounts {
				a.accts = append(a.accts, store.DetectAccount{Account: acct})
			}
			dt.Accounts = a.accts[from:len(a.accts):len(a.accts)]
		}
	case trackAccounts:
		if ns-t.acctSeen.UnixNano() > int64(time.Hour) || len(t.accounts) == 0 {
			return dt, false
		}
		dt.AccountsSeen = t.acctSeen.UnixNano()
		from := len(a.accts)
		for acct, banned := range t.accounts {
			a.accts = append(a.accts, store.DetectAccount{Account: acct, Banned: banned})
		}
		dt.Accounts = a.accts[from:len(a.accts):len(a.accts)]
	}
	return dt, true
}

// exportArena is the memory ExportDetect copies into.
type exportArena struct {
	keys  []uint64
	ats   []int64
	wins  []store.DetectWindow
	accts []store.DetectAccount
}

// saved reports whether r counts in a window of a track of kind k (the
// windows a snapshot keeps): velocity, persistence and enumeration in the
// facet's track, cohort in its cohort track; never a rule in shadow mode.
func (r *rule) saved(k trackKind) bool {
	if r.shadow != nil {
		return false
	}
	switch r.Kind {
	case Velocity, Persistence, Enumeration:
		return k == trackFacet
	case Cohort:
		return k == trackCohort
	}
	return false
}

// rulesByFacet is the rules whose windows sit in a track of each facet.
func (d *Detector) rulesByFacet() map[identify.Facet][]*rule {
	m := map[identify.Facet][]*rule{}
	for _, r := range d.rules {
		m[r.facet] = append(m[r.facet], r)
	}
	return m
}

// Restore loads st, a state ExportDetect saved (read back from a snapshot
// file: nothing in it is trusted), as of now. Call it before the first
// Record. Histories forgotten at now are dropped, and so are windows of a
// rule no longer configured (or no longer of that kind or facet) or
// expired at now, an enumeration rule's tallies when its window changed,
// and anything impossible; the bounds are the running detector's
// (max_tracked tracks and histories, limit+1 keys a window).
func (d *Detector) Restore(now time.Time, st *store.DetectState) Persisted {
	var p Persisted
	if st == nil {
		return p
	}
	ns := now.UnixNano()
	keep := int64(store.LongestDuration(d.cfg.BanDurations))
	byName := map[string]*rule{}
	for _, r := range d.rules {
		byName[r.Name] = r
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, so := range st.Offences {
		f, ok := identify.ParseFacet(so.Facet)
		if !ok || so.Value == "" || so.N < 1 || so.Until <= 0 || so.Until+keep <= ns || so.Until+keep < so.Until || so.Until-keep > ns {
			p.Dropped++
			continue
		}
		key := store.BanKey{Facet: f.String(), Value: so.Value}
		if _, dup := d.offences[key]; !dup && len(d.offences) >= d.cfg.MaxTracked {
			d.dropOffences(now)
		}
		d.offences[key] = &offence{n: so.N, until: time.Unix(0, so.Until), seen: store.TimeOf(so.Seen), banned: store.TimeOf(so.Banned), everyone: so.Everyone}
		p.Offences++
	}
	for i := range st.Tracks {
		if d.restoreTrack(&st.Tracks[i], ns, byName, &p) {
			p.Tracks++
		} else {
			p.Dropped++
		}
	}
	d.m.tracked.Set(float64(len(d.tracks)))
	return p
}

// restoreTrack loads one saved track and reports whether anything of it
// was kept; windows dropped from a kept track count in p.Dropped. Called
// with mu held.
func (d *Detector) restoreTrack(dt *store.DetectTrack, ns int64, byName map[string]*rule, p *Persisted) bool {
	f, ok := identify.ParseFacet(dt.Facet)
	kind := trackKind(dt.Kind)
	if !ok || dt.Value == "" || kind > trackAccounts || int(f) >= len(d.wins) {
		return false
	}
	key := trackKey{kind: kind, facet: f, value: dt.Value}
	if kind == trackAccounts {
		if d.cfg.AddressAfter <= 0 || f != identify.FacetIP || ns-dt.AccountsSeen > int64(time.Hour) || len(dt.Accounts) == 0 {
			return false
		}
		t := d.get(key)
		t.acctSeen = time.Unix(0, dt.AccountsSeen)
		t.accounts = map[string]bool{}
		for _, a := range dt.Accounts {
			if a.Account != "" && len(t.accounts) < maxAccts {
				t.accounts[a.Account] = a.Banned
			}
		}
		return true
	}
	// The windows this track's rules would keep, checked before the track
	// is made (a track of nothing would push a live one out).
	type win struct {
		r  *rule
		dw *store.DetectWindow
	}
	var wins []win
	dropped := 0
	for i := range dt.Windows {
		dw := &dt.Windows[i]
		r := byName[dw.Rule]
		switch {
		case r == nil || r.facet != f || !r.saved(kind) || len(dw.Keys) != len(dw.At):
		case slices.ContainsFunc(wins, func(w win) bool { return w.r == r }):
		case !slices.ContainsFunc(dw.At, func(at int64) bool { return fresh(at, ns, int64(r.Window)) }) && !tallyFresh(dw, r, ns):
		default:
			wins = append(wins, win{r, dw})
			continue
		}
		dropped++
	}
	if len(wins) == 0 {
		return false // one track dropped, whatever its windows
	}
	p.Dropped += dropped
	t := d.get(key)
	kept := false
	for _, w := range wins {
		r, dw := w.r, w.dw
		span := int64(r.Window)
		win := &t.wins[r.slot]
		prev := int64(-1 << 63)
		for j, k := range dw.Keys {
			at := dw.At[j]
			if at < prev || !fresh(at, ns, span) {
				continue
			}
			prev = at
			win.add(k, at, span, r.Limit)
			kept = true
		}
		if tallyFresh(dw, r, ns) {
			if t.enum == nil {
				t.enum = make([]lookTally, d.enums)
				if d.enums <= len(t.enumBuf) {
					t.enum = t.enumBuf[:d.enums:d.enums]
				}
			}
			t.enum[r.enum] = lookTally{all: store.TallyOf(dw.Last, dw.All), unreferenced: store.TallyOf(dw.Last, dw.Unreferenced)}
			kept = true
		}
	}
	if kind == trackCohort {
		for _, a := range dt.Accounts {
			if t.accounts == nil {
				t.accounts = map[string]bool{}
			}
			if a.Account != "" && len(t.accounts) < 4*wins[0].r.Limit+4 {
				t.accounts[a.Account] = true
			}
		}
	}
	return kept
}

// fresh reports whether a key seen at at is within a window of span
// before now (and not further ahead than span: a clock's drift, not a
// forged time).
func fresh(at, now, span int64) bool {
	return at > 0 && now > 0 && now-at <= span && at-now <= span // both positive: no overflow
}

// tallyFresh reports whether dw holds enumeration rule r's tallies, counted
// in r's buckets (its window unchanged) and not all expired at now.
func tallyFresh(dw *store.DetectWindow, r *rule, now int64) bool {
	if !dw.Tally || r.Kind != Enumeration || dw.Width != r.width || r.width <= 0 {
		return false
	}
	b := store.TallyBucket(now, r.width)
	return dw.Last > b-store.TallyBuckets && dw.Last <= b+store.TallyBuckets
}
