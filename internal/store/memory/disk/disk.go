package disk

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/store"
	"github.com/warden-gw/warden/internal/store/memory"
)

// File names inside Options.Dir.
const (
	SnapshotFile = "snapshot"
	BanLogFile   = "bans.log"
	lockFile     = "lock"

	// DefaultInterval is how often a snapshot is taken when Options.Interval is 0.
	DefaultInterval = 30 * time.Second
)

// Options configure a Disk.
type Options struct {
	Dir      string        // created 0700 if missing
	Interval time.Duration // between snapshots; 0: DefaultInterval
	Logger   *slog.Logger  // nil: slog.Default()
	Metrics  *Metrics      // nil: none
	Now      func() time.Time
}

// Target is what a restore fills: the memory store before it serves.
type Target interface {
	Import(now time.Time, st *memory.ShardState) memory.Restored
	ImportBans(now time.Time, bans []store.Ban) int
}

// State is what Run snapshots and compacts the ban log from.
type State interface {
	Source
	WithBans(ctx context.Context, fn func(context.Context, []store.Ban) error) error
}

// Disk keeps a memory store's state in a directory: the ban log (every ban
// change, synced before it takes effect) and periodic snapshots of the rest.
// It is a memory.BanJournal.
type Disk struct {
	opts Options
	log  *slog.Logger
	lock *os.File
	bans *banLog

	snap   snapInfo // the snapshot found at Open (version 0: none usable)
	replay replayed
	snapMu sync.Mutex // one snapshot at a time

	// The detector's state: read by Restore and held (and written again
	// by every snapshot) until a detector takes it over with Detector;
	// from then on each snapshot asks the detector.
	detMu  sync.Mutex
	detSrc DetectSource
	held   *store.DetectState
	detBuf store.DetectState // the detector's export (under snapMu)
}

// DetectSource is the detector, whose state (ban histories, windows)
// snapshots keep.
type DetectSource interface {
	ExportDetect(now time.Time, st *store.DetectState)
}

var _ memory.BanJournal = (*Disk)(nil)

// Open takes the directory (one warden at a time: a lock file), checks the
// last snapshot whole (a corrupt one is renamed aside and logged; warden
// then starts from the ban log alone), and replays the ban log, cutting a
// torn or corrupt tail (kept beside it). Only I/O errors on the directory
// itself fail it: a bad file never stops warden from starting.
func Open(opts Options) (*Disk, error) {
	if opts.Dir == "" {
		return nil, errors.New("disk: no directory")
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	d := &Disk{opts: opts, log: opts.Logger}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("disk: create %s: %w", opts.Dir, err)
	}
	if fi, err := os.Stat(opts.Dir); err != nil {
		return nil, fmt.Errorf("disk: %w", err)
	} else if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(opts.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("disk: chmod %s 0700: %w", opts.Dir, err)
		}
		d.log.Warn("state directory was not 0700; made it so", slog.String("dir", opts.Dir), slog.String("was", fi.Mode().Perm().String()))
	}
	if err := d.setAsideOdd(filepath.Join(opts.Dir, lockFile)); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(opts.Dir, lockFile), os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("disk: lock %s: %w", opts.Dir, err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("disk: %s is in use by another warden (lock: %w)", opts.Dir, err)
	}
	d.lock = lock
	for _, name := range []string{SnapshotFile, BanLogFile} {
		if err := d.setAsideOdd(filepath.Join(opts.Dir, name)); err != nil {
			d.unlock()
			return nil, err
		}
	}
	if err := d.checkSnapshot(); err != nil {
		d.unlock()
		return nil, err
	}
	l, rep, err := openBanLog(filepath.Join(opts.Dir, BanLogFile), opts.Now())
	if err != nil {
		d.unlock()
		return nil, fmt.Errorf("disk: %w", err)
	}
	d.bans, d.replay = l, rep
	if rep.cut > 0 {
		d.log.Error("ban log: cut a torn or corrupt tail; the bytes are kept for inspection",
			slog.String("log", l.path), slog.Int64("bytes", rep.cut), slog.String("kept", rep.keptAt),
			slog.String("cause", fmt.Sprint(rep.why)), slog.Int("records_kept", rep.records))
	}
	d.opts.Metrics.banLog(l.stats())
	return d, nil
}

// checkSnapshot reads the snapshot whole without loading it; a bad one is
// set aside.
func (d *Disk) checkSnapshot() error {
	path := filepath.Join(d.opts.Dir, SnapshotFile)
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("disk: open %s: %w", path, err)
	}
	defer f.Close()
	_ = f.Chmod(0o600)
	info, err := readSnapshot(bufio.NewReaderSize(f, 1<<20), nil, nil)
	if err == nil {
		d.snap = info
		return nil
	}
	aside := fmt.Sprintf("%s.corrupt-%d", path, d.opts.Now().UnixNano())
	if rerr := os.Rename(path, aside); rerr != nil {
		return fmt.Errorf("disk: set aside the unreadable snapshot %s: %w", path, rerr)
	}
	d.log.Error("snapshot unreadable: set aside; starting from the ban log alone (budgets, limits and link filters start empty)",
		slog.String("snapshot", path), slog.String("kept", aside), slog.String("cause", err.Error()))
	return nil
}

