package ledger

import (
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/dchest/siphash"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/inspect"
)

// Defaults of Options.
const (
	DefaultFsyncInterval = time.Second
	// DefaultPartitionAccesses bounds a partition's Accesses: about 60
	// MiB live while it is sealed (150 MiB allocated), whatever the
	// gateway's rate; an hour of the density (139,000) is one.
	DefaultPartitionAccesses = 150_000
	flushInterval            = 100 * time.Millisecond
	flushBytes               = 256 << 10
)

// Options configures a Ledger.
type Options struct {
	Dir           string
	FsyncInterval time.Duration // 0: DefaultFsyncInterval
	MaxAge        time.Duration // sealed partitions older than this are removed; 0: kept
	MaxBytes      int64         // past this many bytes the oldest sealed partitions go; 0: no bound
	Logger        *slog.Logger  // nil: discard
	Metrics       *Metrics      // nil: not counted
	Now           func() time.Time
	// PendingBytes bounds what waits in memory while the log cannot be
	// written (a full disk): past it, Accesses are dropped and counted
	// (warden_ledger_lost_total). 0: DefaultPendingBytes.
	PendingBytes int
	// PartitionAccesses cuts an hour's log into parts of at most this
	// many Accesses, each sealed on its own as soon as it is full: the
	// sealer's memory, and what a server's Cache holds of open logs, is
	// bounded by a part, not by the gateway's rate. 0:
	// DefaultPartitionAccesses.
	PartitionAccesses int

	sealRetry time.Duration // tests: the first wait before a failed seal is tried again
	// housekeepEvery bounds how often retention and rollups run after
	// seals (0: housekeepEvery).
	housekeepEvery time.Duration
	// scratchIdle: the sealer drops its scratch after this long without a
	// seal (0: scratchIdle).
	scratchIdle time.Duration
	// rollupFanIn: the partitions a rollup's merge reads at once (0:
	// rollupFanIn), cut in tests to merge a day in groups.
	rollupFanIn int
	// fsync syncs the open log every FsyncInterval (nil: (*os.File).Sync);
	// tests slow it down.
	fsync func(*os.File) error
}

// DefaultPendingBytes is Options.PendingBytes' default: about 400,000
// Accesses, 13 s at 30,000 a second.
const DefaultPendingBytes = 32 << 20

// Metrics are the ledger writer's counters.
type Metrics struct {
	accesses, errors, sealed, retired, tornBytes prometheus.Counter
	bytes, rollups, authored, lost               prometheus.Counter
	sealQueue, scratch                           prometheus.Gauge
}

// NewMetrics registers the ledger's metrics on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	m := &Metrics{
		accesses:  c("warden_ledger_accesses_total", "Accesses appended to the ledger."),
		errors:    c("warden_ledger_errors_total", "Ledger write, sync or seal failures (each logged); an Access that failed to append is lost."),
		sealed:    c("warden_ledger_partitions_sealed_total", "Partitions sealed (an hour, or a part of one: indexed, compressed, chained)."),
		retired:   c("warden_ledger_partitions_retired_total", "Sealed partitions removed by retention."),
		tornBytes: c("warden_ledger_torn_bytes_total", "Bytes cut from torn log tails at start (kept aside)."),
		bytes:     c("warden_ledger_log_bytes_total", "Bytes appended to partition logs."),
		rollups:   c("warden_ledger_rollups_total", "Day rollups written (reach postings of a day's sealed hours, merged)."),
		authored:  c("warden_ledger_author_indexes_total", "Author indexes written, one a sealed hour or part of one (author -> Access numbers, for reach over an hour a window cuts)."),
		lost:      c("warden_ledger_lost_total", "Accesses the ledger could not keep: dropped while its log could not be written and more than pending_bytes waited, or waiting when an hour's log was closed unwritten, or with no log to open, or too large for a frame (each logged)."),
		sealQueue: prometheus.NewGauge(prometheus.GaugeOpts{Name: "warden_ledger_seal_queue",
			Help: "Closed logs (each an hour or a part of one) waiting to be sealed: it grows while the sealer falls behind the gateway's rate or a seal fails (tried again, in order)."}),
		scratch: prometheus.NewGauge(prometheus.GaugeOpts{Name: "warden_ledger_seal_scratch_bytes",
			Help: "Memory the sealer keeps from one seal to the next while they follow each other (a part's decoded Accesses and their arena, bounded by two parts' worth); 0 once no seal came for 30 s."}),
	}
	if reg != nil {
		reg.MustRegister(m.accesses, m.errors, m.sealed, m.retired, m.tornBytes, m.bytes, m.rollups, m.authored, m.lost, m.sealQueue, m.scratch)
	}
	return m
}

