// Package store defines warden's shared state: rate limits, distinct-subject
// budgets, bans and link filters. Every operation is one atomic call on the
// backend (a lock-held update in memory, one Lua script or native command in
// Redis), never a read-modify-write across the network.
//
// Implementations live in sub-packages, one per backend (memory, redis), and
// all pass the conformance suite in storetest.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unsafe"
)

// ErrUnavailable wraps backend failures (network, timeouts, open breaker), so
// callers can apply the configured fail-open or fail-closed mode.
var ErrUnavailable = errors.New("store unavailable")

// LimitRequest asks one GCRA rate limit (generic cell rate algorithm).
// Interval is the emission interval (period / rate); Burst is how many
// requests may arrive at once beyond the steady rate (at least 1). Cost is
// the number of cells this request takes; 0 peeks without charging.
type LimitRequest struct {
	Key      string
	Interval time.Duration
	Burst    int
	Cost     int
}

// LimitResult is the outcome of one limit. When Allowed is false, RetryAfter
// says when the same request would be admitted. ResetAfter is when the limit
// is back to a full burst.
type LimitResult struct {
	Allowed    bool
	Remaining  int
	RetryAfter time.Duration
	ResetAfter time.Duration
}

// Ban refuses every request whose facet has Value until Until (with
// Anonymous, only those without a verified account).
type Ban struct {
	Facet   string    `json:"facet"`
	Value   string    `json:"value"`
	Reason  string    `json:"reason"`
	By      string    `json:"by"`
	Created time.Time `json:"created"`
	Until   time.Time `json:"until"` // zero: no expiry
	// Anonymous limits the ban to requests without a verified account:
	// the detector's ban of an address for what its anonymous traffic did.
	// Accounts behind the address are judged by their own rules, so none
	// is refused for what an anonymous neighbour did (issue 22).
	Anonymous bool `json:"anonymous"`
}

// BanChange is one ban put on a facet value, as a ban log keeps it, and
// what became of it there: Lifted, removed (warden ban rm, the admin API);
// Replaced, a later ban put on the same value while it held. Neither: it
// held until its Until, or holds still.
type BanChange struct {
	Ban
	Lifted, Replaced bool
}

// Key is the ban's store key: facet and value.
func (b Ban) Key() BanKey { return BanKey{Facet: b.Facet, Value: b.Value} }

// BanKey names a facet value that may be banned.
type BanKey struct {
	Facet string
	Value string
}

// AdmitRequest is the whole admission decision for one request, in one call:
// bans on each facet value first, then every limit.
type AdmitRequest struct {
	Bans   []BanKey
	Limits []LimitRequest
}

// AdmitResult holds the first matching ban (nil when none) and one result per
// limit, in request order. Limits are not evaluated when a ban matched.
// Each limit decides and charges on its own: a request refused by one limit
// has still been charged to the limits that admitted it.
type AdmitResult struct {
	Ban    *Ban
	Limits []LimitResult
}

// SpendRequest offers subjects to one distinct-subject budget: at most Limit
// distinct subjects per tumbling window of length Window (windows are aligned
// to multiples of Window since the Unix epoch). A subject already counted in
// the current window costs nothing.
type SpendRequest struct {
	Key      string
	Window   time.Duration
	Limit    int
	Subjects []uint64
}

// SpendResult says, per subject in request order, whether it may be served
// (already counted, or newly counted within the limit), and the budget's
// distinct count after the call. Counts are exact up to the backend's exact
// set size, estimates (HyperLogLog) past it.
type SpendResult struct {
	Allowed []bool
	Count   int
}

