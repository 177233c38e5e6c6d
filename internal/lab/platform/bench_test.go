package platform

import (
	"runtime"
	"testing"
)

// BenchmarkNew measures start-up at 1,000,000 profiles (the contract's
// target: under 10 s and 2 GiB on 2 cores). It reports the heap the
// platform keeps (live-MB) and the peak the Go runtime took (sys-MB).
//
//	go test -run '^$' -bench New -benchtime 1x ./internal/lab/platform/
func BenchmarkNew(b *testing.B) {
	n := 1_000_000
	for b.Loop() {
		p, err := New(Options{Profiles: n, Seed: 1, JWTSecret: "s"})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "live-MB")
		b.ReportMetric(float64(ms.Sys)/(1<<20), "sys-MB")
		b.ReportMetric(float64(len(p.following.adj)), "edges")
		runtime.KeepAlive(p)
		b.StartTimer()
	}
}
