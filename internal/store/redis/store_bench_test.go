package redis_test

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/store"
	"github.com/warden-gw/warden/internal/store/memory"
	"github.com/warden-gw/warden/internal/store/redis"
	"github.com/warden-gw/warden/internal/store/redis/redistest"
)

// benchParallelism is goroutines per GOMAXPROCS: a gateway has many requests
// in flight, which is what lets rueidis pipeline them.
const benchParallelism = 32

// benchBackend is one store a benchmark compares.
type benchBackend struct {
	name string
	open func(b *testing.B) store.Store
	srv  *redistest.Server // nil: no Redis CPU to report
}

func memoryBackend() benchBackend {
	return benchBackend{"memory", func(b *testing.B) store.Store { return memory.New(memory.Options{SweepEvery: -1}) }, nil}
}

// run benchmarks body (one goroutine's loop) on a fresh store, reporting
// the client's and Redis's CPU per operation.
func (be benchBackend) run(b *testing.B, name string, body func(s store.Store, pb *testing.PB)) {
	b.Run(name, func(b *testing.B) {
		s := be.open(b)
		defer s.Close()
		b.SetParallelism(benchParallelism)
		b.ResetTimer()
		defer redistest.ReportCPU(b, be.srv)()
		b.RunParallel(func(pb *testing.PB) { body(s, pb) })
	})
}

// BenchmarkStore compares one decision on Redis (on this machine) with the
// memory store: Admit with two limits, Spend of 50 subjects. See
// bench/results/redis-store.txt for the ratio.
func BenchmarkStore(b *testing.B) {
	srv := redistest.Start(b)
	backends := []benchBackend{
		memoryBackend(),
		{"redis", func(b *testing.B) store.Store { return open(b, []string{srv.Addr()}) }, srv},
	}
	keys := make([]string, 10000)
	for i := range keys {
		keys[i] = "ip:192.0.2." + strconv.Itoa(i)
	}
	for _, be := range backends {
		be.run(b, "Admit2/"+be.name, func(s store.Store, pb *testing.PB) {
			rng := rand.New(rand.NewPCG(rand.Uint64(), 1))
			req := &store.AdmitRequest{Limits: make([]store.LimitRequest, 2)}
			for pb.Next() {
				k := keys[rng.IntN(len(keys))]
				req.Limits[0] = store.LimitRequest{Key: k, Interval: time.Millisecond, Burst: 100, Cost: 1}
				req.Limits[1] = store.LimitRequest{Key: "acct:" + k, Interval: time.Millisecond, Burst: 100, Cost: 1}
				if _, err := s.Admit(context.Background(), time.Now(), req); err != nil {
					b.Error(err)
					return
				}
			}
		})
		be.run(b, "Spend50/"+be.name, func(s store.Store, pb *testing.PB) {
			rng := rand.New(rand.NewPCG(rand.Uint64(), 2))
			reqs := []store.SpendRequest{{Window: time.Hour, Limit: 1 << 30, Subjects: make([]uint64, 50)}}
			for pb.Next() {
				reqs[0].Key = "acct:" + strconv.Itoa(rng.IntN(1000))
				for i := range reqs[0].Subjects {
					reqs[0].Subjects[i] = rng.Uint64N(1 << 20)
				}
				if _, err := s.Spend(context.Background(), time.Now(), reqs); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
}

// BenchmarkAdmitRowF is row (f)'s Admit at the store: per request one ip
// limit all requests share and one of 1,000 accounts', both far from empty
// (1,000,000/s, burst 1,000,000, as warden bench configures them), with
// token leases (the default) and without (lease.tokens 1: one exact call
// per request), beside the memory store.
func BenchmarkAdmitRowF(b *testing.B) {
	srv := redistest.Start(b)
	withLease := func(tokens int) func(b *testing.B) store.Store {
		return func(b *testing.B) store.Store {
			return openWith(b, redis.Config{Addrs: []string{srv.Addr()}, Lease: redis.LeaseConfig{Tokens: tokens}})
		}
	}
	backends := []benchBackend{
		memoryBackend(),
		{"redis-lease", withLease(0), srv},
		{"redis-exact", withLease(1), srv},
	}
	accounts := make([]string, 1000)
	for i := range accounts {
		accounts[i] = "acct:" + strconv.Itoa(i)
	}
	for _, be := range backends {
		be.run(b, be.name, func(s store.Store, pb *testing.PB) {
			rng := rand.New(rand.NewPCG(rand.Uint64(), 3))
			req := &store.AdmitRequest{
				Bans:   []store.BanKey{{Facet: "ip", Value: "127.0.0.1"}, {}},
				Limits: make([]store.LimitRequest, 2),
			}
			for pb.Next() {
				a := accounts[rng.IntN(len(accounts))]
				req.Bans[1] = store.BanKey{Facet: "account", Value: a}
				req.Limits[0] = store.LimitRequest{Key: "ip:127.0.0.1", Interval: time.Microsecond, Burst: 1000000, Cost: 1}
				req.Limits[1] = store.LimitRequest{Key: a, Interval: time.Microsecond, Burst: 1000000, Cost: 1}
				res, err := s.Admit(context.Background(), time.Now(), req)
				if err != nil {
					b.Error(err)
					return
				}
				if res.Ban != nil || len(res.Limits) != 2 {
					b.Errorf("got %+v, want two limit results", res)
					return
				}
			}
		})
	}
}