// Store is every operation warden's state needs. Consumers declare the
// smaller interfaces they use; this one exists for wiring and conformance.
//
// Keys (LimitRequest.Key, SpendRequest.Key, the key of Link and Linked) are
// read during the call only: a store copies what it keeps, so a caller may
// build them in a buffer it reuses (KeyBuf).
type Store interface {
	Admit(ctx context.Context, now time.Time, req *AdmitRequest) (AdmitResult, error)
	Spend(ctx context.Context, now time.Time, reqs []SpendRequest) ([]SpendResult, error)

	PutBan(ctx context.Context, b Ban) error
	RemoveBan(ctx context.Context, k BanKey) (bool, error)
	ListBans(ctx context.Context, now time.Time) ([]Ban, error)

	// Link remembers, for key (an identity), that ids were shown to it
	// with provenance p (not Unreferenced) in the answer tagged answer
	// (0: not told), for ttl. An id shown again keeps the better of its
	// provenances, and the answer of the latest showing with that
	// provenance (a tag of 0 never replaces one). A key holds a bounded
	// number of ids per generation: past it, new ids are not remembered
	// (see Provenance: saturation costs the identity).
	Link(ctx context.Context, now time.Time, key string, ids []uint64, p Provenance, answer uint32, ttl time.Duration) error
	// Linked reports per id the best provenance it was shown to key with
	// within its ttl, Unreferenced when never (or not remembered). It is
	// exact: an id never linked is never reported with a provenance.
	// With fan (nil: none), the same call also counts the ids as opened
	// from the answers that showed them and sets fan.Capped (see Fanout).
	// The answer is in dst's memory when cap(dst) >= len(ids), new memory
	// otherwise: a caller on the request path passes a buffer it reuses
	// and allocates nothing (nil: always new).
	Linked(ctx context.Context, now time.Time, key string, ids []uint64, fan *Fanout, dst []Provenance) ([]Provenance, error)

	Close() error
}

// Provenance is where an identity was shown an id: the route that linked
// to it. The zero value, Unreferenced, is "never shown" and the worst; then
// List (another profile's lists), Search, and Social (the identity's own
// feed, following and followers), the best.
//
// A link memory never reports a provenance better than the one an id was
// linked with: it is an exact set per identity, bounded per generation. An
// identity that fills it (the store's LinkCapacity ids in one generation)
// is saturated: ids shown after that are not remembered and their look-ups
// are Unreferenced. Reading lists wholesale thus costs the identity its
// later look-ups; it never turns unseen ids into seen ones, as a bloom
// filter's false positives would.
type Provenance uint8

// Provenances, from worst to best.
const (
	Unreferenced Provenance = iota
	List
	Search
	Social
	numProvenances
)

var provenanceNames = [numProvenances]string{"unreferenced", "list", "search", "social"}

// String is the provenance's name in config and logs.
func (p Provenance) String() string {
	if p < numProvenances {
		return provenanceNames[p]
	}
	return "provenance(" + string(rune('0'+p%10)) + ")"
}

// Valid reports whether p is one of the provenances.
func (p Provenance) Valid() bool { return p < numProvenances }

// ParseProvenance reads a provenance's name.
func ParseProvenance(s string) (Provenance, bool) {
	for i, n := range provenanceNames {
		if n == s {
			return Provenance(i), true
		}
	}
	return Unreferenced, false
}

// Fanout asks Linked to cap how many distinct ids one identity opens from
// one answer (a search page, another profile's followers): each id whose
// provenance is one of Provenances and whose answer tag is known counts
// as opened from that answer; the first Limit distinct ids opened from an
// answer within Window of its first open pass, later ones are Capped.
// An id opened again costs nothing. Past the cap, with Hold > 0, every
// open of a capped provenance is Capped for Hold (the identity showed it
// opens whole lists; a fresh answer does not reset that). State is bounded:
// Limit ids per answer, at most MaxFanoutAnswers answers per key (the
// soonest to expire go first), expiring after Window (Hold).
type Fanout struct {
	Limit       int
	Window      time.Duration
	Hold        time.Duration
	Provenances uint8 // bit 1<<p per capped provenance; never Unreferenced
	// Subjects, when set (as long as ids), is what each open counts as:
	// the person the answer is about, so opening one person by id and by
	// username is one open. Nil: the id itself.
	Subjects []uint64
	// Capped is set by Linked: per id, whether it was opened past the cap
	// (or while held). Linked reuses its array when long enough.
	Capped []bool
}

