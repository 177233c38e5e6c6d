package redis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"

	"github.com/warden-gw/warden/internal/store/redis/redistest"
)

// BenchmarkClient runs the admit script (two limits) through each client at
// several levels of concurrency, to choose the client. See
// bench/results/redis-client.txt.
func BenchmarkClient(b *testing.B) {
	srv := redistest.Start(b)
	ctx := context.Background()
	args := func(rng *rand.Rand) ([]string, []string) {
		now := strconv.FormatInt(time.Now().UnixMicro(), 10)
		return []string{"bench{l:a" + strconv.Itoa(rng.IntN(10000)) + "}", "bench{l:b" + strconv.Itoa(rng.IntN(10000)) + "}"},
			[]string{now, "0", "1000", "1000000000", "1", "1000000", "1000", "1000000000", "1", "1000000"}
	}
	for _, par := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("rueidis/par=%d", par), func(b *testing.B) {
			c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{srv.Addr()}, ForceSingleClient: true, DisableCache: true, DisableRetry: true})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			sc := rueidis.NewLuaScript(admitScript.src)
			b.SetParallelism(par)
			b.ResetTimer()
			defer redistest.ReportCPU(b, srv)()
			b.RunParallel(func(pb *testing.PB) {
				rng := rand.New(rand.NewPCG(rand.Uint64(), 1))
				for pb.Next() {
					k, a := args(rng)
					if err := sc.Exec(ctx, c, k, a).Error(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		b.Run(fmt.Sprintf("go-redis/par=%d", par), func(b *testing.B) {
			c := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), MaxRetries: -1})
			defer c.Close()
			sc := goredis.NewScript(admitScript.src)
			b.SetParallelism(par)
			b.ResetTimer()
			defer redistest.ReportCPU(b, srv)()
			b.RunParallel(func(pb *testing.PB) {
				rng := rand.New(rand.NewPCG(rand.Uint64(), 1))
				for pb.Next() {
					k, a := args(rng)
					ia := make([]any, len(a))
					for i := range a {
						ia[i] = a[i]
					}
					if err := sc.Run(ctx, c, k, ia...).Err(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
