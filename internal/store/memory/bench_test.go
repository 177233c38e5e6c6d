package memory

import (
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/warden-gw/warden/internal/store"
)

// benchKeys makes n limit keys shaped like the gateway's: rule, facet, value.
func benchKeys(prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = prefix + "10." + strconv.Itoa(i>>16&255) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255)
	}
	return keys
}

// processCPU is the process's user and system CPU time so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds CPU time per operation (all goroutines, GC included): on a
// shared machine it is steadier than wall time per operation.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(processCPU(b)-start)/float64(b.N), "cpu-ns/op")
}

// BenchmarkAdmitTwoLimits is one request's admission: two ban keys and two
// limits (per ip, per account) over n ips and n accounts, in parallel. One
// ban exists, on another ip. Keys are built per request into a reused buffer,
// as the gateway builds them (so they are in cache, and the store must copy
// what it keeps).
func BenchmarkAdmitTwoLimits(b *testing.B) {
	for _, n := range []uint32{1 << 10, 1 << 16} {
		b.Run("keys="+strconv.Itoa(int(n)), func(b *testing.B) { benchAdmit(b, n) })
	}
}

func benchAdmit(b *testing.B, n uint32) {
	s := New(Options{SweepEvery: -1})
	defer s.Close()
	if err := s.PutBan(ctx, store.Ban{Facet: "ip", Value: "198.51.100.1"}); err != nil {
		b.Fatal(err)
	}
	var seed atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b, processCPU(b))
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(seed.Add(1), 1))
		ipBuf, accBuf := make([]byte, 0, 64), make([]byte, 0, 64)
		req := &store.AdmitRequest{
			Bans:   make([]store.BanKey, 2),
			Limits: make([]store.LimitRequest, 2),
		}
		now := t0
		for pb.Next() {
			i, j := rng.Uint32N(n), rng.Uint32N(n)
			ipBuf = strconv.AppendUint(strconv.AppendUint(append(ipBuf[:0], "per-ip|ip|10.0."...), uint64(i>>8), 10), uint64(i&255), 10)
			accBuf = strconv.AppendUint(append(accBuf[:0], "per-account|account|user-"...), uint64(j), 10)
			ip, acc := unsafe.String(&ipBuf[0], len(ipBuf)), unsafe.String(&accBuf[0], len(accBuf))
			req.Bans[0] = store.BanKey{Facet: "ip", Value: ip}
			req.Bans[1] = store.BanKey{Facet: "account", Value: acc}
			req.Limits[0] = store.LimitRequest{Key: ip, Interval: 100 * time.Millisecond, Burst: 20, Cost: 1}
			req.Limits[1] = store.LimitRequest{Key: acc, Interval: time.Second, Burst: 50, Cost: 1}
			now = now.Add(time.Microsecond)
			if _, err := s.Admit(ctx, now, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkSpend50 is one list answer's rationing: 50 subjects offered to an
// account's budget (limit 200 a day) over 10,000 accounts, in parallel.
func BenchmarkSpend50(b *testing.B) {
	benchSpend(b, 200)
}

// BenchmarkSpend50Sketch is the same past the exact set: budgets of 20,000 a
// day, so busy accounts count in HyperLogLog.
func BenchmarkSpend50Sketch(b *testing.B) {
	benchSpend(b, 20_000)
}

func benchSpend(b *testing.B, limit int) {
	s := New(Options{SweepEvery: -1})
	defer s.Close()
	accounts := benchKeys("contact|account|", 10_000)
	if limit > 1000 {
		accounts = accounts[:100] // few budgets, each far past ExactMax
	}
	var seed atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b, processCPU(b))
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(seed.Add(1), 2))
		subjects := make([]uint64, 50)
		req := []store.SpendRequest{{Window: 24 * time.Hour, Limit: limit, Subjects: subjects}}
		for pb.Next() {
			for i := range subjects {
				subjects[i] = rng.Uint64N(1_000_000)
			}
			req[0].Key = accounts[rng.IntN(len(accounts))]
			if _, err := s.Spend(ctx, t0, req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkMemoryPerKey measures the heap taken by 1,000,000 active GCRA keys
// (keys of 22-26 bytes, cloned into the store) and reports bytes per key.
// Run it with -benchtime=1x.
func BenchmarkMemoryPerKey(b *testing.B) {
	const n = 1_000_000
	keys := benchKeys("per-ip|ip|", n)
	req := &store.AdmitRequest{Limits: make([]store.LimitRequest, 1)}
	var perKey float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s := New(Options{SweepEvery: -1})
		for _, k := range keys {
			req.Limits[0] = store.LimitRequest{Key: k, Interval: time.Minute, Burst: 10, Cost: 1}
			if _, err := s.Admit(ctx, t0, req); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if got := s.Stats().Keys; got != n {
			b.Fatalf("%d keys held, want %d", got, n)
		}
		perKey = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(s)
		s.Close()
	}
	runtime.KeepAlive(keys)
	b.ReportMetric(perKey, "bytes/key")
}

// BenchmarkSweep1M is one sweep over 1,000,000 live limit keys (nothing to
// remove); max-lock-ns and mean-lock-ns are how long a shard lock was held,
// the latency a request on that shard can see from the sweeper.
func BenchmarkSweep1M(b *testing.B) {
	s := New(Options{SweepEvery: -1})
	defer s.Close()
	req := &store.AdmitRequest{Limits: make([]store.LimitRequest, 1)}
	for _, k := range benchKeys("per-ip|ip|", 1_000_000) {
		req.Limits[0] = store.LimitRequest{Key: k, Interval: time.Hour, Burst: 10, Cost: 1}
		if _, err := s.Admit(ctx, t0, req); err != nil {
			b.Fatal(err)
		}
	}
	var longest, total time.Duration
	holds := 0
	for b.Loop() {
		for _, sh := range s.shards {
			start := time.Now()
			s.sweepShard(sh, t0.UnixNano())
			d := time.Since(start)
			longest, total, holds = max(longest, d), total+d, holds+1
		}
	}
	b.ReportMetric(float64(longest.Nanoseconds()), "max-lock-ns")
	b.ReportMetric(float64(total.Nanoseconds())/float64(holds), "mean-lock-ns")
}
