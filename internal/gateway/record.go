package gateway

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/cacheline"
	"github.com/warden-gw/warden/internal/inspect"
)

// Recorder is fed the Access of every request warden inspected or
// refused: the ledger and the detector plug in here. Record runs on the
// recorder's own goroutine, never on the request path, one Access at a
// time; it must not keep acc past the call unless it copies it (acc is
// never modified after the hand-off, so keeping the pointer is safe too).
type Recorder interface {
	Record(acc *inspect.Access)
}

// BatchRecorder is a Recorder that also records several Accesses in one
// call, in order, as Record would one after another: the recording
// drains its queue drainBatch Accesses at a time and hands each batch
// over whole, so that the recorder can overlap its work across Accesses
// (the ledger's dictionary look-ups: Ledger.RecordBatch). The rules of
// Record hold for every Access of the batch; the slice is the
// recording's, not to be kept.
type BatchRecorder interface {
	Recorder
	RecordBatch(accs []*inspect.Access)
}

// Transient is implemented by a Recorder that, while Transient reports
// true, keeps nothing of an Access past Record: no pointer to it, none of
// its slices and none of its strings but the Identity's values (which
// never share the Access's memory). When every recording of a pipeline
// is transient, the pipeline reuses an Access's memory once each recorder
// is done with it: a request then allocates no Access, and the GC has
// none to mark and sweep (the Access is about 700 bytes; in bench row
// e-prov it was two thirds of the bytes a request allocated, and the
// collections they caused the largest part of the row's extra CPU).
type Transient interface {
	Transient() bool
}

// handoff is an Access in a recording's queue, with the box whose memory
// it is when the pipeline reuses it (nil otherwise): released once
// recorded or dropped.
type handoff struct {
	acc *inspect.Access
	box *accessBox
}

// Recorders feeds each of its recorders in turn, in order. Recorders that
// share one Recording share its queue, its goroutine and the request's one
// hand-off: the dashboard's Watch rides on the ledger's recording, where a
// recording of its own cost every request a second channel send and the
// process a second goroutine waking each tick.
type Recorders []Recorder

// Record feeds acc to every recorder.
func (rs Recorders) Record(acc *inspect.Access) {
	for _, r := range rs {
		r.Record(acc)
	}
}

// RecordBatch feeds accs to every recorder, in order: a batch to each
// BatchRecorder, one Access after another to the others.
func (rs Recorders) RecordBatch(accs []*inspect.Access) {
	for _, r := range rs {
		if br, ok := r.(BatchRecorder); ok {
			br.RecordBatch(accs)
			continue
		}
		for _, acc := range accs {
			r.Record(acc)
		}
	}
}

// Transient reports whether every recorder is transient.
func (rs Recorders) Transient() bool {
	for _, r := range rs {
		if t, ok := r.(Transient); !ok || !t.Transient() {
			return false
		}
	}
	return true
}

// DefaultRecordQueue is how many Accesses wait for one recorder before
// more are dropped.
const DefaultRecordQueue = 8192

// Recording hands Accesses to one recorder through a bounded queue. By
// default it never blocks the request path: when the queue is full the
// Access is dropped and counted (warden_recorder_dropped_total{recorder}).
// With WaitWhenFull the request waits up to a bound for a slot before it
// drops (warden_recorder_waited_total{recorder} counts the waits). It
// outlives pipelines: a reload keeps the same recordings.
type Recording struct {
	name string
	r    Recorder
	br   BatchRecorder // r, when it records batches (drain hands them over)
	q    chan handoff
	// transient: r keeps nothing of an Access (Transient), so the
	// pipeline may reuse its memory after Record.
	transient bool
	wait      time.Duration // 0: never wait
	dropped   prometheus.Counter
	waited    prometheus.Counter
	closed    atomic.Bool
	stop      chan struct{}
	done      chan struct{}
	once      sync.Once
}

// RecordingMetrics are the hand-offs' counters, created once per process.
type RecordingMetrics struct {
	dropped *prometheus.CounterVec
	waited  *prometheus.CounterVec
	queued  *prometheus.GaugeVec
}