// Fan-out bounds: ids per answer and answers remembered per key.
const (
	MaxFanoutLimit   = 64
	MaxFanoutAnswers = 64
)

// Caps reports whether opens of ids shown with p are counted.
func (f *Fanout) Caps(p Provenance) bool { return p != Unreferenced && f.Provenances&(1<<p) != 0 }

// Validate reports a fan-out request for n ids no backend can decide.
func (f *Fanout) Validate(n int) error {
	switch {
	case f.Limit < 1 || f.Limit > MaxFanoutLimit:
		return fmt.Errorf("fanout limit must be 1 to %d, got %d", MaxFanoutLimit, f.Limit)
	case f.Window <= 0:
		return errors.New("fanout window must be positive")
	case f.Hold < 0:
		return errors.New("fanout hold must not be negative")
	case f.Provenances&(1<<Unreferenced) != 0 || f.Provenances >= 1<<numProvenances:
		return errors.New("fanout provenances must be list, search or social")
	case f.Subjects != nil && len(f.Subjects) != n:
		return fmt.Errorf("fanout subjects: %d for %d ids", len(f.Subjects), n)
	}
	return nil
}

// Subject is what the i-th of ids counts as opened.
func (f *Fanout) Subject(i int, ids []uint64) uint64 {
	if f.Subjects != nil {
		return f.Subjects[i]
	}
	return ids[i]
}

// Reset sizes Capped for n ids, all false.
func (f *Fanout) Reset(n int) {
	if cap(f.Capped) < n {
		f.Capped = make([]bool, n)
	}
	f.Capped = f.Capped[:n]
	clear(f.Capped)
}

// AnswerTag is the tag Link remembers for one answer, named by the strings
// given (the request id: each answer fetched is its own), never 0. FNV-1a.
func AnswerTag(name, more string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(name); i++ {
		h ^= uint32(name[i])
		h *= 16777619
	}
	h ^= 0
	h *= 16777619
	for i := 0; i < len(more); i++ {
		h ^= uint32(more[i])
		h *= 16777619
	}
	if h == 0 {
		h = 1
	}
	return h
}

// Validate reports a limit request no backend can decide.
func (l *LimitRequest) Validate() error {
	switch {
	case l.Interval <= 0:
		return errors.New("interval must be positive")
	case l.Burst < 1:
		return errors.New("burst must be at least 1")
	case l.Cost < 0:
		return errors.New("cost must not be negative")
	}
	return nil
}

// KeyBuf builds store keys in one buffer a caller reuses from call to call,
// so a key costs no allocation (stores read keys during the call only).
// A key made stays valid until Reset: appends only extend the buffer, and
// a grown copy leaves the old array as it was.
type KeyBuf struct{ b []byte }

// Key returns prefix+v, backed by the buffer.
func (k *KeyBuf) Key(prefix, v string) string {
	from := len(k.b)
	k.b = append(append(k.b, prefix...), v...)
	s := k.b[from:]
	return unsafe.String(unsafe.SliceData(s), len(s))
}

// Composite returns prefix+v+"|"+who, backed by the buffer: the key of a
// rule counting by an address facet (v, which never holds "|") for one
// identity (who) behind it.
func (k *KeyBuf) Composite(prefix, v, who string) string {
	from := len(k.b)
	k.b = append(append(append(append(k.b, prefix...), v...), '|'), who...)
	s := k.b[from:]
	return unsafe.String(unsafe.SliceData(s), len(s))
}

// Reset lets the buffer be reused; keys made before must no longer be used.
func (k *KeyBuf) Reset() { k.b = k.b[:0] }
