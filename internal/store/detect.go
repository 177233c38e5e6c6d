package store

import (
	"context"
	"errors"
	"time"
)

// Observation adds Member to the windowed set Key at At: the detector's
// counters (distinct people served to an account, refused requests of an
// address, young accounts on a network). A set holds the members seen
// within Window before the latest At (a member seen again moves to the
// later time) and at most Limit+1 of them, the oldest dropped: a count past
// Limit is all a rule needs to know.
//
// With Tally set, Key is a windowed tally instead (see Tally): the
// observation counts one event at At and its count is the events within
// Window, however many; Member and Limit are unused. A key is a set or a
// tally, never both.
type Observation struct {
	Key    string
	Member uint64
	At     time.Time
	Window time.Duration
	Limit  int
	Tally  bool
}

// Offence is a facet value's ban history in the store.
type Offence struct {
	// N counts the value's bans, the latest included.
	N int
	// Until is when the latest ban ends.
	Until time.Time
	// New says the call recorded a new offence; false: the ban of an
	// earlier one still held at now (another gateway banned it first).
	New bool
}

// Detections is the state the detector shares through the store, so a
// fleet of gateways counts and escalates together. Memory and Redis
// implement it; the conformance suite checks it.
type Detections interface {
	// Observe adds each observation in order and returns, per
	// observation, how many members its set holds within its window
	// right after it (at most Limit+1).
	Observe(ctx context.Context, obs []Observation) ([]int, error)
	// Offend records an offence of k at now unless a ban of an earlier
	// one still holds: the N-th offence is banned for durations[N-1] (the
	// last repeats). The history is forgotten the longest of durations
	// after its latest ban ended.
	Offend(ctx context.Context, now time.Time, k BanKey, durations []time.Duration) (Offence, error)
}

// Validate reports an observation no backend can count.
func (o *Observation) Validate() error {
	switch {
	case o.Window <= 0:
		return errors.New("window must be positive")
	case o.Limit < 1 && !o.Tally:
		return errors.New("limit must be at least 1")
	}
	return nil
}

// ValidateDurations reports ban durations no backend can escalate by.
func ValidateDurations(durations []time.Duration) error {
	if len(durations) == 0 {
		return errors.New("no ban durations")
	}
	for _, d := range durations {
		if d <= 0 {
			return errors.New("ban durations must be positive")
		}
	}
	return nil
}

// OffenceAt is the escalation every backend applies: given the history
// (n bans, the latest until), whether an offence at now is new, and its
// count and end.
func OffenceAt(n int, until, now time.Time, durations []time.Duration) Offence {
	if n > 0 && now.Before(until) {
		return Offence{N: n, Until: until}
	}
	d := durations[min(n, len(durations)-1)]
	return Offence{N: n + 1, Until: now.Add(d), New: true}
}

// LongestDuration is the longest of durations: how long a history is kept
// after its latest ban ends.
func LongestDuration(durations []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range durations {
		m = max(m, d)
	}
	return m
}

// TallyBuckets is how many buckets a windowed tally divides its window
// into (a power of two).
const TallyBuckets = 16

// TallyWidth is one bucket's width of a tally over window, in ns: a whole
// number of microseconds (at least one), so every backend (Redis keeps
// time in µs) draws the buckets' edges at the same instants.
func TallyWidth(window time.Duration) int64 {
	return max(int64(window/time.Microsecond)/TallyBuckets, 1) * int64(time.Microsecond)
}

// TallyBucket is the number of the bucket at (Unix ns) falls in.
func TallyBucket(at, width int64) int64 {
	b := at / width
	if at%width < 0 {
		b-- // floor, before 1970
	}
	return b
}

// Tally counts events within a sliding window in TallyBuckets buckets of
// TallyWidth: bounded (80 bytes) however many events, and exact up to one
// bucket at the window's old edge: an event is counted until between
// window-width and window after it happened (the window is the latest
// bucket and the 15 before it), never longer. Counting both sides of a
// ratio in the same buckets keeps the ratio exact over that span. The
// zero value is empty.
type Tally struct {
	last int64 // the latest bucket counted
	n    [TallyBuckets]uint32
	// sum is n's sum, kept as buckets change: Add returns it without
	// adding 16 buckets each time (the detector adds to two tallies per
	// look-up, on the recording goroutine that shares the request path's
	// cores).
	sum uint64
}

// Add counts n events at at (Unix ns) in buckets of width ns and returns
// the events within the window ending with the latest bucket seen: at's,
// or a later one's when at comes late (from a gateway whose clock is a
// little behind); an event older than that window is not counted.
func (t *Tally) Add(at, width int64, n uint32) int {
	b := TallyBucket(at, width)
	if b > t.last {
		// The buckets after the latest up to b saw nothing: they leave
		// the window's old end (all of them, at most, on a long gap).
		for e := max(t.last+1, b-TallyBuckets+1); e <= b; e++ {
			c := &t.n[e&(TallyBuckets-1)]
			t.sum -= uint64(*c)
			*c = 0
		}
		t.last = b
	}
	if b > t.last-TallyBuckets {
		c := &t.n[b&(TallyBuckets-1)]
		add := min(n, ^uint32(0)-*c) // saturates
		*c += add
		t.sum += uint64(add)
	}
	return int(t.sum)
}
