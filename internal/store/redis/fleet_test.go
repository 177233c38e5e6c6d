package redis_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/store"
	"github.com/warden-gw/warden/internal/store/redis"
	"github.com/warden-gw/warden/internal/store/redis/redistest"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// pair opens two Stores on the same keys, as two gateways of a fleet.
func pair(t *testing.T, addrs []string) [2]*redis.Store {
	t.Helper()
	cfg := redis.Config{Addrs: addrs, KeyPrefix: fmt.Sprintf("fleet%d:", prefixes.Add(1))}
	cfg.SetDefaults()
	var out [2]*redis.Store
	for i := range out {
		s, err := redis.New(context.Background(), cfg, redis.Options{})
		if err != nil {
			t.Fatalf("redis.New: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		out[i] = s
	}
	return out
}

// TestFleetCounting has workers alternate between two Stores sharing one
// Redis (a harvester alternating between two gateways): every decision
// counts once, so the totals match the exact expectation.
func TestFleetCounting(t *testing.T) {
	standalone := redistest.Start(t)
	cluster := redistest.StartCluster(t)
	targets := []struct {
		name  string
		addrs []string
	}{
		{"standalone", []string{standalone.Addr()}},
		{"cluster", cluster.Addrs()},
	}
	const workers, calls = 8, 150
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			gw := pair(t, tg.addrs)
			ctx := context.Background()
			const burst, limit, pool = 300, 250, 2000
			var admitted atomic.Int64
			seen := make([]map[uint64]bool, workers)
			var wg sync.WaitGroup
			for w := range workers {
				seen[w] = map[uint64]bool{}
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(w), 11))
					for i := range calls {
						s := gw[(w+i)%2]
						// Two limits per request: a shared one and the worker's
						// own, which must never refuse.
						res, err := s.Admit(ctx, t0, &store.AdmitRequest{Limits: []store.LimitRequest{
							{Key: "harvester", Interval: time.Hour, Burst: burst, Cost: 1},
							{Key: fmt.Sprintf("worker%d", w), Interval: time.Hour, Burst: calls, Cost: 1},
						}})
						if err != nil {
							t.Errorf("admit: %v", err)
							return
						}
						if !res.Limits[1].Allowed {
							t.Errorf("worker %d call %d: own limit refused", w, i)
						}
						if res.Limits[0].Allowed {
							admitted.Add(1)
						}
						subjects := make([]uint64, 5)
						for j := range subjects {
							subjects[j] = rng.Uint64N(pool)
						}
						sp, err := s.Spend(ctx, t0, []store.SpendRequest{{Key: "harvester", Window: time.Hour, Limit: limit, Subjects: subjects}})
						if err != nil {
							t.Errorf("spend: %v", err)
							return
						}
						for j, a := range sp[0].Allowed {
							if a {
								seen[w][subjects[j]] = true
							}
						}
					}
				})
			}
			wg.Wait()
			if got := admitted.Load(); got != burst {
				t.Errorf("shared limit admitted %d of %d requests, want exactly the burst %d", got, workers*calls, burst)
			}
			union := map[uint64]bool{}
			for _, m := range seen {
				for k := range m {
					union[k] = true
				}
			}
			if len(union) != limit {
				t.Errorf("%d distinct subjects admitted through two gateways, want exactly %d", len(union), limit)
			}
			for i, s := range gw {
				res, err := s.Spend(ctx, t0, []store.SpendRequest{{Key: "harvester", Window: time.Hour, Limit: limit}})
				if err != nil || res[0].Count != limit {
					t.Errorf("gateway %d: count %+v, %v; want %d", i, res, err, limit)
				}
			}
		})
	}
}

// TestFleetSharesBansAndLinks: what one gateway writes, the other reads.
func TestFleetSharesBansAndLinks(t *testing.T) {
	srv := redistest.Start(t)
	gw := pair(t, []string{srv.Addr()})
	ctx := context.Background()
	b := store.Ban{Facet: "account", Value: "acc-9", Reason: "harvesting", By: "test", Created: t0, Until: t0.Add(time.Hour)}
	if err := gw[0].PutBan(ctx, b); err != nil {
		t.Fatalf("put ban: %v", err)
	}
	// The other gateway judges bans from its mirror, which reloads when
	// the ban's notice reaches it (doc.go, "Leases"): on loopback well
	// under a millisecond; a second is the bound asserted.
	res := untilBan(t, gw[1], b.Key(), true)
	if res.Ban.Reason != "harvesting" {
		t.Fatalf("other gateway's admit: %+v; want the ban", res)
	}
	if _, err := gw[1].RemoveBan(ctx, b.Key()); err != nil {
		t.Fatalf("remove ban: %v", err)
	}
	untilBan(t, gw[0], b.Key(), false)
	if err := gw[1].Link(ctx, t0, "acc-9", []uint64{42}, store.Search, 0, time.Hour); err != nil {
		t.Fatalf("link: %v", err)
	}
	got, err := gw[0].Linked(ctx, t0.Add(time.Minute), "acc-9", []uint64{42}, nil, nil)
	if err != nil || got[0] != store.Search {
		t.Fatalf("other gateway's linked: %v, %v; want search", got, err)
	}
}

// untilBan admits a request with key's ban on s until it is refused by the
// ban (banned) or admitted (not banned), for at most a second.
func untilBan(t *testing.T, s *redis.Store, key store.BanKey, banned bool) store.AdmitResult {
	t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		res, err := s.Admit(context.Background(), t0, &store.AdmitRequest{Bans: []store.BanKey{key}})
		if err != nil {
			t.Fatalf("admit: %v", err)
		}
		if (res.Ban != nil) == banned {
			return res
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a second: ban %+v, want banned %v", res.Ban, banned)
		}
		time.Sleep(time.Millisecond)
	}
}
