package ledger

import (
	"unsafe"

	"github.com/warden-gw/warden/internal/cacheline"
	"github.com/warden-gw/warden/internal/inspect"
)

// batchRing is how many Accesses of a batch are in flight at once (a
// power of two, more than batchAhead).
const batchRing = 4

// batchAhead is how many Accesses ahead of the one appended AddBatch
// hashes ids and prefetches their slots; the records of the Access one
// ahead are prefetched from its slots meanwhile.
const batchAhead = 2

// staged is an Access of a batch in flight: its fields (own, for an
// inspect.Access), and its ids' hashes, taken ahead of its turn.
type staged struct {
	own  Entry
	in   *Entry
	recs []inspect.Record
	pf   prefetch
}

// AddBatch appends each of ins, in order: the log written is the same,
// byte for byte, as Add's of one after another. One lock for the batch,
// and the dictionary's look-ups pipelined across Accesses (see addMany).
func (l *Ledger) AddBatch(ins []Entry) {
	l.addMany(len(ins), func(i int, _ *Entry) (*Entry, []inspect.Record) { return &ins[i], nil })
}

// RecordBatch records each of accs, in order, as Record would one after
// another: the Ledger is a gateway.BatchRecorder (the recording drains
// its queue 32 Accesses at a time).
func (l *Ledger) RecordBatch(accs []*inspect.Access) {
	l.addMany(len(accs), func(i int, own *Entry) (*Entry, []inspect.Record) {
		if j := i + batchAhead; j < len(accs) {
			// The Access hashed next but batchAhead: written on the core
			// that served it, its lines are likely not in this one's cache.
			cacheline.Range(unsafe.Pointer(accs[j]), unsafe.Sizeof(*accs[j]))
		}
		entryOf(own, accs[i])
		return own, accs[i].Records
	})
}

// addMany appends n Accesses, at(i, own) the i-th (in own or where it
// lies) and the records that follow its own (Record's). Add waits, for
// each Access, on two cache misses per id one after the other in a
// dictionary of millions: its slot, then the record the slot points to
// (prefetch overlaps the ids' of one Access, not these two). Here the
// two are spread over three Accesses, as the sealer's internMany does
// over names: Access i+2's ids are hashed and their slots prefetched,
// Access i+1's records prefetched from its slots (arrived meanwhile),
// then Access i appended. Hashes depend on a table's seed alone, which
// its growth and an hour's reset keep, so the hashes taken ahead stay
// valid whatever Access i does to the tables (a prefetched place that
// moved is only a miss); each Access's hashes are its own (staged.pf),
// consumed in the order addIDs looks its ids up, front-cache hits
// included.
func (l *Ledger) addMany(n int, at func(i int, own *Entry) (*Entry, []inspect.Record)) {
	if n == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	hash := func(j int) {
		s := &l.ring[j&(batchRing-1)]
		s.in, s.recs = at(j, &s.own)
		s.pf.n, s.pf.next = 0, 0
		l.hashIDs(&s.pf, s.in, s.recs)
	}
	for j := range min(n, batchAhead) {
		hash(j)
	}
	l.ring[0].pf.names()
	for i := range n {
		if j := i + batchAhead; j < n {
			hash(j)
		}
		if j := i + 1; j < n {
			l.ring[j&(batchRing-1)].pf.names()
		}
		s := &l.ring[i&(batchRing-1)]
		if e := l.begin(s.in.Time, s.in.RequestID); e != nil {
			l.addNames(e, s.in)
			l.addIDs(e, &s.pf, s.in, s.recs)
		}
	}
	// Nothing of the batch kept past it: the gateway reuses an Access's
	// memory once recorded (Transient).
	for k := range l.ring {
		l.ring[k].own, l.ring[k].in, l.ring[k].recs = Entry{}, nil, nil
	}
}
