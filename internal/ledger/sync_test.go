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