// setAsideOdd renames path aside (path.corrupt-N, logged) when it exists
// and is not a regular file: a symbolic link, a directory, a FIFO. warden,
// often root, must never open a state file through a link someone planted
// in the directory before it was made 0700 (it would chmod, truncate or
// overwrite the link's target), nor block opening a FIFO; the odd file is
// kept for inspection and warden starts as if it were missing.
func (d *Disk) setAsideOdd(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	if fi.Mode().IsRegular() {
		return nil
	}
	aside := fmt.Sprintf("%s.corrupt-%d", path, d.opts.Now().UnixNano())
	if err := os.Rename(path, aside); err != nil {
		return fmt.Errorf("disk: set aside %s (not a regular file): %w", path, err)
	}
	d.log.Error("state file is not a regular file: set aside, never opened", slog.String("file", path),
		slog.String("kept", aside), slog.String("type", fi.Mode().Type().String()))
	return nil
}

// createAside creates tmp, a file to be renamed over another once written,
// afresh: a leftover tmp (a crash mid-write, or a link planted there) is
// removed first, never opened, so a write can only go to a new file.
func createAside(tmp string) (*os.File, error) {
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
}

// HashKey is the memory store's hash key from the snapshot (zero when there
// is none): the store must be made with it for the snapshot's keys to match.
func (d *Disk) HashKey() [16]byte { return d.snap.key }

// Summary says what Restore loaded.
type Summary struct {
	Snapshot  time.Time // when the loaded snapshot was taken; zero: none
	Version   int
	Restored  memory.Restored
	Bans      int // bans restored from the log
	BanLog    int // records in the log
	TailCut   int64
	Took      time.Duration
	SnapBytes int64
	// The detector's ban histories and tracks read from the snapshot,
	// held for the detector (Detector), which drops what expired.
	DetectOffences, DetectTracks int
}

// Restore loads the snapshot Open checked into t, then the bans the log
// holds; entries expired at now are dropped. A snapshot that fails while
// loading (changed since Open) leaves what was loaded and is logged.
func (d *Disk) Restore(ctx context.Context, t Target) (Summary, error) {
	begin := time.Now()
	now := d.opts.Now()
	sum := Summary{BanLog: d.replay.records, TailCut: d.replay.cut}
	if d.snap.version != 0 {
		path := filepath.Join(d.opts.Dir, SnapshotFile)
		f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
		if err != nil {
			return sum, fmt.Errorf("disk: open %s: %w", path, err)
		}
		det := &store.DetectState{}
		info, err := readSnapshot(bufio.NewReaderSize(f, 1<<20), func(st *memory.ShardState) {
			sum.Restored.Add(t.Import(now, st))
		}, det)
		f.Close()
		if err != nil {
			d.log.Error("snapshot failed while loading; keeping what loaded", slog.String("snapshot", path), slog.String("cause", err.Error()))
		}
		sum.Snapshot, sum.Version, sum.SnapBytes = info.created, info.version, info.bytes
		if err == nil && det.Len() > 0 {
			d.detMu.Lock()
			d.held = det
			d.detMu.Unlock()
			sum.DetectOffences, sum.DetectTracks = len(det.Offences), len(det.Tracks)
		}
	}
	bans := make([]store.Ban, 0, len(d.replay.bans))
	for _, b := range d.replay.bans {
		bans = append(bans, b)
	}
	sum.Bans = t.ImportBans(now, bans)
	d.replay.bans = nil
	sum.Took = time.Since(begin)
	return sum, nil
}

// PutBan appends b to the ban log and syncs it.
func (d *Disk) PutBan(ctx context.Context, b store.Ban) error {
	err := d.bans.PutBan(ctx, b)
	d.opts.Metrics.banLog(d.bans.stats())
	return err
}

// RemoveBan appends the removal of k to the ban log and syncs it.
func (d *Disk) RemoveBan(ctx context.Context, k store.BanKey) error {
	err := d.bans.RemoveBan(ctx, k)
	d.opts.Metrics.banLog(d.bans.stats())
	return err
}

// Snapshot writes a snapshot of s now, then rewrites the ban log if most
// of its records are dead (replaced, removed or expired bans).
func (d *Disk) Snapshot(ctx context.Context, s State) error {
	d.snapMu.Lock()
	defer d.snapMu.Unlock()
	begin := time.Now()
	now := d.opts.Now()
	info, err := snapshotFile(filepath.Join(d.opts.Dir, SnapshotFile), s, d.detectState(now), now)
	d.detBuf = store.DetectState{} // tens of MB at the detector's bound: not kept until the next snapshot
	if err != nil {
		d.opts.Metrics.failed()
		return fmt.Errorf("disk: %w", err)
	}
	d.opts.Metrics.snapshot(time.Since(begin), info.bytes, info.created)
	d.log.Debug("snapshot written", slog.Int("limits", info.limits), slog.Int("budgets", info.budgets),
		slog.Int("links", info.links), slog.Int64("bytes", info.bytes), slog.Duration("took", time.Since(begin)))
	return d.compact(ctx, s)
}