// Ledger appends Accesses to the directory and seals each hour. It is a
// gateway.Recorder (Record) fed from one goroutine; its own goroutines
// flush, sync and seal.
type Ledger struct {
	opts Options
	log  *slog.Logger
	m    *Metrics
	lock *os.File
	k0   uint64
	k1   uint64

	mu   sync.Mutex
	f    *os.File // the open hour's log; nil until the first Access of an hour
	hour int64    // the open log's key (partition.hour): its hour, or the second a further part opened
	n    int      // Accesses in the open log
	buf  []byte
	// size is how much of the open log was written whole: a write that
	// fails part-way (a full disk) is cut back to it before the next, so
	// that no partial frame sits between frames (a reader stops at one).
	size int64
	// stalled: the last write failed; buf waits for the background
	// flush's retry instead of each Add trying again.
	stalled bool
	dirty   bool // written since the last fsync
	// closing are logs whose hour is over, written whole but not yet
	// synced: background (or Sync, Close) syncs and closes them outside mu
	// and then queues them for sealing, in order. Synced under mu, the
	// last log of each hour held Add for its fsync.
	closing []closingLog
	dict    [nsCount]strtab       // the open hour's dictionary
	front   [frontSlots]frontSlot // facet values
	names   [nameSlots]frontSlot  // names: apart, so that values made anew each Access do not evict them
	e       entry
	enc     []byte
	ring    [batchRing]staged // AddBatch's Accesses in flight
	err     error             // the last write error, logged once

	gd       *dictionary    // the shared dictionary, the sealer's alone
	noRollup map[int64]bool // days with a format 3 hour, the sealer's alone: no rollup
	// noAuthored are hours whose author index failed or cannot be made
	// (format 3), the sealer's alone: not tried again until a restart.
	noAuthored map[string]bool
	// autChecked: the author indexes and day rollups on disk at start
	// were checked (the sealer rebuilds those a reader cannot use).
	autChecked bool
	last       sealedLast  // the sealer's alone
	scratch    sealScratch // the sealer's alone
	seal       chan string // stems to seal, in order
	sealDone   chan struct{}
	stop       chan struct{}
	bgDone     chan struct{}
	closed     bool
}

