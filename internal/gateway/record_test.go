package gateway

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/warden-gw/warden/internal/inspect"
)

// gated is a recorder that announces each Access it is fed and then holds
// it until released: its queue stays full for as long as the test likes.
type gated struct {
	fed     chan *inspect.Access
	release chan struct{}
}

func newGated() *gated {
	return &gated{fed: make(chan *inspect.Access, 16), release: make(chan struct{})}
}

func (g *gated) Record(acc *inspect.Access) {
	g.fed <- acc
	<-g.release
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// fill offers two Accesses to a recording with a queue of one: the
// recorder holds the first, the queue the second.
func fill(t *testing.T, rc *Recording, g *gated) (a1, a2 *inspect.Access) {
	t.Helper()
	a1, a2 = &inspect.Access{RequestID: "1"}, &inspect.Access{RequestID: "2"}
	rc.offer(a1)
	if got := <-g.fed; got != a1 {
		t.Fatalf("fed %q first, want 1", got.RequestID)
	}
	rc.offer(a2)
	return a1, a2
}

// A request that finds the queue full waits for a slot: the Access it
// offers is queued as soon as the recorder takes the next one, and none
// is dropped.
func TestRecordingWaitsForSlot(t *testing.T) {
	g := newGated()
	m := NewRecordingMetrics(nil)
	// The bound is far beyond the test: the slot, not the timer, ends the
	// wait.
	rc := NewRecording("wait", g, 1, m, WaitWhenFull(time.Hour))
	_, a2 := fill(t, rc, g)
	a3 := &inspect.Access{RequestID: "3"}
	offered := make(chan struct{})
	go func() { rc.offer(a3); close(offered) }()
	// The offer is waiting once it has counted its wait.
	for counterValue(t, rc.waited) == 0 {
		select {
		case <-offered:
			t.Fatal("the offer returned with the queue full and the recorder stuck")
		case <-time.After(time.Millisecond):
		}
	}
	g.release <- struct{}{} // the recorder finishes 1 and takes 2: a slot frees
	if got := <-g.fed; got != a2 {
		t.Fatalf("fed %q second, want 2", got.RequestID)
	}
	<-offered
	g.release <- struct{}{}
	if got := <-g.fed; got != a3 {
		t.Fatalf("fed %q third, want 3 (the Access that waited)", got.RequestID)
	}
	close(g.release)
	if err := rc.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := counterValue(t, rc.dropped); d != 0 {
		t.Errorf("dropped %v, want 0", d)
	}
	if w := counterValue(t, rc.waited); w != 1 {
		t.Errorf("waited %v, want 1", w)
	}
}

// With no slot within the bound, the Access is dropped and counted, and
// the request goes on.
func TestRecordingWaitGivesUp(t *testing.T) {
	g := newGated()
	rc := NewRecording("wait", g, 1, NewRecordingMetrics(nil), WaitWhenFull(time.Millisecond))
	fill(t, rc, g)
	rc.offer(&inspect.Access{RequestID: "3"}) // returns once the bound passes
	if d, w := counterValue(t, rc.dropped), counterValue(t, rc.waited); d != 1 || w != 1 {
		t.Fatalf("dropped %v waited %v, want 1 and 1", d, w)
	}
	close(g.release)
	if err := rc.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	close(g.fed)
	for acc := range g.fed {
		if acc.RequestID == "3" {
			t.Fatal("the Access given up on was recorded")
		}
	}
}

// Close ends a wait at once: a shutdown never waits for the bound.
func TestRecordingCloseEndsWait(t *testing.T) {
	g := newGated()
	rc := NewRecording("wait", g, 1, NewRecordingMetrics(nil), WaitWhenFull(time.Hour))
	fill(t, rc, g)
	offered := make(chan struct{})
	go func() { rc.offer(&inspect.Access{RequestID: "3"}); close(offered) }()
	for counterValue(t, rc.waited) == 0 {
		time.Sleep(time.Millisecond)
	}
	closed := make(chan error)
	go func() { closed <- rc.Close(context.Background()) }()
	<-offered // the wait ended with the recording, not the hour
	close(g.release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if d := counterValue(t, rc.dropped); d != 1 {
		t.Errorf("dropped %v, want 1", d)
	}
}

// Without a wait, and with a wait but room in the queue, an offer
// allocates nothing.
func TestRecordingOfferAllocs(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []RecordingOption
	}{{"drop", nil}, {"wait with room", []RecordingOption{WaitWhenFull(time.Hour)}}} {
		t.Run(tc.name, func(t *testing.T) {
			rc := NewRecording("allocs", discard{}, 1<<16, NewRecordingMetrics(nil), tc.opts...)
			acc := &inspect.Access{}
			if n := testing.AllocsPerRun(1000, func() { rc.offer(acc) }); n != 0 {
				t.Errorf("%v allocations per offer, want 0", n)
			}
			if err := rc.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

type discard struct{}

func (discard) Record(*inspect.Access) {}

// seen keeps the request ids it is fed, under its name.
type seen struct {
	name string
	log  *[]string
}

func (s seen) Record(acc *inspect.Access) { *s.log = append(*s.log, s.name+acc.RequestID) }

// Recorders sharing one recording are each fed every Access, in the
// order offered, by one hand-off per Access. (Accesses drained together
// go to each recorder in turn as a batch: the first recorder may see
// both before the second sees one.)
func TestRecordersShareRecording(t *testing.T) {
	var ledgerLog, watchLog []string
	rc := NewRecording("shared", Recorders{seen{"ledger:", &ledgerLog}, seen{"watch:", &watchLog}}, 4, NewRecordingMetrics(nil))
	rc.offer(&inspect.Access{RequestID: "1"})
	rc.offer(&inspect.Access{RequestID: "2"})
	if err := rc.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		got  []string
		want []string
	}{{ledgerLog, []string{"ledger:1", "ledger:2"}}, {watchLog, []string{"watch:1", "watch:2"}}} {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("fed %q, want %q", c.got, c.want)
		}
	}
}

type transientRec bool

func (transientRec) Record(*inspect.Access) {}
func (t transientRec) Transient() bool      { return bool(t) }

// Recorders are transient only when each of them is: one recorder that
// keeps an Access stops its reuse for all.
func TestRecordersTransient(t *testing.T) {
	for _, c := range []struct {
		rs   Recorders
		want bool
	}{
		{Recorders{transientRec(true), transientRec(true)}, true},
		{Recorders{transientRec(true), transientRec(false)}, false},
		{Recorders{transientRec(true), seen{}}, false}, // not a Transient
	} {
		if got := c.rs.Transient(); got != c.want {
			t.Errorf("%#v: transient %v, want %v", c.rs, got, c.want)
		}
		if rc := NewRecording("r", c.rs, 1, NewRecordingMetrics(nil)); rc.transient != c.want {
			t.Errorf("%#v: recording transient %v, want %v", c.rs, rc.transient, c.want)
		}
	}
}

// heldRec holds its first Access until let go, so that everything offered
// meanwhile queues, then keeps the ids it is fed.
type heldRec struct {
	first chan struct{}
	ids   []string
}

func (h *heldRec) Record(acc *inspect.Access) {
	if h.ids == nil {
		<-h.first
	}
	h.ids = append(h.ids, acc.RequestID)
}

// drain takes queued Accesses drainBatch at a time: more than a few
// batches queued are fed in the order offered, each once, and each box
// released.
func TestRecordingDrainsInOrder(t *testing.T) {
	const n = 3*drainBatch + 5
	h := &heldRec{first: make(chan struct{})}
	rc := NewRecording("held", h, n+1, NewRecordingMetrics(nil))
	boxes := handBoxes(rc, n)
	close(h.first)
	if err := rc.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(h.ids) != n {
		t.Fatalf("fed %d Accesses, want %d", len(h.ids), n)
	}
	for i, id := range h.ids {
		if id != strconv.Itoa(i) {
			t.Fatalf("Access %d fed as %q: out of order (%q)", i, id, h.ids)
		}
	}
	checkReleased(t, boxes)
}

// handBoxes hands rc n pooled boxes, their Accesses' request ids 0 to
// n-1, each to be released once.
func handBoxes(rc *Recording, n int) []*accessBox {
	var pool sync.Pool
	boxes := make([]*accessBox, n)
	for i := range boxes {
		b := &accessBox{pool: &pool}
		b.acc.RequestID = strconv.Itoa(i)
		b.refs.Store(1)
		boxes[i] = b
		rc.hand(handoff{acc: &b.acc, box: b})
	}
	return boxes
}

// checkReleased fails unless every box was released (emptied).
func checkReleased(t *testing.T, boxes []*accessBox) {
	t.Helper()
	for i, b := range boxes {
		if b.pool != nil || b.acc.RequestID != "" {
			t.Fatalf("box %d not released", i)
		}
	}
}

// batchRec is a heldRec that also takes batches, counting them.
type batchRec struct {
	heldRec
	batches []int
}

func (b *batchRec) RecordBatch(accs []*inspect.Access) {
	b.batches = append(b.batches, len(accs))
	for _, acc := range accs {
		b.ids = append(b.ids, acc.RequestID)
	}
}

// A recorder that takes batches is handed what drain takes off the
// queue as batches of up to drainBatch, in the order offered, each
// Access once and each box released; through Recorders too, where a
// recorder that does not take batches (the dashboard's Watch) is fed the
// same Accesses one after another.
func TestRecordingHandsBatches(t *testing.T) {
	const n = 3*drainBatch + 5
	b := &batchRec{heldRec: heldRec{first: make(chan struct{})}}
	var log []string
	rc := NewRecording("batched", Recorders{b, seen{"", &log}}, n+1, NewRecordingMetrics(nil))
	boxes := handBoxes(rc, n)
	close(b.first)
	if err := rc.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The first Access wakes the recording and is fed alone (Record,
	// which holds it), unless the stop was seen first; the rest queued
	// meanwhile and come as batches of up to drainBatch.
	full := 0
	for _, k := range b.batches {
		if k > drainBatch || k < 1 {
			t.Fatalf("batches %v: one past drainBatch (%d)", b.batches, drainBatch)
		}
		if k == drainBatch {
			full++
		}
	}
	if full < 2 {
		t.Errorf("batches %v: want the queue handed over %d at a time", b.batches, drainBatch)
	}
	if len(b.ids) != n || len(log) != n {
		t.Fatalf("fed %d and %d Accesses, want %d", len(b.ids), len(log), n)
	}
	for i := range n {
		if b.ids[i] != strconv.Itoa(i) || log[i] != strconv.Itoa(i) {
			t.Fatalf("Access %d fed as %q and %q: out of order", i, b.ids[i], log[i])
		}
	}
	checkReleased(t, boxes)
}
