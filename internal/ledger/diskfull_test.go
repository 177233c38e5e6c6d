package ledger

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// count is a counter's value.
func count(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// fileLimit makes every write of this process past n bytes of a file fail
// part-way, as on a full disk (RLIMIT_FSIZE: the kernel writes up to the
// limit and refuses the rest with EFBIG; Go ignores SIGXFSZ); the returned
// func, also run at cleanup, lifts it. This package's tests never run in
// parallel: no other test writes meanwhile.
func fileLimit(t *testing.T, n int64) (lift func()) {
	t.Helper()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: uint64(n), Max: old.Max}); err != nil {
		t.Fatal(err)
	}
	lifted := false
	lift = func() {
		if !lifted {
			lifted = true
			if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(lift)
	return lift
}

// diskFullEntry is Access i: its own record, one of seven accounts.
func diskFullEntry(t0 time.Time, i int) *Entry {
	return &Entry{Time: t0.Add(time.Duration(i) * time.Millisecond), RequestID: fmt.Sprintf("r%05d", i), Route: "GET /v1/users/{id}",
		Identity: [NumFacets]string{1: fmt.Sprint(i % 7)}, Status: 200, Classes: []string{"contact"},
		Records: []Record{{ID: fmt.Sprint(1000 + i), Classes: 1}}}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// requestIDs are the request ids of every Access in dir, in order.
func requestIDs(t *testing.T, dir string) []string {
	t.Helper()
	r, err := OpenReader(dir, Window{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var ids []string
	r.Each(func(e *Entry) bool { ids = append(ids, e.RequestID); return true })
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

func idRange(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("r%05d", i))
	}
	return out
}

// openCounted opens a ledger with o and metrics of its own, returned.
func openCounted(t *testing.T, o Options) (*Ledger, *Metrics) {
	t.Helper()
	o.Metrics = NewMetrics(nil)
	l, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	return l, o.Metrics
}

// wholeAtStart fails unless the next start of the ledger in dir (at t)
// finds every log whole: nothing cut aside.
func wholeAtStart(t *testing.T, dir string, at time.Time) {
	t.Helper()
	l, m := openCounted(t, Options{Dir: dir, Now: func() time.Time { return at }})
	l.Close()
	if n := count(t, m.tornBytes); n != 0 {
		t.Fatalf("the next start cut %v bytes", n)
	}
}

// A write the disk cuts short leaves no partial frame in the log (a reader
// stops at one, and the next start would cut every frame after it aside):
// the log is cut back to its last whole frame and what waited is written,
// in order, once the disk takes it. Nothing is lost.
func TestWriteCutShortKeepsTheLogWhole(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 20, 10, 0, 5, 0, time.UTC)
	l, m := openCounted(t, Options{Dir: dir, Now: func() time.Time { return t0 }})
	for i := range 100 {
		l.Add(diskFullEntry(t0, i))
	}
	l.Sync()
	wal := walPath(dir, partName(t0.Unix()/3600*3600))
	whole := fileSize(t, wal)
	lift := fileLimit(t, whole+500)
	for i := 100; i < 400; i++ {
		l.Add(diskFullEntry(t0, i))
	}
	l.Sync()
	if got := fileSize(t, wal); got != whole {
		t.Fatalf("after a write cut short the log is %d bytes, want %d (cut back to its last whole frame)", got, whole)
	}
	if count(t, m.errors) == 0 {
		t.Fatal("the failed write was not counted")
	}
	lift()
	l.Sync()
	for i := 400; i < 500; i++ {
		l.Add(diskFullEntry(t0, i))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := requestIDs(t, dir), idRange(0, 500); !slices.Equal(got, want) {
		t.Fatalf("%d Accesses after the disk refused a write, want %d in order", len(got), len(want))
	}
	if n := count(t, m.lost); n != 0 {
		t.Fatalf("%v Accesses counted lost", n)
	}
	// The log checks whole: the next start cuts nothing aside.
	wholeAtStart(t, dir, t0)
}

// While the disk refuses writes, what waits is bounded (PendingBytes):
// later Accesses are dropped and counted, never a dictionary frame an
// Access written later needs; the rest is written once the disk takes it.
func TestPendingBoundDropsAndCounts(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 20, 10, 0, 5, 0, time.UTC)
	l, m := openCounted(t, Options{Dir: dir, Now: func() time.Time { return t0 }, PendingBytes: 8 << 10})
	for i := range 100 {
		l.Add(diskFullEntry(t0, i))
	}
	l.Sync()
	lift := fileLimit(t, fileSize(t, walPath(dir, partName(t0.Unix()/3600*3600)))+200)
	for i := 100; i < 150; i++ {
		l.Add(diskFullEntry(t0, i))
	}
	l.Sync() // refused: the ledger waits
	for i := 150; i < 1150; i++ {
		l.Add(diskFullEntry(t0, i))
	}
	lost := int(count(t, m.lost))
	if lost == 0 || lost >= 1000 {
		t.Fatalf("%d of 1000 Accesses dropped past 8 KiB waiting", lost)
	}
	lift()
	l.Sync()
	for i := 1150; i < 1200; i++ {
		l.Add(diskFullEntry(t0, i))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// The dropped are the last that came while the buffer was full.
	want := append(idRange(0, 1150-lost), idRange(1150, 1200)...)
	if got := requestIDs(t, dir); !slices.Equal(got, want) {
		t.Fatalf("%d Accesses kept, want %d: the first %d and the 50 after the disk came back", len(got), len(want), 1150-lost)
	}
}

// A seal that fails (here its file's name is taken) is tried again before
// any later hour is sealed: each sealed hour names its predecessor's hash,
// so sealing the next first would chain it past this one, and verify
// would report the chain broken once both were sealed.
func TestFailedSealKeepsTheOrder(t *testing.T) {
	dir := t.TempDir()
	var now time.Time
	t0 := time.Date(2026, 11, 20, 10, 0, 5, 0, time.UTC)
	l, m := openCounted(t, Options{Dir: dir, Now: func() time.Time { return now }, sealRetry: 20 * time.Millisecond})
	h1, h2 := partName(t0.Unix()/3600*3600), partName(t0.Unix()/3600*3600+3600)
	// The sealer cannot write hour 1's file while a directory holds its name.
	block := segPath(dir, h1) + ".tmp"
	if err := os.MkdirAll(filepath.Join(block, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	for h := range 3 {
		now = t0.Add(time.Duration(h) * time.Hour)
		for i := range 50 {
			l.Add(diskFullEntry(now, h*50+i))
		}
	}
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	// Hour 1 failed twice (tried again) or hour 2 was sealed past it.
	for deadline := time.Now().Add(30 * time.Second); count(t, m.errors) < 2 && !exists(segPath(dir, h2)); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the sealer neither tried hour 1 again nor sealed hour 2")
		}
	}
	if exists(segPath(dir, h2)) {
		t.Fatalf("%s sealed while %s, before it, failed", h2, h1)
	}
	if err := os.RemoveAll(block); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); !exists(segPath(dir, h1)) || !exists(segPath(dir, h2)); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("hours 1 and 2 not sealed once the seal could be written")
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK {
		t.Fatalf("verify: %v", rep.Problems)
	}
	if got := requestIDs(t, dir); len(got) != 150 {
		t.Fatalf("%d Accesses, want 150", len(got))
	}
}

// An Access too large for a frame a reader takes (a length past
// maxFrameBody reads as corruption, and every frame after it would be cut
// at the next start) is not written: counted lost; the Accesses around it
// are kept.
func TestAccessPastAFrameIsNotWritten(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 20, 10, 0, 5, 0, time.UTC)
	l, m := openCounted(t, Options{Dir: dir, Now: func() time.Time { return t0 }})
	l.Add(diskFullEntry(t0, 0))
	huge := diskFullEntry(t0, 1)
	for i := range maxFrameBody / 4 {
		huge.Records = append(huge.Records, Record{ID: fmt.Sprint(i), Classes: 1})
	}
	l.Add(huge)
	l.Add(diskFullEntry(t0, 2))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := requestIDs(t, dir); !slices.Equal(got, []string{"r00000", "r00002"}) {
		t.Fatalf("Accesses %v", got)
	}
	if n := count(t, m.lost); n != 1 {
		t.Fatalf("%v counted lost, want 1", n)
	}
	wholeAtStart(t, dir, t0)
}

// Links planted under the ledger's file names are never followed (warden
// may run as root): the lock refuses to open, saying so; the shared
// dictionary is not appended through one; the targets are untouched.
func TestLinksNotFollowed(t *testing.T) {
	target := filepath.Join(t.TempDir(), "precious")
	if err := os.WriteFile(target, []byte("keep me\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	untouched := func() {
		t.Helper()
		if got, err := os.ReadFile(target); err != nil || string(got) != "keep me\n" {
			t.Fatalf("the link's target now holds %q (%v)", got, err)
		}
	}
	dir := t.TempDir()
	if err := os.Symlink(target, filepath.Join(dir, "lock")); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("Open with a link for its lock: %v", err)
	}
	untouched()

	dir = t.TempDir()
	if err := os.Symlink(target, filepath.Join(dir, idsFile)); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 20, 10, 0, 5, 0, time.UTC)
	now := t0
	l, m := openCounted(t, Options{Dir: dir, Now: func() time.Time { return now }})
	l.Add(diskFullEntry(t0, 0))
	now = t0.Add(time.Hour) // the first hour is sealed: its ids appended
	l.Add(diskFullEntry(now, 1))
	for deadline := time.Now().Add(30 * time.Second); count(t, m.errors) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the seal through a linked dictionary did not fail")
		}
	}
	l.Close()
	untouched()
}
