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

// Ban refuses every request whose facet has Value until Until.
type Ban struct {
	Facet   string    `json:"facet"`
	Value   string    `json:"value"`
	Reason  string    `json:"reason"`
	By      string    `json:"by"`
	Created time.Time `json:"created"`
	Until   time.Time `json:"until"` // zero: no expiry
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
	// with provenance p (not Unreferenced), for ttl. An id shown again
	// keeps the better of its provenances. A key holds a bounded number
	// of ids per generation: past it, new ids are not remembered (see
	// Provenance: saturation costs the identity).
	Link(ctx context.Context, now time.Time, key string, ids []uint64, p Provenance, ttl time.Duration) error
	// Linked reports per id the best provenance it was shown to key with
	// within its ttl, Unreferenced when never (or not remembered). It is
	// exact: an id never linked is never reported with a provenance.
	Linked(ctx context.Context, now time.Time, key string, ids []uint64) ([]Provenance, error)

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