// Open opens (creating) the ledger directory for writing: takes its lock,
// repairs torn log tails, reopens the current hour's log and starts
// sealing logs of earlier hours.
func Open(opts Options) (*Ledger, error) {
	if opts.Dir == "" {
		return nil, errors.New("ledger: no directory")
	}
	if opts.FsyncInterval <= 0 {
		opts.FsyncInterval = DefaultFsyncInterval
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	if opts.PendingBytes <= 0 {
		opts.PendingBytes = DefaultPendingBytes
	}
	if opts.PartitionAccesses <= 0 {
		opts.PartitionAccesses = DefaultPartitionAccesses
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	if err := os.Chmod(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	lf, err := openFile(filepath.Join(opts.Dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lf.Close()
		return nil, fmt.Errorf("ledger: %s is in use by another warden (%w)", opts.Dir, err)
	}
	l := &Ledger{opts: opts, log: opts.Logger, m: opts.Metrics, lock: lf,
		seal: make(chan string, 1024), sealDone: make(chan struct{}), stop: make(chan struct{}), bgDone: make(chan struct{})}
	if l.k0, l.k1, err = loadKey(opts.Dir); err != nil {
		lf.Close()
		return nil, err
	}
	ls, err := list(opts.Dir)
	if err != nil {
		lf.Close()
		return nil, err
	}
	now := hourOf(opts.Now().Unix())
	var pending []string
	if n := len(ls.stems); n > 0 {
		l.hour, _ = parseStem(ls.stems[n-1])
	}
	for i, stem := range ls.stems {
		if !ls.wal[stem] {
			continue
		}
		path := walPath(opts.Dir, stem)
		if ls.seg[stem] { // sealed, the log's removal was cut short
			os.Remove(path)
			continue
		}
		p, err := l.repair(path)
		if err != nil {
			lf.Close()
			return nil, err
		}
		if p == nil {
			continue
		}
		// The newest log of this hour is reopened; an earlier part of it,
		// full when the process stopped, is sealed.
		if h, _ := parseStem(stem); hourOf(h) == now && i == len(ls.stems)-1 {
			if err := l.reopen(path, p); err != nil {
				lf.Close()
				return nil, err
			}
			continue
		}
		pending = append(pending, stem)
	}
	go l.sealer()
	for _, s := range pending {
		l.m.sealQueue.Inc()
		l.seal <- s
	}
	go l.background()
	return l, nil
}

// loadKey reads the key of the ledger's hashes, making one the first time.
func loadKey(dir string) (uint64, uint64, error) {
	path := filepath.Join(dir, "key")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		k := make([]byte, 16)
		if _, err := rand.Read(k); err != nil {
			return 0, 0, fmt.Errorf("ledger: key: %w", err)
		}
		if err := writeFileSync(path, []byte(hex.EncodeToString(k)+"\n")); err != nil {
			return 0, 0, fmt.Errorf("ledger: key: %w", err)
		}
		b = []byte(hex.EncodeToString(k))
	} else if err != nil {
		return 0, 0, fmt.Errorf("ledger: key: %w", err)
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(k) != 16 {
		return 0, 0, fmt.Errorf("ledger: key %s: not 32 hex digits", path)
	}
	return binary.LittleEndian.Uint64(k), binary.LittleEndian.Uint64(k[8:]), nil
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// repair reads a log, truncates it after its last whole frame and keeps
// the cut bytes beside it. A log without even a header is removed (its
// bytes kept aside when there are any); it returns nil then.
func (l *Ledger) repair(path string) (*partition, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	p, valid, why := readLog(path, b)
	if valid == len(b) {
		if p == nil { // empty: its header was never written (a full disk)
			return nil, os.Remove(path)
		}
		return p, nil
	}
	aside := fmt.Sprintf("%s%s%d", path, tornMark, l.opts.Now().UnixNano())
	if err := writeFileSync(aside, b[valid:]); err != nil {
		return nil, fmt.Errorf("ledger: keep torn tail of %s: %w", path, err)
	}
	l.m.tornBytes.Add(float64(len(b) - valid))
	if derr := logDamage(path, b, valid, why); p != nil && derr != nil {
		// Not a tail a stop tore: Accesses after the damage are cut with
		// it, kept aside, and read by no query (verify names the file).
		l.m.errors.Inc()
		l.log.Error("ledger: damaged log: what follows the damage cut and kept aside, not sealed", slog.String("file", path), slog.String("aside", aside),
			slog.Int("kept_bytes", valid), slog.Int("cut_bytes", len(b)-valid), slog.String("why", derr.Error()))
	} else {
		l.log.Warn("ledger: torn log tail cut and kept aside", slog.String("file", path), slog.String("aside", aside),
			slog.Int("kept_bytes", valid), slog.Int("cut_bytes", len(b)-valid), slog.String("why", why.Error()))
	}
	if p == nil {
		return nil, os.Remove(path)
	}
	f, err := openFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("ledger: truncate %s: %w", path, err)
	}
	defer f.Close()
	if err := f.Truncate(int64(valid)); err != nil {
		return nil, fmt.Errorf("ledger: truncate %s: %w", path, err)
	}
	return p, f.Sync()
}

// openFile is os.OpenFile that never follows a symbolic link at path
// (O_NOFOLLOW): warden may run as root, and a link planted in its
// directory under a ledger file's name would have it lock, append to or
// truncate another file. Such a name is an error saying so.
func openFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	f, err := os.OpenFile(path, flag|syscall.O_NOFOLLOW, perm)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("%s is a symbolic link: not followed", path)
	}
	return f, err
}

// reopen continues appending to the current hour's log.
func (l *Ledger) reopen(path string, p *partition) error {
	f, err := openFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("ledger: %w", err)
	}
	l.f, l.hour, l.size, l.n = f, p.hour, st.Size(), len(p.entries)
	l.dict = p.dict
	clear(l.front[:])
	clear(l.names[:])
	return nil
}

// Add appends one Access. It never fails: an error is logged and counted
// and the Access lost.
func (l *Ledger) Add(in *Entry) { l.add(in, nil) }

// add appends in, its records those of in and then recs (Record's, read
// where the Access holds them).
func (l *Ledger) add(in *Entry, recs []inspect.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.begin(in.Time, in.RequestID)
	if e == nil {
		return
	}
	var pf prefetch
	l.hashIDs(&pf, in, recs)
	// What needs no id is done while the slots prefetched arrive: names
	// (few, in the front cache) and keyed hashes. The names' order in
	// their namespace is as before; only where their frames fall among
	// the ids' in the log moves, which the sealer does not see.
	l.addNames(e, in)
	pf.names()
	l.addIDs(e, &pf, in, recs)
}

// hashIDs hashes in's ids into pf, in the order addIDs looks them up
// (prefetch's hashes are taken in that order), and prefetches their
// slots. It depends on no state of the hour (a table's seed is kept
// across its growth and reset), so AddBatch hashes Accesses ahead of the
// one it appends. Called with mu.
func (l *Ledger) hashIDs(pf *prefetch, in *Entry, recs []inspect.Record) {
	for f, v := range in.Identity {
		if v != "" {
			pf.add(&l.dict[nsFacet+f], v)
		}
	}
	if in.List != "" {
		pf.add(&l.dict[nsID], in.List)
	}
	for _, r := range in.Records {
		pf.add(&l.dict[nsID], r.ID)
	}
	for _, r := range recs {
		pf.add(&l.dict[nsID], r.ID)
	}
	for _, a := range in.Authors {
		pf.add(&l.dict[nsID], a)
	}
}

// addNames fills what of e needs no id: names, keyed hashes, the status.
// Called with mu, after begin.
func (l *Ledger) addNames(e *entry, in *Entry) {
	e.route = l.name(in.Route)
	e.page, e.lookup = l.hash(in.Page), l.hash(in.Lookup)
	e.unref = in.Unreferenced
	e.ageRank = min(in.AgeRank, maxAgeRank)
	e.status = uint16(max(0, min(in.Status, 999)))
	e.rule, e.facet = l.name(in.Rule), l.name(in.Facet)
	for _, s := range in.MaskRules {
		e.masks = append(e.masks, l.lookup(nil, nsName, s))
	}
	for _, s := range in.Classes {
		e.classes = append(e.classes, l.lookup(nil, nsName, s))
	}
	for _, s := range in.Links {
		e.links = append(e.links, l.hash(s))
	}
}

// addIDs interns in's ids with the hashes hashIDs put in pf, then
// encodes e and appends its frame. Called with mu, after addNames.
func (l *Ledger) addIDs(e *entry, pf *prefetch, in *Entry, recs []inspect.Record) {
	for f, v := range in.Identity {
		if v != "" {
			e.facets[f] = l.lookup(pf, nsFacet+f, v) + 1
		}
	}
	if in.List != "" {
		e.list = l.id(pf, in.List) + 1
	}
	for _, r := range in.Records {
		e.recs = append(e.recs, rec{id: l.id(pf, r.ID), classes: r.Classes, masked: r.Masked})
	}
	for _, r := range recs {
		e.recs = append(e.recs, rec{id: l.id(pf, r.ID), classes: uint64(r.Classes), masked: uint64(r.Masked)})
	}
	for _, a := range in.Authors {
		e.authors = append(e.authors, l.id(pf, a))
	}
	l.enc = appendEntry(l.enc[:0], e, l.hour*1e6)
	if len(l.enc)+1 > maxFrameBody {
		// Readers take a frame this long for corruption and stop there
		// (about 600,000 records in one answer, past inspect.max_body's
		// default many times over): not written, said and counted.
		l.m.lost.Inc()
		l.fail("append an Access", fmt.Errorf("request %s: %d records, %d bytes encoded, more than a frame holds (%d)", in.RequestID, len(e.recs), len(l.enc), maxFrameBody))
		return
	}
	l.buf = appendFrame(l.buf, kindAccess, l.enc)
	l.n++
	l.m.accesses.Inc()
	if len(l.buf) >= flushBytes && !l.stalled {
		l.flush()
	}
}

// begin starts the entry of an Access at t (zero: now), in the hour's
// partition, opening it first when t is past the open one. It returns nil
// when the ledger is closed or the partition could not be opened. Called
// with mu.
func (l *Ledger) begin(t time.Time, reqID string) *entry {
	if l.closed {
		return nil
	}
	if t.IsZero() {
		t = l.opts.Now()
	}
	key := hourOf(t.Unix())
	if l.f == nil && key <= hourOf(l.hour) {
		// Partitions only move forward: an hour already on disk is closed.
		key = hourOf(l.hour) + 3600
	}
	if l.f != nil && key <= hourOf(l.hour) && l.n >= l.opts.PartitionAccesses {
		// The open part is full: the next part of its hour, named by the
		// second it opens (after the open part's), while the hour has one.
		if next := max(l.hour+1, t.Unix()); next < hourOf(l.hour)+3600 {
			key = next
		}
	}
	if l.f == nil || key > l.hour {
		if err := l.rotate(key); err != nil {
			l.fail("open partition "+partName(key), err)
			l.m.lost.Inc()
			return nil
		}
	}
	if l.stalled && len(l.buf) >= l.opts.PendingBytes {
		// The log has not taken what waits (a full disk): dropped before
		// anything of it (a dictionary frame) joins the buffer. Only while
		// stalled, as PendingBytes says: otherwise Add flushes at
		// flushBytes, whatever PendingBytes is set to.
		l.m.lost.Inc()
		return nil
	}
	e := &l.e
	*e = entry{t: t.UnixMicro(), reqID: reqID, masks: e.masks[:0], classes: e.classes[:0],
		recs: e.recs[:0], authors: e.authors[:0], links: e.links[:0]}
	return e
}

// name interns a name (route, class, rule), plus one; 0 for "".
func (l *Ledger) name(s string) uint32 {
	if s == "" {
		return 0
	}
	return l.lookup(nil, nsName, s) + 1
}

// frontSlots and nameSlots are the sizes of the open hour's front caches
// of facet values and of names (powers of two).
const (
	frontSlots = 64
	nameSlots  = 32
)

// frontSlot is one value of the front cache: s's integer v in namespace
// ns-1 (0: an empty slot).
type frontSlot struct {
	s  string
	ns uint32
	v  uint32
}

// lookup is intern behind a small cache indexed by where s's bytes lie.
// The names of routes, classes and rules come from the config, an
// account's id from identify's token cache and a fingerprint from its
// fingerprint cache: Access after Access they are the same strings, so a
// look-up compares a string instead of hashing it and reading the
// dictionary's table and names, which at a million names are cache
// misses. A slot is checked by content, so it is never wrong, only
// missed: a string made anew each Access (an address's key) misses and
// takes the slot. The cache is emptied with the dictionary.
//
// What a slot keeps: a facet's value itself (an Identity's values never
// share an Access's memory, which the gateway may reuse once Record
// returns: see Transient), so that the same string compares by its
// pointer alone; a name, a copy (a miss is rare: there are few names).
func (l *Ledger) lookup(pf *prefetch, ns int, s string) uint32 {
	c := l.front[:]
	if ns == nsName {
		c = l.names[:]
	}
	// Two neighbouring slots, the one used last first: strings whose
	// places collide share them rather than evicting each other.
	p := uint64(uintptr(unsafe.Pointer(unsafe.StringData(s))))
	i := (p*0x9e3779b97f4a7c15 + uint64(ns)) >> 58 & uint64(len(c)-2)
	a, b := &c[i], &c[i+1]
	key := uint32(ns) + 1
	if a.ns == key && a.s == s {
		if pf != nil {
			pf.hash() // s's, not needed
		}
		return a.v
	}
	if b.ns == key && b.s == s {
		if pf != nil {
			pf.hash()
		}
		*a, *b = *b, *a
		return a.v
	}
	var v uint32
	if pf != nil {
		v = l.internFrom(pf, ns, s)
	} else {
		v = l.intern(ns, s)
	}
	if ns == nsName {
		s = strings.Clone(s)
	}
	*b = *a
	*a = frontSlot{s: s, ns: key, v: v}
	return v
}

// id is the integer of a platform id, hashed by pf.
func (l *Ledger) id(pf *prefetch, s string) uint32 { return l.internFrom(pf, nsID, s) }

// intern returns s's integer in ns, writing a dictionary frame the first
// time s is seen this hour.
func (l *Ledger) intern(ns int, s string) uint32 {
	v, added := l.dict[ns].intern(s)
	if added {
		l.buf = appendDictFrame(l.buf, ns, unsafe.Slice(unsafe.StringData(s), len(s)))
	}
	return v
}

// internFrom is intern with s's hash the next of pf's.
func (l *Ledger) internFrom(pf *prefetch, ns int, s string) uint32 {
	h, ok := pf.hash()
	if !ok {
		return l.intern(ns, s)
	}
	v, added := l.dict[ns].internHash(s, h)
	if added {
		l.buf = appendDictFrame(l.buf, ns, unsafe.Slice(unsafe.StringData(s), len(s)))
	}
	return v
}

// hash is the keyed hash of a value kept hashed; 0 for "".
func (l *Ledger) hash(s string) uint64 {
	if s == "" {
		return 0
	}
	return max(1, siphash.Hash(l.k0, l.k1, []byte(s)))
}

// rotate closes the open log (queuing it for sealing) and starts the
// partition keyed hour: an hour's first part or a further one.
func (l *Ledger) rotate(hour int64) error {
	l.closeLog()
	path := walPath(l.opts.Dir, partName(hour))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	l.f, l.hour, l.size, l.stalled, l.n = f, hour, 0, false, 0
	for ns := range l.dict {
		l.dict[ns].reset()
	}
	clear(l.front[:])
	clear(l.names[:])
	l.buf = appendFrame(l.buf[:0], kindHeader, headerBody(hour))
	l.flush()
	return nil
}

// closingLog is a log whose hour is over, to sync, close and seal.
type closingLog struct {
	f    *os.File
	stem string
}

// closeLog writes what waits of the open log, if any, and hands it to
// finishLogs (through l.closing): synced, closed and queued for sealing
// outside mu. Called with mu.
func (l *Ledger) closeLog() {
	if l.f != nil {
		l.flush()
		l.drop()
		l.closing = append(l.closing, closingLog{f: l.f, stem: partName(l.hour)})
		l.f, l.dirty = nil, false
	}
}

// takeClosing returns the logs closeLog handed over and forgets them.
// Called with mu.
func (l *Ledger) takeClosing() []closingLog {
	cs := l.closing
	l.closing = nil
	return cs
}

// finishLogs syncs and closes each log of an hour that is over and queues
// it for sealing, in order. Called without mu: an fsync takes as long as
// the disk needs. A log that fails to sync is sealed all the same (what
// it holds is read back from the page cache); the failure is said.
func (l *Ledger) finishLogs(cs []closingLog) {
	for _, c := range cs {
		err := l.syncFile(c.f)
		if cerr := c.f.Close(); err == nil {
			err = cerr
		}
		l.mu.Lock()
		if err != nil {
			l.fail("close "+c.stem, err)
		}
		l.m.sealQueue.Inc() // before the sealer can take it
		select {
		case l.seal <- c.stem:
		default:
			l.m.sealQueue.Dec()
			l.fail("seal "+c.stem, errors.New("seal queue full; sealed at next start"))
		}
		l.mu.Unlock()
	}
}

// flush writes the buffer to the log (without syncing). Called with mu.
func (l *Ledger) flush() {
	if len(l.buf) == 0 || l.f == nil {
		return
	}
	if l.stalled && l.sizeUnsure() && !l.cutBack() {
		// The cut after the last failed write failed too, and again now:
		// never append after a partial frame.
		return
	}
	n, err := l.f.Write(l.buf)
	if err != nil {
		// What waits stays in buf, in order, for the next flush; what of it
		// reached the file is cut, so that the log ends on a whole frame.
		// A cut that fails is tried again before the next write.
		l.stalled = true
		l.fail("write "+partName(l.hour), err)
		if n > 0 {
			l.cutBack()
		}
		return
	}
	l.m.bytes.Add(float64(n))
	l.size += int64(n)
	l.buf = l.buf[:0]
	l.dirty = true
	l.stalled = false
}

// cutBack truncates the open log to what was written whole; false, said
// and counted, when it cannot.
func (l *Ledger) cutBack() bool {
	if err := l.f.Truncate(l.size); err != nil {
		l.fail("cut a partial write of "+partName(l.hour), err)
		return false
	}
	return true
}

// sizeUnsure reports whether the open log may be longer than what was
// written whole (a cut after a failed write that failed too).
func (l *Ledger) sizeUnsure() bool {
	st, err := l.f.Stat()
	return err != nil || st.Size() != l.size
}

// drop counts the Accesses of a buffer that could not be written and
// empties it: the log is closing (its hour is over, the ledger closes)
// with the disk still refusing them.
func (l *Ledger) drop() {
	if len(l.buf) == 0 {
		return
	}
	n := countAccessFrames(l.buf)
	l.m.lost.Add(float64(n))
	l.fail("close "+partName(l.hour), fmt.Errorf("%d Accesses not written (%d bytes)", n, len(l.buf)))
	l.buf = l.buf[:0]
	l.stalled = false
}

// fail logs and counts an error; repeated identical errors log once.
func (l *Ledger) fail(what string, err error) {
	l.m.errors.Inc()
	if l.err != nil && l.err.Error() == err.Error() {
		return
	}
	l.err = err
	l.log.Error("ledger: "+what+" failed", slog.String("error", err.Error()))
}

// background flushes every 100 ms, syncs every FsyncInterval and starts
// the next hour's partition when the clock passes it.
//
// The periodic sync runs outside mu: an fsync takes as long as the disk
// needs (tens of ms here, hundreds on a busy network volume), and under
// mu it held Add, and the recording's queue behind it, for all that time
// each FsyncInterval: Accesses dropped (or requests waiting, with
// queue_full: wait) whenever the disk was slower than the queue is long.
// Add writes on meanwhile; what it writes is synced by the next sync.
func (l *Ledger) background() {
	defer close(l.bgDone)
	ft := time.NewTicker(flushInterval)
	defer ft.Stop()
	lastSync := time.Now()
	for {
		select {
		case <-l.stop:
			return
		case <-ft.C:
		}
		l.mu.Lock()
		l.flush()
		if l.f != nil && hourOf(l.opts.Now().Unix()) > hourOf(l.hour) {
			l.closeLog() // the next Access opens the next hour's
		}
		var f *os.File
		var hour int64
		if time.Since(lastSync) >= l.opts.FsyncInterval && l.dirty && l.f != nil {
			f, hour, l.dirty = l.f, l.hour, false
		}
		closing := l.takeClosing()
		l.mu.Unlock()
		l.finishLogs(closing)
		if f == nil {
			continue
		}
		// A log closed meanwhile (its hour over and finished by Sync on
		// another goroutine) was synced by finishLogs: this sync's error
		// then says nothing.
		err := l.syncFile(f)
		lastSync = time.Now()
		if err != nil && !errors.Is(err, os.ErrClosed) {
			l.mu.Lock()
			if l.f == f {
				l.dirty = true // tried again at the next interval
			}
			l.fail("sync "+partName(hour), err)
			l.mu.Unlock()
		}
	}
}

// syncFile syncs f (Options.fsync in tests).
func (l *Ledger) syncFile(f *os.File) error {
	if l.opts.fsync != nil {
		return l.opts.fsync(f)
	}
	return f.Sync()
}

// sync syncs the open log if anything was written since its last sync.
// Called with mu (Sync and Close, which must return synced).
func (l *Ledger) sync() {
	if !l.dirty || l.f == nil {
		return
	}
	if err := l.syncFile(l.f); err != nil {
		l.fail("sync "+partName(l.hour), err)
		return
	}
	l.dirty = false
}

// Sync writes and syncs what was added so far.
func (l *Ledger) Sync() {
	l.mu.Lock()
	l.flush()
	l.sync()
	closing := l.takeClosing()
	l.mu.Unlock()
	l.finishLogs(closing)
}

// Close writes and syncs what was added, waits for sealing in progress
// and releases the directory. The current hour's log stays open on disk;
// the next Open continues it (or seals it, in a later hour).
func (l *Ledger) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.stop)
	l.mu.Unlock()
	<-l.bgDone
	l.mu.Lock()
	l.flush()
	l.drop()
	l.sync()
	var err error
	if l.f != nil {
		err = l.f.Close()
		l.f = nil
	}
	closing := l.takeClosing()
	l.mu.Unlock()
	l.finishLogs(closing)
	close(l.seal)
	<-l.sealDone
	l.lock.Close()
	return err
}

