package ledger

import (
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"
)

// BenchmarkBusyHour writes 1,200,000 Accesses in one hour (a gateway at
// 333 a second), sealed whole (PartitionAccesses past them) or in parts
// (the default), and reports the peak of the live heap while they are
// written and sealed (live-MiB, sampled every 5 ms) and the process's CPU
// per Access (writer-cpu-ns/op, sealing included). Run with -benchtime=1x:
//
//	go test -run '^$' -bench BusyHour -benchtime 1x ./internal/ledger
func BenchmarkBusyHour(b *testing.B) {
	const n = 1_200_000
	es := benchEntries(1 << 16)
	for _, c := range []struct {
		name  string
		parts int
	}{{"whole", 10_000_000}, {"parts", 0}} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				runtime.GC()
				base := liveHeap()
				stop := sampleLive(5 * time.Millisecond)
				clk := &clock{t: t0}
				l, err := Open(Options{Dir: b.TempDir(), Now: clk.now, PartitionAccesses: c.parts})
				if err != nil {
					b.Fatal(err)
				}
				cpu := procCPU()
				for i := range n {
					e := *es[i%len(es)]
					e.Time = t0.Add(time.Duration(i) * 3 * time.Millisecond) // 60 minutes
					l.Add(&e)
				}
				clk.set(t0.Add(2 * time.Hour))
				l.Close()
				// The hour's last log is sealed at the next start.
				l, err = Open(Options{Dir: l.opts.Dir, Now: clk.now, PartitionAccesses: c.parts})
				if err != nil {
					b.Fatal(err)
				}
				l.Close()
				used := procCPU() - cpu
				p := stop()
				b.ReportMetric(float64(p-base)/(1<<20), "live-MiB")
				b.ReportMetric(float64(used)/n, "writer-cpu-ns/op")
			}
		})
	}
}

// liveHeap is the live heap as the last collection marked it.
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// sampleLive samples liveHeap every d until stop, which returns the peak.
func sampleLive(d time.Duration) (stop func() uint64) {
	var mu sync.Mutex
	var p uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				v := liveHeap()
				mu.Lock()
				p = max(p, v)
				mu.Unlock()
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return max(p, liveHeap())
	}
}