// Detector hands the detector's state read by Restore (nil: none) to
// restore, which loads it into the detector, and has every later snapshot
// take the state from src. Both happen under one lock that snapshots take
// too, so no snapshot falls between them (it would write a detector not
// yet restored). Until it is called, snapshots write the state Restore
// read again, so a snapshot taken before the detector starts (or with it
// turned off) loses nothing of it.
func (d *Disk) Detector(src DetectSource, restore func(*store.DetectState)) {
	d.detMu.Lock()
	defer d.detMu.Unlock()
	if restore != nil {
		restore(d.held)
	}
	d.detSrc, d.held = src, nil
}

// detectState is the detector's state for a snapshot at now. Called with
// snapMu held.
func (d *Disk) detectState(now time.Time) *store.DetectState {
	d.detMu.Lock()
	defer d.detMu.Unlock()
	if d.detSrc == nil {
		return d.held
	}
	d.detSrc.ExportDetect(now, &d.detBuf)
	return &d.detBuf
}

// compactMin is the fewest records worth a rewrite of the ban log.
const compactMin = 1024

func (d *Disk) compact(ctx context.Context, s State) error {
	if n, _ := d.bans.stats(); n < compactMin {
		return nil
	}
	return s.WithBans(ctx, func(_ context.Context, bans []store.Ban) error {
		if n, _ := d.bans.stats(); n <= 2*len(bans) {
			return nil
		}
		if err := d.bans.rewrite(bans, d.opts.Now()); err != nil {
			return fmt.Errorf("disk: %w", err)
		}
		d.opts.Metrics.banLog(d.bans.stats())
		return nil
	})
}

// Run snapshots s every Options.Interval until ctx ends. A failed snapshot
// is logged and counted; the next one tries again.
func (d *Disk) Run(ctx context.Context, s State) {
	t := time.NewTicker(d.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := d.Snapshot(ctx, s); err != nil {
				d.log.Error("snapshot failed", slog.String("error", err.Error()))
			}
		}
	}
}

// Close takes a last snapshot of s (nil: none), closes the ban log and
// releases the directory.
func (d *Disk) Close(ctx context.Context, s State) error {
	var err error
	if s != nil {
		err = d.Snapshot(ctx, s)
	}
	if cerr := d.bans.close(); err == nil && cerr != nil {
		err = fmt.Errorf("disk: close ban log: %w", cerr)
	}
	d.unlock()
	return err
}

func (d *Disk) unlock() {
	if d.lock != nil {
		d.lock.Close() // releases the flock
		d.lock = nil
	}
}

// Metrics are the disk's Prometheus metrics.
type Metrics struct {
	duration   prometheus.Histogram
	size       prometheus.Gauge
	last       prometheus.Gauge
	failures   prometheus.Counter
	logRecords prometheus.Gauge
	logBytes   prometheus.Gauge
}

// NewMetrics registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "warden_store_snapshot_duration_seconds", Help: "Wall time of one snapshot of the memory store (copy, encode, write, sync, rename).",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}),
		size:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "warden_store_snapshot_bytes", Help: "Size of the last snapshot written."}),
		last:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "warden_store_snapshot_last_timestamp_seconds", Help: "When the last snapshot written was taken (Unix time)."}),
		failures:   prometheus.NewCounter(prometheus.CounterOpts{Name: "warden_store_snapshot_failures_total", Help: "Snapshots that failed (the next one tries again)."}),
		logRecords: prometheus.NewGauge(prometheus.GaugeOpts{Name: "warden_store_ban_log_records", Help: "Ban changes (puts and removals) in the ban log, until it is next rewritten."}),
		logBytes:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "warden_store_ban_log_bytes", Help: "Size of the ban log."}),
	}
	for _, c := range []prometheus.Collector{m.duration, m.size, m.last, m.failures, m.logRecords, m.logBytes} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("disk: metrics: %w", err)
		}
	}
	return m, nil
}

func (m *Metrics) snapshot(took time.Duration, size int64, at time.Time) {
	if m == nil {
		return
	}
	m.duration.Observe(took.Seconds())
	m.size.Set(float64(size))
	m.last.Set(float64(at.UnixNano()) / 1e9)
}

func (m *Metrics) failed() {
	if m != nil {
		m.failures.Inc()
	}
}

func (m *Metrics) banLog(records int, size int64) {
	if m != nil {
		m.logRecords.Set(float64(records))
		m.logBytes.Set(float64(size))
	}
}