// NewRecordingMetrics registers the hand-offs' metrics on reg (nil: not
// registered).
func NewRecordingMetrics(reg prometheus.Registerer) *RecordingMetrics {
	m := &RecordingMetrics{
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_recorder_dropped_total",
			Help: "Accesses a recorder's queue was too full to take, by recorder: dropped (after waiting, when the recording waits).",
		}, []string{"recorder"}),
		waited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_recorder_waited_total",
			Help: "Requests that found a recorder's queue full and waited for a slot (ledger.queue_full: wait), by recorder, whether or not one came.",
		}, []string{"recorder"}),
		queued: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "warden_recorder_queue_capacity",
			Help: "Accesses a recorder's queue holds at most, by recorder.",
		}, []string{"recorder"}),
	}
	if reg != nil {
		reg.MustRegister(m.dropped, m.waited, m.queued)
	}
	return m
}

// RecordingOption changes how a Recording hands Accesses over.
type RecordingOption func(*Recording)

// WaitWhenFull has a request that finds the queue full wait up to d for a
// slot before its Access is dropped (d <= 0: never wait, the default).
// The wait is on the request path: each waiting request holds its
// connection and goroutine, and its answer is late by up to d, for as
// long as the recorder lags. A queue with room costs nothing more.
func WaitWhenFull(d time.Duration) RecordingOption {
	return func(rc *Recording) { rc.wait = max(d, 0) }
}

// NewRecording starts feeding r, named name in metrics and logs, from a
// queue of size Accesses (DefaultRecordQueue when size < 1). Close stops
// it once the queue is drained.
func NewRecording(name string, r Recorder, size int, m *RecordingMetrics, opts ...RecordingOption) *Recording {
	if size < 1 {
		size = DefaultRecordQueue
	}
	rc := &Recording{name: name, r: r, q: make(chan handoff, size),
		dropped: m.dropped.WithLabelValues(name), waited: m.waited.WithLabelValues(name),
		stop: make(chan struct{}), done: make(chan struct{})}
	if t, ok := r.(Transient); ok {
		rc.transient = t.Transient()
	}
	rc.br, _ = r.(BatchRecorder)
	for _, o := range opts {
		o(rc)
	}
	m.queued.WithLabelValues(name).Set(float64(size))
	go rc.run()
	return rc
}

// recordTick is how long a busy recording waits, its queue emptied, before
// it takes what queued meanwhile. 5 ms, not 1: each tick is a timer, a
// park and a wake-up (with a core idle, a futex wake and the scheduler
// looking for work); at 1 ms, in warden bench row e-prov under perf
// (rows e and e-prov, 12 s, perf record -g on each gateway), runtime.mcall
// took 2.8% of the gateway's CPU, findRunnable 2.2%, sysmon 9.2% against
// row e's 1.6%, 1.1%, 5.9%; at 5 ms 1.6%, 1.2%, 5.5%: no more than row e.
// An Access reaches the recorders up to 5 ms later, nothing next to the
// detector's seconds; at 30,000 requests/s that is 150 Accesses queued,
// of the queue's 8192.
const recordTick = 5 * time.Millisecond

// run feeds the recorder until Close, then what is queued. The queue is
// never closed: a request finishing during shutdown may still offer.
//
// Why ticks: a goroutine parked on an empty queue is woken by the next
// offer, and on a loaded gateway that is every request: the offering
// request pays a goready and, with a core idle, a futex wake, and the
// recording a park, each Access (about a tenth of row (e-prov)'s CPU per
// request in BenchmarkServeProvenance). So once woken the recording feeds
// everything queued, then sleeps a tick and looks again: offers meanwhile
// find no receiver waiting and cost a channel send. A tick that found
// nothing parks it on the queue again, so an idle gateway sleeps. An
// Access reaches the recorder up to a tick later; the queue (8192 by
// default) holds seconds of traffic at any rate one gateway serves.
func (rc *Recording) run() {
	defer close(rc.done)
	tick := time.NewTimer(recordTick)
	tick.Stop()
	for {
		select {
		case h := <-rc.q:
			rc.feed(h)
		case <-rc.stop:
			rc.drain()
			return
		}
		for n := 1; n > 0; n = rc.drain() {
			tick.Reset(recordTick)
			select {
			case <-tick.C:
			case <-rc.stop:
				tick.Stop()
				rc.drain()
				return
			}
		}
	}
}

// drainBatch is how many queued Accesses drain takes off the queue before
// it feeds the first of them, and drainAhead how many it prefetches ahead
// of the one it feeds.
const (
	drainBatch = 32
	drainAhead = 4
)

