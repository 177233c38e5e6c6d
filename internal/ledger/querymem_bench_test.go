package ledger

import (
	"runtime"
	"testing"

	"github.com/warden-gw/warden/internal/identify"
)

// BenchmarkTookByRepeated is took-by over 24 sealed hours of 20,000
// Accesses, asked again and again of one reader: each asking decodes the
// partitions again (a reader keeps none decoded). common is an account in
// every hour; rare is one in a single hour (the others are skipped on
// their identity column). cpu-ns/op is the thread's CPU time; live-MiB
// the live heap after a collection, the reader open, once the queries
// ran (what a reader keeps between queries). fresh opens a reader for
// each took-by of common (what a command or a dashboard page does).
func BenchmarkTookByRepeated(b *testing.B) {
	dir := b.TempDir()
	manyHours(b, dir, 24, 20000)
	for _, c := range []struct{ name, value string }{{"common", "3"}, {"rare", "lone"}} {
		b.Run(c.name, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			r, err := OpenReader(dir, Window{})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			r.TookBy(identify.FacetAccount, c.value) // the dictionary's look-ups built
			var ms runtime.MemStats
			b.ReportAllocs()
			b.ResetTimer()
			cpu := threadCPU()
			for i := 0; i < b.N; i++ {
				if res := r.TookBy(identify.FacetAccount, c.value); res.Accesses == 0 {
					b.Fatal("no Accesses")
				}
			}
			b.ReportMetric(float64(threadCPU()-cpu)/float64(b.N), "cpu-ns/op")
			b.StopTimer()
			runtime.GC()
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "live-MiB")
			runtime.KeepAlive(r)
		})
	}
	b.Run("fresh", func(b *testing.B) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		b.ReportAllocs()
		cpu := threadCPU()
		for i := 0; i < b.N; i++ {
			r, err := OpenReader(dir, Window{})
			if err != nil {
				b.Fatal(err)
			}
			if res := r.TookBy(identify.FacetAccount, "3"); res.Accesses == 0 {
				b.Fatal("no Accesses")
			}
			r.Close()
		}
		b.ReportMetric(float64(threadCPU()-cpu)/float64(b.N), "cpu-ns/op")
	})
}
