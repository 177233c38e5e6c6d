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
type Observation struct {
	Key    string
	Member uint64
	At     time.Time
	Window time.Duration
	Limit  int
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
	case o.Limit < 1:
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