// drain feeds the recorder what is queued, without waiting, and returns
// how many Accesses that was. It takes them off the queue drainBatch at a
// time and prefetches each one's memory drainAhead Accesses before it is
// fed: an Access was written on the core that served its request, and
// the recorder's first reads of it missed there one after the other
// (warden bench row e-ledger under perf: Ledger.Record's own time, most
// of it reading the Access, was its largest share after the dictionary's
// look-ups). A few ahead, the misses overlap with recording; the whole
// batch at once filled the core's miss buffers and the prefetches waited
// instead.
func (rc *Recording) drain() int {
	var batch [drainBatch]handoff
	for n := 0; ; {
		k := 0
	take:
		for k < len(batch) {
			select {
			case h := <-rc.q:
				batch[k] = h
				k++
			default:
				break take
			}
		}
		for _, h := range batch[:min(k, drainAhead)] {
			h.prefetch()
		}
		if rc.br != nil && k > 1 {
			// Handed over whole; the recorder prefetches the Accesses
			// past the first drainAhead as it reaches them.
			var accs [drainBatch]*inspect.Access
			for i, h := range batch[:k] {
				accs[i] = h.acc
			}
			rc.br.RecordBatch(accs[:k])
			for _, h := range batch[:k] {
				h.box.release()
			}
		} else {
			for i, h := range batch[:k] {
				if i+drainAhead < k {
					batch[i+drainAhead].prefetch()
				}
				rc.feed(h)
			}
		}
		clear(batch[:k]) // no Access kept alive past its release
		n += k
		if k < len(batch) {
			return n
		}
	}
}

// prefetch starts loading the Access's cache lines: its box's when the
// pipeline reuses boxes (the Access and the room its records and ids
// use), the Access's alone otherwise.
func (h handoff) prefetch() {
	if h.box != nil {
		h.box.prefetch()
		return
	}
	cacheline.Range(unsafe.Pointer(h.acc), unsafe.Sizeof(*h.acc))
}

// feed records one Access and releases its box.
func (rc *Recording) feed(h handoff) {
	rc.r.Record(h.acc)
	h.box.release()
}

// offer hands acc over, or drops and counts it when the queue is full (after
// waiting up to rc.wait for a slot) or the recording closed. A queue with
// room takes acc without allocating; only a wait makes a timer.
func (rc *Recording) offer(acc *inspect.Access) { rc.hand(handoff{acc: acc}) }

// hand is offer of an Access with its box, released when dropped.
func (rc *Recording) hand(h handoff) {
	if rc.closed.Load() {
		rc.dropped.Inc()
		h.box.release()
		return
	}
	select {
	case rc.q <- h:
		return
	default:
	}
	if rc.wait > 0 {
		rc.waited.Inc()
		t := time.NewTimer(rc.wait)
		defer t.Stop()
		select {
		case rc.q <- h:
			return
		case <-t.C:
		case <-rc.stop:
		}
	}
	rc.dropped.Inc()
	h.box.release()
}

// Close stops taking Accesses and waits until the recorder has been fed
// every queued one, or ctx ends.
func (rc *Recording) Close(ctx context.Context) error {
	rc.once.Do(func() {
		rc.closed.Store(true)
		close(rc.stop)
	})
	select {
	case <-rc.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// record completes box's Access of ex with the refusal, if any, and hands
// it to every recording. It returns ref, so a refusal can be recorded as
// it is returned. box is nil without recordings. ex is marked recorded
// here, at the hand-off, not where its Access was begun: a panic between
// the two (in rationing, a seeder, the rewrite) is then recorded by
// Gateway.recovered as the 500 it answers, under the id its body names.
func (p *Pipeline) record(ex *Exchange, box *accessBox, ref *Refusal) *Refusal {
	if box == nil || len(p.recordings) == 0 {
		return ref
	}
	ex.recorded = true
	acc := &box.acc
	if ref != nil {
		acc.Status, acc.Rule, acc.Facet = ref.Status, ref.Rule, ref.Facet
	}
	if p.reuse {
		// Each recording releases it once; the last puts it back.
		box.pool = &p.boxes
		box.refs.Store(int32(len(p.recordings)))
	}
	for _, rc := range p.recordings {
		rc.hand(handoff{acc: acc, box: box})
	}
	return ref
}
