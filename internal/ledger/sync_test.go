package ledger

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/identify"
)

// A slow fsync holds no Add: the periodic sync runs outside the writer's
// lock, so Accesses go on being appended, and written, while the disk
// takes its time. Before, every Add waited out the whole fsync, and the
// recording's queue behind Add filled (Accesses dropped, or requests
// waiting with queue_full: wait) whenever the disk was slower than the
// queue was long. Nothing is lost either way: all are read back.
func TestSlowSyncHoldsNoAdd(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: t0}
	h := newHeldSync()
	l := openAt(t, dir, c, Options{FsyncInterval: time.Millisecond, fsync: h.fsync})
	l.Add(profile(t0, "1", "10.0.0.1", "100", false))
	h.waitStarted(t, "no periodic sync in 10 s") // once a flush made the log dirty
	const n = 2000
	h.waitAdded(t, addAccount2(l, n, t0.Add(time.Second)), "Add waited for a slow fsync")
	close(h.release)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	tb := must(reader(t, dir, Window{}).TookBy(identify.FacetAccount, "2"))(t)
	if tb.Accesses != n || tb.Served["contact"] != n {
		t.Fatalf("account 2: %d Accesses, %d contacts served; want %d of each", tb.Accesses, tb.Served["contact"], n)
	}
}

// The last fsync of an hour's log holds no Add either: the log is handed
// over when the hour turns, then synced, closed and queued for sealing
// beside the writer. Before, the Access that opened the next hour waited
// out that fsync under the writer's lock, and every Access behind it. The
// hour is sealed once its sync is done, and nothing is lost.
func TestSlowHourEndHoldsNoAdd(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: t0}
	h := newHeldSync()
	l := openAt(t, dir, c, Options{FsyncInterval: time.Hour, fsync: h.fsync})
	l.Add(profile(t0, "1", "10.0.0.1", "100", false))
	next := t0.Add(time.Hour)
	c.set(next)
	const n = 2000
	added := addAccount2(l, n, next)
	h.waitStarted(t, "hour 10's log was not synced in 10 s") // beside the writer
	h.waitAdded(t, added, "Add waited for the fsync of the hour that ended")
	if _, err := os.Stat(segPath(dir, partName(t0.Unix()))); err == nil {
		t.Fatal("hour 10 sealed before its log was synced")
	}
	close(h.release)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(segPath(dir, partName(t0.Unix()))); err != nil {
		t.Fatalf("hour 10 not sealed by Close: %v", err)
	}
	r := reader(t, dir, Window{})
	if tb := must(r.TookBy(identify.FacetAccount, "1"))(t); tb.Accesses != 1 {
		t.Fatalf("account 1: %d Accesses, want 1", tb.Accesses)
	}
	if tb := must(r.TookBy(identify.FacetAccount, "2"))(t); tb.Accesses != n {
		t.Fatalf("account 2: %d Accesses, want %d", tb.Accesses, n)
	}
}

// heldSync is an Options.fsync whose first call takes until release is
// closed (started is closed when it begins): a disk slow on one fsync.
type heldSync struct {
	started, release chan struct{}
	once             sync.Once
}

func newHeldSync() *heldSync {
	return &heldSync{started: make(chan struct{}), release: make(chan struct{})}
}

func (h *heldSync) fsync(f *os.File) error {
	h.once.Do(func() { close(h.started); <-h.release })
	return f.Sync()
}

// waitStarted fails the test with why unless the held fsync begins within
// 10 s.
func (h *heldSync) waitStarted(t *testing.T, why string) {
	t.Helper()
	select {
	case <-h.started:
	case <-time.After(10 * time.Second):
		t.Fatal(why)
	}
}

// waitAdded fails the test with why unless added closes within 10 s, while
// the fsync is held (released first, so that the Adds end).
func (h *heldSync) waitAdded(t *testing.T, added <-chan struct{}, why string) {
	t.Helper()
	select {
	case <-added:
	case <-time.After(10 * time.Second):
		close(h.release)
		<-added
		t.Fatal(why)
	}
}

// addAccount2 adds n profile look-ups by account 2 (subjects 200..), a
// second apart from from, on another goroutine; the channel closes once
// all are added.
func addAccount2(l *Ledger, n int, from time.Time) <-chan struct{} {
	added := make(chan struct{})
	go func() {
		defer close(added)
		for i := range n {
			l.Add(profile(from.Add(time.Duration(i)*time.Second), "2", "10.0.0.2", fmt.Sprint(200+i), false))
		}
	}()
	return added
}
