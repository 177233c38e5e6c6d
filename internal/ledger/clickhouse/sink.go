package clickhouse

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/inspect"
)

// The tables a batch fills, in the order they are inserted.
const (
	tAccesses = iota
	tTakes
	tViews
	nTables
)

var tableNames = [nTables]string{"accesses", "takes", "views"}

// maxBlockRows keeps a batch's tables under ClickHouse's default
// max_insert_block_size (1,048,576), so each insert is one block.
const maxBlockRows = 1_000_000

// batch is the rows of up to BatchSize Accesses of one day (UTC), one
// RowBinary body per table. done marks the tables known inserted; unsure
// the table whose insert may or may not have landed (its answer was
// lost), looked for before it is sent again.
type batch struct {
	id     uint64
	day    int64 // days since 1970-01-01, UTC
	n      int   // Accesses
	rows   [nTables][]byte
	count  [nTables]int
	done   uint8
	unsure int8 // -1: none
	file   string
	own    [][]byte // the buffers rows are in, given back to the pool once sent
}

// bufPool keeps the buffers of sent batches for the next ones: a batch is
// tens of megabytes, and allocating (and zeroing) them anew for every
// batch drove the garbage collector; kept, they cost no collection.
type bufPool struct {
	mu   sync.Mutex
	free [][]byte
}

// poolKeep bounds what the pool keeps: two batches' buffers.
const poolKeep = 2 * nTables

// get is an empty buffer of capacity at least n: the smallest free one
// that fits, else a new one.
func (p *bufPool) get(n int) []byte {
	p.mu.Lock()
	best := -1
	for i, b := range p.free {
		if cap(b) >= n && (best < 0 || cap(b) < cap(p.free[best])) {
			best = i
		}
	}
	if best >= 0 {
		b := p.free[best]
		p.free = slices.Delete(p.free, best, best+1)
		p.mu.Unlock()
		return b[:0]
	}
	p.mu.Unlock()
	return make([]byte, 0, n)
}

// put keeps b's buffers for reuse; nothing may read them afterwards.
func (p *bufPool) put(b *batch) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, buf := range b.own {
		if len(p.free) < poolKeep {
			p.free = append(p.free, buf)
		} else if i := smallest(p.free); cap(buf) > cap(p.free[i]) {
			p.free[i] = buf
		}
	}
	b.own, b.rows = nil, [nTables][]byte{}
}

func smallest(bufs [][]byte) int {
	k := 0
	for i, b := range bufs {
		if cap(b) < cap(bufs[k]) {
			k = i
		}
	}
	return k
}

func (b *batch) size() int64 {
	n := int64(64)
	for _, r := range b.rows {
		n += int64(len(r))
	}
	return n
}

// Metrics are the sink's; nil registers nothing.
type Metrics struct {
	sent, dropped, errors prometheus.Counter
	spoolBytes, spooled   prometheus.Gauge
	insert                prometheus.Histogram
}

// NewMetrics registers the sink's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sent:       prometheus.NewCounter(prometheus.CounterOpts{Name: "warden_ledger_clickhouse_sent_total", Help: "Accesses inserted into ClickHouse."}),
		dropped:    prometheus.NewCounter(prometheus.CounterOpts{Name: "warden_ledger_clickhouse_dropped_total", Help: "Accesses dropped: the spool was full."}),
		errors:     prometheus.NewCounter(prometheus.CounterOpts{Name: "warden_ledger_clickhouse_errors_total", Help: "Failed inserts (each retried from the spool)."}),
		spoolBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "warden_ledger_clickhouse_spool_bytes", Help: "Bytes of batches waiting in the spool."}),
		spooled:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "warden_ledger_clickhouse_spool_batches", Help: "Batches waiting in the spool."}),
		insert:     prometheus.NewHistogram(prometheus.HistogramOpts{Name: "warden_ledger_clickhouse_insert_seconds", Help: "Time to insert one batch (three tables).", Buckets: prometheus.ExponentialBuckets(0.005, 2, 12)}),
	}
	if reg != nil {
		reg.MustRegister(m.sent, m.dropped, m.errors, m.spoolBytes, m.spooled, m.insert)
	}
	return m
}

// Sink writes Accesses into ClickHouse in batches: a gateway.Recorder, fed
// off the request path. A batch goes when BatchSize Accesses are in it or
// BatchInterval has passed; while ClickHouse does not take batches they
// wait in the spool on disk, oldest sent first, and past its MaxBytes a
// batch is dropped and counted. Nothing within the spool is lost, across
// ClickHouse's restarts and the gateway's.
type Sink struct {
	c     *Client
	cfg   Config
	log   *slog.Logger
	m     *Metrics
	enc   encoder
	spool *spool
	pool  bufPool

	mu     sync.Mutex // cur, and hand-off
	cur    *batch
	ready  chan *batch
	wake   chan struct{}
	stop   chan struct{}
	done   chan struct{}
	closed bool
	// unsent counts batches handed to the sender and neither sent nor
	// spooled yet (the one in its hand included): Close waits for them.
	unsent atomic.Int64
	// sendCtx is the sender's requests'; Close cancels it when its time
	// is up, so a hung insert does not hold the gateway's stop.
	sendCtx    context.Context
	cancelSend context.CancelFunc
	hint       [nTables]int // the last batch's sizes: the next one's capacity
	lastDrop   atomic.Int64 // when a drop was last logged (unix ns)
}