// newSealEncoder is the sealer's compressor. SpeedBetterCompression: at
// the density (BenchmarkSealDense) it seals an hour in 20.7 bytes
// per Access where the default level takes 24.6, in about the same time;
// SpeedBestCompression takes 18.9 in five times the time.
func newSealEncoder() (*zstd.Encoder, error) {
	// WithLowerEncoderMem: the encoder's history is its window (8 MiB)
	// plus a block, not twice the window, for the life of the sealer; the
	// same output (it changes buffers' sizes, never the matches).
	return zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedBetterCompression), zstd.WithLowerEncoderMem(true))
}

// sealer seals queued logs in order, then applies retention and writes
// the rollups of days whose hours are all sealed (rollup.go).
func (l *Ledger) sealer() {
	defer close(l.sealDone)
	enc, err := newSealEncoder()
	var dec *zstd.Decoder
	if err == nil {
		dec, err = newDecoder(1)
	}
	if err != nil {
		l.fail("seal", err)
		for range l.seal {
		}
		return
	}
	defer enc.Close()
	defer dec.Close()
	l.retain()
	l.rollups(enc, dec)
	// Logs are sealed in order, a failed one (a full disk) tried again
	// before any later: each sealed hour names its predecessor's hash, so
	// sealing a later one first would chain it past this one, and verify
	// would report the chain broken for good. Stems queued meanwhile wait
	// behind it; Close ends the wait (the logs left are sealed, in order,
	// at the next start).
	var queue []string
	backoff := l.opts.sealRetry
	if backoff <= 0 {
		backoff = sealRetryFirst
	}
	first := backoff
	// Retention and rollups list the directory, which grows with parts:
	// they run after a seal at most every housekeepEvery (put off, due
	// fires when it is time; and when the sealer stops), not after each
	// seal of a busy gateway's parts. A part's own author index is made
	// right after its seal.
	every := cmp.Or(l.opts.housekeepEvery, housekeepEvery)
	housekept := time.Now()
	var due <-chan time.Time  // housekeeping put off
	var idle <-chan time.Time // no seal since the last for scratchIdle
	housekeep := func() {
		l.retain()
		l.rollups(enc, dec)
		housekept, due = time.Now(), nil
	}
	for {
		if len(queue) == 0 {
			select {
			case stem, ok := <-l.seal:
				if !ok {
					if due != nil {
						housekeep()
					}
					return
				}
				queue = append(queue, stem)
			case <-due:
				housekeep()
				continue
			case <-idle:
				l.scratch, idle = sealScratch{}, nil
				l.m.scratch.Set(0)
				continue
			}
		}
		if err := l.sealOne(queue[0], enc); err != nil {
			l.fail("seal "+queue[0], err)
			t := time.NewTimer(backoff)
			for waiting := true; waiting; {
				select {
				case stem, ok := <-l.seal:
					if !ok {
						t.Stop()
						return
					}
					queue = append(queue, stem)
				case <-t.C:
					waiting = false
				}
			}
			backoff = min(2*backoff, sealRetryMax)
			continue
		}
		if l.last.stem == queue[0] { // sealed, not an empty log removed
			l.authorIndex(queue[0], enc, dec)
		}
		queue, backoff = queue[1:], first
		if idle = nil; l.scratch.held() {
			idle = time.After(cmp.Or(l.opts.scratchIdle, scratchIdle))
		}
		l.m.scratch.Set(float64(l.scratch.bytes()))
		l.m.sealed.Inc()
		l.m.sealQueue.Dec()
		if wait := every - time.Since(housekept); wait <= 0 {
			housekeep()
		} else if due == nil {
			due = time.After(wait)
		}
	}
}

