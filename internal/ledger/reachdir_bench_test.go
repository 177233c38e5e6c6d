package ledger

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/warden-gw/warden/internal/identify"
)

func threadCPUTest() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(1, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkReachDir runs bench ledger's reach over an existing ledger
// (WARDEN_REACH_DIR, WARDEN_REACH_DAYS).
func BenchmarkReachDir(b *testing.B) {
	dir := os.Getenv("WARDEN_REACH_DIR")
	if dir == "" {
		b.Skip("WARDEN_REACH_DIR unset")
	}
	days, _ := strconv.Atoi(os.Getenv("WARDEN_REACH_DAYS"))
	rng := rand.New(rand.NewPCG(21, 2))
	seen := map[int]bool{}
	var authors []string
	for len(authors) < 1000 {
		v := rng.IntN(100000)
		if !seen[v] {
			seen[v] = true
			authors = append(authors, "a"+strconv.Itoa(v))
		}
	}
	end := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(days) * 24 * time.Hour)
	win := Window{From: end.Add(-7 * 24 * time.Hour), To: end}
	r, err := OpenReader(dir, win)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	once := func() int {
		views, _ := r.Viewers(authors, identify.FacetAccount)
		return int(roaring.FastOr(views...).GetCardinality())
	}
	fmt.Println("reach", once(), "partitions", r.Partitions(), "rollups", len(r.rollups))
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var rs0, rs1 syscall.Rusage
	syscall.Getrusage(0, &rs0)
	c := threadCPUTest()
	b.ResetTimer()
	for b.Loop() {
		once()
	}
	b.StopTimer()
	syscall.Getrusage(0, &rs1)
	b.ReportMetric(float64(threadCPUTest()-c)/float64(b.N)/1e6, "thread-cpu-ms/op")
	proc := (rs1.Utime.Nano() + rs1.Stime.Nano()) - (rs0.Utime.Nano() + rs0.Stime.Nano())
	b.ReportMetric(float64(proc)/float64(b.N)/1e6, "proc-cpu-ms/op")
}

// TestRollupDir opens a ledger (WARDEN_ROLLUP_DIR) for writing and closes
// it: the sealer writes the rollups it lacks.
func TestRollupDir(t *testing.T) {
	dir := os.Getenv("WARDEN_ROLLUP_DIR")
	if dir == "" {
		t.Skip("WARDEN_ROLLUP_DIR unset")
	}
	start := time.Now()
	l, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("rollups in %v", time.Since(start))
}

// BenchmarkReachDirCold is reach.Run's path (Dir(dir).Reach: a reader
// opened per query, the histogram of k) over WARDEN_REACH_DIR.
func BenchmarkReachDirCold(b *testing.B) {
	dir := os.Getenv("WARDEN_REACH_DIR")
	if dir == "" {
		b.Skip("WARDEN_REACH_DIR unset")
	}
	days, _ := strconv.Atoi(os.Getenv("WARDEN_REACH_DAYS"))
	rng := rand.New(rand.NewPCG(21, 2))
	seen := map[int]bool{}
	var authors []string
	for len(authors) < 1000 {
		v := rng.IntN(100000)
		if !seen[v] {
			seen[v] = true
			authors = append(authors, "a"+strconv.Itoa(v))
		}
	}
	end := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(days) * 24 * time.Hour)
	q := ReachQuery{Authors: authors, By: identify.FacetAccount, Window: Window{From: end.Add(-7 * 24 * time.Hour), To: end}}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var rs0, rs1 syscall.Rusage
	syscall.Getrusage(0, &rs0)
	c := threadCPUTest()
	for b.Loop() {
		if _, err := Dir(dir).Reach(b.Context(), q); err != nil {
			b.Fatal(err)
		}
	}
	syscall.Getrusage(0, &rs1)
	b.ReportMetric(float64(threadCPUTest()-c)/float64(b.N)/1e6, "thread-cpu-ms/op")
	proc := (rs1.Utime.Nano() + rs1.Stime.Nano()) - (rs0.Utime.Nano() + rs0.Stime.Nano())
	b.ReportMetric(float64(proc)/float64(b.N)/1e6, "proc-cpu-ms/op")
}
