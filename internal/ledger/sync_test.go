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
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	l := openAt(t, dir, c, Options{FsyncInterval: time.Millisecond, fsync: func(f *os.File) error {
		once.Do(func() { close(started); <-release }) // the first sync takes until released
		return f.Sync()
	}})
	l.Add(profile(t0, "1", "10.0.0.1", "100", false))
	select {
	case <-started: // a periodic sync, once a flush made the log dirty
	case <-time.After(10 * time.Second):
		t.Fatal("no periodic sync in 10 s")
	}
	const n = 2000
	added := make(chan struct{})
	go func() {
		defer close(added)
		for i := range n {
			l.Add(profile(t0.Add(time.Duration(i+1)*time.Second), "2", "10.0.0.2", fmt.Sprint(200+i), false))
		}
	}()
	select {
	case <-added:
	case <-time.After(10 * time.Second):
		close(release)
		<-added
		t.Fatal("Add waited for a slow fsync")
	}
	close(release)
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
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	l := openAt(t, dir, c, Options{FsyncInterval: time.Hour, fsync: func(f *os.File) error {
		once.Do(func() { close(started); <-release })
		return f.Sync()
	}})
	l.Add(profile(t0, "1", "10.0.0.1", "100", false))
	next := t0.Add(time.Hour)
	c.set(next)
	const n = 2000
	added := make(chan struct{})
	go func() {
		defer close(added)
		for i := range n {
			l.Add(profile(next.Add(time.Duration(i)*time.Second), "2", "10.0.0.2", fmt.Sprint(200+i), false))
		}
	}()
	select {
	case <-started: // the hour's log synced beside the writer
	case <-time.After(10 * time.Second):
		t.Fatal("hour 10's log was not synced in 10 s")
	}
	select {
	case <-added:
	case <-time.After(10 * time.Second):
		close(release)
		<-added
		t.Fatal("Add waited for the fsync of the hour that ended")
	}
	if _, err := os.Stat(segPath(dir, partName(t0.Unix()))); err == nil {
		t.Fatal("hour 10 sealed before its log was synced")
	}
	close(release)
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