// sealRetryFirst and sealRetryMax bound the wait before a failed seal is
// tried again (doubling from the first). housekeepEvery bounds how often
// the sealer runs retention and rollups (each lists the directory).
const (
	sealRetryFirst = 5 * time.Second
	sealRetryMax   = 5 * time.Minute
	housekeepEvery = time.Minute
)

// sealOne turns a closed log into a sealed partition chained to the last
// one: written aside, synced, renamed, the directory synced, then the log
// removed.
func (l *Ledger) sealOne(stem string, enc *zstd.Encoder) error {
	wp := walPath(l.opts.Dir, stem)
	b, err := os.ReadFile(wp)
	if err != nil {
		return err
	}
	// A log larger than the scratch's Accesses is decoded into new memory:
	// the old is not kept beside it.
	reuse := l.scratch.entries
	l.scratch.entries = nil
	p, valid, _ := readLogInto(wp, b, &l.scratch.arena, reuse)
	defer l.scratch.release(p, 2*l.opts.PartitionAccesses)
	if valid != len(b) || p == nil {
		// A tail that does not check (a write cut short that could not be
		// cut back) is kept aside, as at start, and the rest sealed; a log
		// without a header (its first write failed) is removed.
		if _, err := l.repair(wp); err != nil {
			return err
		}
		if p == nil {
			return nil
		}
	}
	if len(p.entries) == 0 {
		return os.Remove(wp)
	}
	prev, err := l.predecessor(stem)
	if err != nil {
		return err
	}
	if l.gd == nil {
		if l.gd, err = loadSealerDictionary(l.opts.Dir); err != nil {
			return err
		}
	}
	var frames []byte
	tuples := l.gd.adopt(p, &frames)
	if err := l.gd.appendIDs(l.opts.Dir, frames); err != nil {
		l.gd = nil // reread: what reached the file is unknown
		return fmt.Errorf("ledger: append to %s: %w", idsFile, err)
	}
	for ns := range p.sizes {
		p.sizes[ns] = l.gd.t[ns].len()
	}
	out, hash := encodeSeg(p, tuples, prev, enc)
	sp := segPath(l.opts.Dir, stem)
	tmp := sp + ".tmp"
	os.Remove(tmp)
	if err := writeFileSync(tmp, out); err != nil {
		return err
	}
	if err := os.Rename(tmp, sp); err != nil {
		return err
	}
	if err := syncDir(l.opts.Dir); err != nil {
		return err
	}
	l.last = sealedLast{stem: stem, hash: hash}
	return os.Remove(wp)
}

