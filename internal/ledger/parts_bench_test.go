package ledger

import (
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/identify"
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

// BenchmarkBusyDay is a day cut in 2,400 parts (480,000 Accesses in parts
// of 200: a busy gateway's day in miniature): reach of 1,000 authors over
// the day, a reader opened per query, from its rollup (merged in groups:
// rollupFanIn) or from the parts' author indexes, and the rollup made in
// groups or in one step (CPU ms/op: the querying thread's, the process's):
//
//	go test -run '^$' -bench BusyDay -benchtime 5x ./internal/ledger
func BenchmarkBusyDay(b *testing.B) {
	const n, part = 480_000, 200
	day := time.Date(t0.Year(), t0.Month(), t0.Day(), 0, 0, 0, 0, time.UTC)
	dir := b.TempDir()
	clk := &clock{t: day}
	l, err := Open(Options{Dir: dir, Now: clk.now, PartitionAccesses: part})
	if err != nil {
		b.Fatal(err)
	}
	es := benchEntries(1 << 16)
	for i := range n {
		e := *es[i%len(es)]
		e.Time = day.Add(time.Duration(i) * (24 * time.Hour / n))
		clk.set(e.Time)
		l.Add(&e)
	}
	clk.set(day.Add(25 * time.Hour))
	l.Close()
	l, err = Open(Options{Dir: dir, Now: clk.now, PartitionAccesses: part}) // seals the last part, makes the rollup
	if err != nil {
		b.Fatal(err)
	}
	l.Close()
	ls, err := list(dir)
	if err != nil {
		b.Fatal(err)
	}
	stems := perDay(ls.stems, day.Unix())
	if !ls.days[day.Unix()] || len(stems) < 2*rollupFanIn {
		b.Fatalf("%d parts, rollup %v", len(stems), ls.days[day.Unix()])
	}
	var authors []string
	for i := range 1000 {
		authors = append(authors, strconv.Itoa(i*97))
	}
	w := Window{From: day, To: day.Add(24*time.Hour - time.Microsecond)}
	for _, c := range []struct {
		name   string
		rollup bool
	}{{"reach-rollup", true}, {"reach-parts", false}} {
		b.Run(c.name, func(b *testing.B) {
			cpuMetrics(b, func() {
				r, err := OpenReader(dir, w)
				if err != nil {
					b.Fatal(err)
				}
				if !c.rollup {
					r.rollups = nil
				} else if len(r.rollups) != 1 {
					b.Fatalf("%d rollups", len(r.rollups))
				}
				if _, _, err := r.Viewers(authors, identify.FacetAccount); err != nil {
					b.Fatal(err)
				}
				r.Close()
			})
		})
	}
	for _, c := range []struct {
		name  string
		fanIn int
	}{{"rollup-groups", rollupFanIn}, {"rollup-one-step", 2 * len(stems)}} {
		b.Run(c.name, func(b *testing.B) {
			dec, enc := mustDecoder(b), mustEncoder(b)
			cpuMetrics(b, func() {
				var tv tupleVals
				if made, err := writeRollup(dir, day.Unix(), stems, &tv, c.fanIn, dec, enc); !made || err != nil {
					b.Fatal(made, err)
				}
			})
		})
	}
}
