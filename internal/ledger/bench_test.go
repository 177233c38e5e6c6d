package ledger

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/identify"
)

// benchEntries makes n Accesses: profile look-ups and feed pages by
// 100,000 accounts over 1,000,000 subjects and 100,000 authors.
func benchEntries(n int) []*Entry {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([]*Entry, n)
	for i := range out {
		acct := fmt.Sprint(rng.IntN(100000))
		at := t0.Add(time.Duration(i) * time.Millisecond)
		if i%2 == 0 {
			out[i] = profile(at, acct, fmt.Sprintf("10.%d.%d.%d", rng.IntN(256), rng.IntN(256), rng.IntN(256)), fmt.Sprint(rng.IntN(1000000)), i%5 == 0)
		} else {
			out[i] = posts(at, acct, "10.0.0.1", fmt.Sprint(rng.IntN(100000)), fmt.Sprint(rng.IntN(100000)))
		}
	}
	return out
}

// threadCPU is the CPU time of the calling thread (the goroutine locked to
// it): what one core spends, whatever else the machine runs.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(1, &ru) // RUSAGE_THREAD
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAdd is the writer's cost per Access (encode, dictionary, buffer
// and write; the disk's fsync runs on its own goroutine). cpu-ns/op is the
// CPU time of Add's thread per Access (GC assists included): on a shared
// machine ns/op also counts time spent waiting for a core.
func BenchmarkAdd(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	es := benchEntries(1 << 16)
	c := &clock{t: t0}
	l, err := Open(Options{Dir: b.TempDir(), Now: c.now})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := threadCPU()
	for i := 0; i < b.N; i++ {
		e := *es[i%len(es)]
		e.Time = t0.Add(time.Duration(i%3600000) * time.Millisecond) // one hour
		l.Add(&e)
	}
	b.ReportMetric(float64(threadCPU()-cpu)/float64(b.N), "cpu-ns/op")
}

// BenchmarkSealAndQuery seals one hour of 200,000 Accesses and reports the
// bytes per Access on disk (log, then sealed with its index), then times
// the queries on the sealed partition.
func BenchmarkSealAndQuery(b *testing.B) {
	dir := b.TempDir()
	c := &clock{t: t0}
	l, err := Open(Options{Dir: dir, Now: c.now})
	if err != nil {
		b.Fatal(err)
	}
	const n = 200000
	for _, e := range benchEntries(n) {
		l.Add(e)
	}
	l.Sync()
	wal, _ := os.Stat(walPath(dir, partName(t0.Unix())))
	c.set(t0.Add(time.Hour))
	l.Add(profile(t0.Add(time.Hour), "x", "10.0.0.9", "1", false))
	start := time.Now()
	for {
		if _, err := os.Stat(walPath(dir, partName(t0.Unix()))); os.IsNotExist(err) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	seal := time.Since(start)
	l.Close()
	seg, _ := os.Stat(segPath(dir, partName(t0.Unix())))
	r, err := OpenReader(dir, Window{From: t0, To: t0.Add(59 * time.Minute)})
	if err != nil {
		b.Fatal(err)
	}
	authors := make([]string, 1000)
	for i := range authors {
		authors[i] = fmt.Sprint(i * 97)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		must2(r.Viewers(authors, identify.FacetAccount))(b)
		must(r.TookBy(identify.FacetAccount, "42"))(b)
	}
	b.ReportMetric(float64(wal.Size())/n, "log-bytes/access")
	b.ReportMetric(float64(seg.Size())/n, "sealed-bytes/access")
	b.ReportMetric(seal.Seconds(), "seal-s")
}