// sealedLast is the partition the sealer sealed last and its hash: the
// next one's predecessor, without listing the directory (lastHash) for
// each seal of a busy gateway's parts.
type sealedLast struct {
	stem string
	hash [32]byte
}

// predecessor is the hash stem is chained to: of the partition sealed
// last, when it is the one before stem, else as lastHash reads it.
func (l *Ledger) predecessor(stem string) ([32]byte, error) {
	if l.last.stem != "" && l.last.stem < stem {
		return l.last.hash, nil
	}
	return lastHash(l.opts.Dir, stem)
}

// lastHash is the hash of the last sealed partition before stem, or of
// the last one retention removed, or zeros.
func lastHash(dir, stem string) ([32]byte, error) {
	var h [32]byte
	ls, err := list(dir)
	if err != nil {
		return h, err
	}
	for i := len(ls.stems) - 1; i >= 0; i-- {
		s := ls.stems[i]
		if s >= stem || !ls.seg[s] {
			continue
		}
		f, err := os.Open(segPath(dir, s))
		if err != nil {
			return h, err
		}
		defer f.Close()
		if _, err := f.Seek(-32, io.SeekEnd); err != nil {
			return h, fmt.Errorf("%s: %w", segPath(dir, s), err)
		}
		_, err = io.ReadFull(f, h[:])
		return h, err
	}
	r, err := readRetired(dir)
	if err != nil || len(r) == 0 {
		return h, err
	}
	return r[len(r)-1].hash, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
