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
			must(r.TookBy(identify.FacetAccount, c.value))(b) // the dictionary's look-ups built
			var ms runtime.MemStats
			b.ReportAllocs()
			b.ResetTimer()
			cpu := threadCPU()
			for i := 0; i < b.N; i++ {
				if res := must(r.TookBy(identify.FacetAccount, c.value))(b); res.Accesses == 0 {
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
			if res := must(r.TookBy(identify.FacetAccount, "3"))(b); res.Accesses == 0 {
				b.Fatal("no Accesses")
			}
			r.Close()
		}
		b.ReportMetric(float64(threadCPU()-cpu)/float64(b.N), "cpu-ns/op")
	})
}

// BenchmarkExplain is explain over 24 sealed hours of 20,000 Accesses,
// one reader, its CPU time per query (cpu-ns/op, the thread's): scan is
// the old path (every hour decoded whole, oldest first, until the id),
// skip Reader.Find (each hour's request id column alone, newest first,
// the hour holding the id decoded whole). first is an id of the oldest
// hour, last of the newest, none an id the ledger does not hold.
func BenchmarkExplain(b *testing.B) {
	dir := b.TempDir()
	const hours, perHour = 24, 20000
	manyHours(b, dir, hours, perHour)
	ids := []struct{ name, id string }{{"first", profileID(0, 7)}, {"last", profileID(hours-1, 7)}, {"none", profileID(0, perHour)}}
	for _, way := range []struct {
		name string
		find func(r *Reader, id string) (*Found, error)
	}{{"scan", findAll}, {"skip", (*Reader).Find}} {
		for _, c := range ids {
			b.Run(way.name+"/"+c.name, func(b *testing.B) {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				r, err := OpenReader(dir, Window{})
				if err != nil {
					b.Fatal(err)
				}
				defer r.Close()
				b.ReportAllocs()
				b.ResetTimer()
				cpu := threadCPU()
				for i := 0; i < b.N; i++ {
					if f := must(way.find(r, c.id))(b); (f == nil) != (c.name == "none") {
						b.Fatalf("%s: %+v", c.id, f)
					}
				}
				b.ReportMetric(float64(threadCPU()-cpu)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}