// NewSink opens the spool (sending what an earlier run left in it) and
// starts the sender. Call Close to flush.
func NewSink(cfg Config, log *slog.Logger, m *Metrics) (*Sink, error) {
	cfg.SetDefaults()
	if cfg.Spool.Dir == "" {
		return nil, errors.New("clickhouse: spool.dir is required")
	}
	c, err := NewClient(cfg)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	sp, err := openSpool(cfg.Spool.Dir, cfg.Spool.MaxBytes, m)
	if err != nil {
		return nil, err
	}
	k0, k1, err := loadKey(cfg.Spool.Dir)
	if err != nil {
		sp.close()
		return nil, err
	}
	s := &Sink{c: c, cfg: cfg, log: log, m: m, enc: encoder{k0: k0, k1: k1}, spool: sp,
		ready: make(chan *batch, 1), wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	s.sendCtx, s.cancelSend = context.WithCancel(context.Background())
	if n := sp.len(); n > 0 {
		log.Info("ledger: clickhouse spool holds batches from before; sending them", slog.Int("batches", n), slog.Int64("bytes", sp.bytes))
	}
	go s.sender()
	go s.ticker()
	return s, nil
}

// Client is the sink's ClickHouse client.
func (s *Sink) Client() *Client { return s.c }

// Record adds acc to the current batch: it runs on the recording's
// goroutine, never on the request path.
func (s *Sink) Record(acc *inspect.Access) {
	day := acc.Time.Unix() / 86400
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.m.dropped.Inc()
		return
	}
	if s.cur != nil && s.cur.day != day {
		s.sealLocked()
	}
	if s.cur == nil {
		s.cur = &batch{id: newID(), day: day, unsure: -1}
		for t := range nTables {
			s.cur.rows[t] = s.pool.get(s.hint[t] + s.hint[t]/8)
		}
	}
	s.enc.encode(s.cur, acc)
	// A block of at most maxBlockRows rows is inserted as one part (one
	// day, ClickHouse's max_insert_block_size): it lands whole or not.
	if s.cur.n >= s.cfg.BatchSize || max(s.cur.count[tTakes], s.cur.count[tViews]) >= maxBlockRows {
		s.sealLocked()
	}
	s.mu.Unlock()
}

// sealLocked hands the current batch to the sender, or to the spool when
// the sender is busy.
func (s *Sink) sealLocked() {
	b := s.cur
	s.cur = nil
	if b == nil || b.n == 0 {
		return
	}
	for t := range nTables {
		s.hint[t] = len(b.rows[t])
	}
	b.own = b.rows[:]
	s.unsent.Add(1)
	select {
	case s.ready <- b:
	default:
		s.unsent.Add(-1)
		s.toSpool(b, true)
	}
}

