package redis_test

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/store"
	"github.com/warden-gw/warden/internal/store/redis/redistest"
)

// BenchmarkLinkedFanout: one look-up's Linked call on Redis without and
// with the per-answer cap (store.Fanout, limit 3, so most opens here are
// past it): 1000 identities, each shown 20 ids by one search answer. It
// reports the client's and Redis's CPU per call; compare off and on
// alternating single runs (-bench 'LinkedFanout/X$').
func BenchmarkLinkedFanout(b *testing.B) {
	srv := redistest.Start(b)
	for _, on := range []bool{false, true} {
		name := map[bool]string{false: "off", true: "on"}[on]
		b.Run(name, func(b *testing.B) {
			s := open(b, []string{srv.Addr()})
			defer s.Close()
			ctx, now := context.Background(), time.Now()
			keys := make([]string, 1000)
			ids := make([]uint64, 20)
			for i := range keys {
				keys[i] = "link:account:" + strconv.Itoa(i)
				for j := range ids {
					ids[j] = uint64(i*20 + j)
				}
				if err := s.Link(ctx, now, keys[i], ids, store.Search, uint32(1+i), time.Hour); err != nil {
					b.Fatal(err)
				}
			}
			b.SetParallelism(benchParallelism)
			b.ResetTimer()
			defer redistest.ReportCPU(b, srv)()
			b.RunParallel(func(pb *testing.PB) {
				rng := rand.New(rand.NewPCG(rand.Uint64(), 3))
				var fan *store.Fanout
				if on {
					fan = &store.Fanout{Limit: 3, Window: 10 * time.Minute, Provenances: 1<<store.Search | 1<<store.List}
				}
				look := make([]uint64, 1)
				for pb.Next() {
					k := rng.IntN(len(keys))
					look[0] = uint64(k*20 + rng.IntN(20))
					if _, err := s.Linked(ctx, now, keys[k], look, fan, nil); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
