package platform

import (
	"fmt"
	"net/http"
	"net/http/httptest"
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
		b.ReportMetric(float64(p.baseFollowers(popular(p))), "max-followers")
		runtime.KeepAlive(p)
		b.StartTimer()
	}
}

// discard is a ResponseWriter that keeps nothing, so the benchmark below
// measures the handler alone.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

// BenchmarkUserProfile is the hot path of the gateway benchmark: an
// authenticated GET /v1/users/{id}, token already verified once.
//
//	go test -run '^$' -bench 'UserProfile|Followers' -benchmem ./internal/lab/platform/
func BenchmarkUserProfile(b *testing.B) {
	for _, gz := range []bool{false, true} {
		b.Run(fmt.Sprintf("gzip=%v", gz), func(b *testing.B) {
			p := newTest(b, 20_000, 1)
			tok := mint(b, "1")
			reqs := make([]*http.Request, 1024)
			for i := range reqs {
				reqs[i] = httptest.NewRequest("GET", fmt.Sprintf("/v1/users/%d", 1+i*19), nil)
				reqs[i].Header.Set("Authorization", "Bearer "+tok)
				if gz {
					reqs[i].Header.Set("Accept-Encoding", "gzip")
				}
			}
			w := &discard{h: http.Header{}}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				p.ServeHTTP(w, reqs[i%len(reqs)])
				i++
			}
		})
	}
}

func BenchmarkFollowers(b *testing.B) {
	p := newTest(b, 20_000, 1)
	req := httptest.NewRequest("GET", fmt.Sprintf("/v1/users/%d/followers?limit=50", popular(p)), nil)
	req.Header.Set("Authorization", "Bearer "+mint(b, "1"))
	w := &discard{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		p.ServeHTTP(w, req)
	}
}