// toSpool writes b to the spool; with reuse its buffers go back to the
// pool (never after a failed insert: its connection may still write them).
func (s *Sink) toSpool(b *batch, reuse bool) {
	err := s.spool.put(b)
	if reuse {
		s.pool.put(b)
	}
	if err != nil {
		s.m.dropped.Add(float64(b.n))
		// One line per burst of drops, not per batch.
		if now, last := time.Now().UnixNano(), s.lastDrop.Load(); now-last > int64(10*time.Second) && s.lastDrop.CompareAndSwap(last, now) {
			s.log.Error("ledger: clickhouse batches dropped (warden_ledger_clickhouse_dropped_total counts them)", slog.Int("accesses", b.n), slog.String("why", err.Error()))
		}
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Flush hands the current batch on now.
func (s *Sink) Flush() {
	s.mu.Lock()
	s.sealLocked()
	s.mu.Unlock()
}

func (s *Sink) ticker() {
	t := time.NewTicker(s.cfg.BatchInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.Flush()
		case <-s.stop:
			return
		}
	}
}

// sender inserts batches, the spool's (oldest first) before new ones; a
// batch that fails goes to the spool, and sending resumes after a pause
// (0.1 s doubling to 5 s) until ClickHouse takes it.
func (s *Sink) sender() {
	defer close(s.done)
	pause := 100 * time.Millisecond
	down := false
	for {
		var b *batch
		handed := false // b came from ready: counted in unsent
		if f, ok := s.spool.oldest(); ok {
			var err error
			if b, err = s.spool.load(f, s.pool.get); err != nil {
				s.log.Error("ledger: clickhouse spool file unreadable, set aside", slog.String("file", f), slog.String("error", err.Error()))
				s.spool.setAside(f)
				continue
			}
		} else {
			select {
			case b = <-s.ready:
				handed = true
			case <-s.wake:
				continue
			case <-s.stop:
				return
			}
		}
		free, err := s.send(b)
		if err == nil {
			if b.file != "" {
				s.spool.remove(b.file)
			}
			if free {
				s.pool.put(b)
			}
			if handed {
				s.unsent.Add(-1)
			}
			if down {
				s.log.Info("ledger: clickhouse takes batches again", slog.Int("spooled", s.spool.len()))
				down = false
			}
			pause = 100 * time.Millisecond
			continue
		}
		s.m.errors.Inc()
		if !down {
			s.log.Warn("ledger: clickhouse insert failed; batches wait in the spool", slog.String("error", err.Error()))
			down = true
		}
		if b.file == "" {
			s.toSpool(b, free)
		} else {
			s.spool.update(b)
		}
		if handed {
			s.unsent.Add(-1)
		}
		select {
		case <-time.After(pause):
		case <-s.stop:
			return
		}
		pause = min(2*pause, 5*time.Second)
	}
}

// send inserts b's tables not yet done, in order; a table whose last
// insert is unsure is first looked for by the batch's id. free says b's
// buffers are read by no request any more.
func (s *Sink) send(b *batch) (free bool, err error) {
	free = true
	start := time.Now()
	ctx := s.sendCtx
	for t := range nTables {
		if b.done&(1<<t) != 0 {
			continue
		}
		if b.count[t] == 0 {
			b.done |= 1 << t
			continue
		}
		if int(b.unsure) == t {
			q := fmt.Sprintf("SELECT count() FROM %s WHERE toDate(t) = toDate(%d) AND batch = %d", tableNames[t], b.day*86400, b.id)
			out, err := s.c.Do(ctx, q, nil)
			if err != nil {
				return free, err
			}
			n, _ := strconv.Atoi(string(trimNL(out)))
			if n == b.count[t] {
				b.done |= 1 << t
				b.unsure = -1
				continue
			}
			if n != 0 {
				// Part of one insert cannot land: an insert of one day's
				// rows in one block is one part. Say so and send it.
				s.log.Error("ledger: clickhouse holds part of a batch", slog.String("table", tableNames[t]), slog.Int("rows", n), slog.Int("want", b.count[t]))
			}
			b.unsure = -1
		}
		ok, err := s.c.insert(ctx, "INSERT INTO "+tableNames[t]+" FORMAT RowBinary", b.rows[t])
		if err != nil {
			if !refused(err) {
				b.unsure = int8(t) // the insert may have landed before the answer was lost
			}
			return false, err
		}
		free = free && ok
		b.done |= 1 << t
	}
	s.m.sent.Add(float64(b.n))
	s.m.insert.Observe(time.Since(start).Seconds())
	return free, nil
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// Close seals the current batch and lets the sender insert what waits
// until ctx ends; what is still unsent then is in the spool, sent by the
// next start.
func (s *Sink) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.sealLocked()
	s.closed = true
	s.mu.Unlock()
	// Wait until every batch is sent (the sender's in hand included) and
	// the spool is empty, or ctx ends.
	for s.unsent.Load() > 0 || s.spool.len() > 0 {
		select {
		case <-ctx.Done():
			goto out
		case <-time.After(20 * time.Millisecond):
		}
	}
out:
	close(s.stop)
	// An insert still in flight (ClickHouse hung) would hold the stop
	// for up to the request's timeout: it ends now, and its batch goes to
	// the spool as unsure, looked for by its id at the next start.
	s.cancelSend()
	<-s.done
	for {
		select {
		case b := <-s.ready:
			s.toSpool(b, true)
			continue
		default:
		}
		break
	}
	if n := s.spool.len(); n > 0 {
		s.log.Warn("ledger: clickhouse batches left in the spool for the next start", slog.Int("batches", n), slog.String("dir", s.cfg.Spool.Dir))
	}
	s.spool.close()
	return nil
}

func newID() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:]) | 1
}

// loadKey reads the hash key of pages, look-ups and links from the spool
// directory, making it the first time. Gateways whose hashes must compare
// share one key file.
func loadKey(dir string) (uint64, uint64, error) {
	p := filepath.Join(dir, "key")
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		b = make([]byte, 16)
		rand.Read(b)
		if err = os.WriteFile(p, b, 0o600); err != nil {
			return 0, 0, fmt.Errorf("clickhouse: %w", err)
		}
	} else if err != nil {
		return 0, 0, fmt.Errorf("clickhouse: %w", err)
	}
	if len(b) != 16 {
		return 0, 0, fmt.Errorf("clickhouse: %s: %d bytes, want 16", p, len(b))
	}
	return binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:]), nil
}
