package store

import "time"

// DetectState is the detector's state that decides future bans, as the
// memory store's snapshot keeps it across a restart (on Redis the same
// state lives in the store: Detections). Times are Unix nanoseconds, so a
// restore later honours windows and expiries.
type DetectState struct {
	// Offences are ban histories per facet value: what escalates a repeat
	// offender's ban.
	Offences []DetectOffence
	// Tracks are the rules' windows per facet value, least recently used
	// first.
	Tracks []DetectTrack
}

// Reset empties st, keeping its memory.
func (st *DetectState) Reset() {
	st.Offences, st.Tracks = st.Offences[:0], st.Tracks[:0]
}

// Len is how many histories and tracks st holds.
func (st *DetectState) Len() int { return len(st.Offences) + len(st.Tracks) }

// DetectOffence is one value's ban history: N bans, the latest until
// Until; Seen when it was last banned, Banned when this gateway wrote (or
// learnt of) the latest ban; Everyone: the latest ban was for everyone on
// an address, not its anonymous traffic only.
type DetectOffence struct {
	Facet, Value        string
	N                   int
	Until, Seen, Banned int64
	Everyone            bool
}

// Kinds of DetectTrack.
const (
	TrackFacet    = 0 // the rules of Facet, by value
	TrackCohort   = 1 // a cohort rule's young accounts on Facet's value
	TrackAccounts = 2 // accounts seen on an address (address_after)
)

// DetectTrack is one facet value's windows: per rule (by name), the keys
// it counted with when each was last seen, and an enumeration rule's
// tallies; and, for a cohort or an address, the accounts seen there.
type DetectTrack struct {
	Kind         uint8
	Facet, Value string
	Windows      []DetectWindow
	Accounts     []DetectAccount
	AccountsSeen int64 // when an account was last seen on the address
}

// DetectWindow is one rule's window in a track: Keys and At (as long,
// oldest first), and for an enumeration rule its tallies (Tally set).
type DetectWindow struct {
	Rule  string
	Keys  []uint64
	At    []int64
	Tally bool
	// The tallies: their buckets' width (TallyWidth of the rule's window,
	// ns), the latest bucket counted and the counts of look-ups and of ids
	// never shown per bucket (see Tally).
	Width, Last       int64
	All, Unreferenced [TallyBuckets]uint32
}

// DetectAccount is an account seen on a cohort's value or an address, and
// whether the detector banned it.
type DetectAccount struct {
	Account string
	Banned  bool
}

// Buckets is the tally's latest bucket and its counts, for a snapshot.
func (t *Tally) Buckets() (last int64, n [TallyBuckets]uint32) { return t.last, t.n }

// TallyOf is the tally with these buckets (from Buckets).
func TallyOf(last int64, n [TallyBuckets]uint32) Tally {
	t := Tally{last: last, n: n}
	for _, c := range n {
		t.sum += uint64(c)
	}
	return t
}

// UnixNano is t in Unix ns, 0 for the zero time (a time not set: "none"
// in the state files).
func UnixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// TimeOf is UnixNano's inverse: the zero time for 0.
func TimeOf(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
