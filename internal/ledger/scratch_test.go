package ledger

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// logOf is the log of a dense hour of n Accesses, each changed by edit.
func logOf(n int, edit func(i int, e *entry)) []byte {
	d := &dictionary{}
	p := denseHour(d, n)
	for i := range p.entries {
		edit(i, &p.entries[i])
	}
	return logOfPartition(d, p)
}

// sealWith seals log as the sealer does (written to a file and read back
// into s), into a new shared dictionary, with s's memory.
func sealWith(t *testing.T, s *sealScratch, log []byte, keep int) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, log, 0o600); err != nil {
		t.Fatal(err)
	}
	log, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	q, valid, err := readLogInto("log", log, &s.arena, s.entries)
	if err != nil || valid != len(log) {
		t.Fatalf("log reads back to %d of %d: %v", valid, len(log), err)
	}
	var frames []byte
	d := &dictionary{}
	tuples := d.adopt(q, &frames)
	for ns := range q.sizes {
		q.sizes[ns] = d.t[ns].len()
	}
	out, _ := encodeSeg(q, tuples, [32]byte{}, mustEncoder(t))
	s.release(q, keep)
	return out
}

// The sealer's scratch, kept from one seal to the next, seals a log to the
// bytes fresh memory does, though what it kept holds another log's
// Accesses (longer, with links, other records and request ids): every
// field of an entry and every element cut from the arena is written anew.
// An outsize log's memory is not kept.
func TestSealScratchSameBytes(t *testing.T) {
	a := logOf(3000, func(int, *entry) {})
	b := logOf(7000, func(i int, e *entry) {
		e.reqID = reqIDOf(0xb0b, uint64(i+9))
		e.links = []uint64{uint64(i), 7}
		e.masks = []uint32{0}
		e.recs = append(e.recs, rec{id: 1, classes: 3, masked: 2})
		e.authors = append(e.authors, 2)
		e.status = 429
	})
	want := sealWith(t, &sealScratch{}, a, 1<<20)

	var s sealScratch
	sealWith(t, &s, b, 1<<20)
	if cap(s.entries) < 7000 || len(s.arena.u32.spare) == 0 || len(s.arena.recs.spare) == 0 || len(s.arena.str.spare) == 0 {
		t.Fatalf("scratch kept %d entries, %d, %d, %d spare chunks", cap(s.entries), len(s.arena.u32.spare), len(s.arena.recs.spare), len(s.arena.str.spare))
	}
	for _, e := range s.entries[:cap(s.entries)] {
		if e.links != nil || e.recs != nil || e.reqID != "" {
			t.Fatal("a kept entry still refers to what it held")
		}
	}
	// Decoding does not count on it either: every slot and chunk element
	// it reuses is written whatever it held.
	for i := range s.entries[:cap(s.entries)] {
		s.entries[:cap(s.entries)][i] = entry{reqID: "x", unref: true, page: 9, lookup: 9, status: 7, rule: 3, links: []uint64{1}, masks: []uint32{1}}
	}
	for _, c := range s.arena.u32.spare {
		for i := range c[:cap(c)] {
			c[:cap(c)][i] = 0xffffffff
		}
	}
	for _, c := range s.arena.recs.spare {
		for i := range c[:cap(c)] {
			c[:cap(c)][i] = rec{id: 5, classes: 5, masked: 5}
		}
	}
	if got := sealWith(t, &s, a, 1<<20); !bytes.Equal(got, want) {
		t.Fatalf("sealed with kept memory: %d bytes differ from fresh memory's %d", len(got), len(want))
	}

	sealWith(t, &s, b, 5000) // past what is kept
	if s.held() || len(s.arena.u32.spare) != 0 {
		t.Fatal("an outsize log's memory was kept")
	}
}

// The sealer keeps its scratch while seals follow each other, says how
// much in warden_ledger_seal_scratch_bytes, and drops it once no seal
// came for scratchIdle.
func TestSealScratchKeptWhileBusy(t *testing.T) {
	for _, idle := range []time.Duration{time.Hour, 50 * time.Millisecond} {
		c := &clock{t: t0}
		m := NewMetrics(nil)
		l := openAt(t, t.TempDir(), c, Options{PartitionAccesses: 5, Metrics: m, scratchIdle: idle})
		for i := range 12 { // parts of 5, 5, 2: the first two sealed
			at := t0.Add(time.Duration(i) * time.Second)
			c.set(at)
			l.Add(profile(at, "a", "10.0.0.1", fmt.Sprint(i), false))
		}
		kept := -1.0
		for i := 0; i < 500 && (testutil.ToFloat64(m.sealed) < 2 || idle < time.Hour && kept != 0); i++ {
			l.Sync()
			time.Sleep(10 * time.Millisecond)
			kept = testutil.ToFloat64(m.scratch)
		}
		if got := testutil.ToFloat64(m.sealed); got != 2 {
			t.Fatalf("%v sealed, want 2", got)
		}
		if kept = testutil.ToFloat64(m.scratch); idle == time.Hour && kept < 5*float64(unsafe.Sizeof(entry{})) {
			t.Fatalf("idle %v: the sealer keeps %v bytes after two seals, want its Accesses' and arena's", idle, kept)
		}
		if idle < time.Hour && kept != 0 {
			t.Fatalf("idle %v: the sealer still keeps %v bytes", idle, kept)
		}
		l.Close()
	}
}
