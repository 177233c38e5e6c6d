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

// BenchmarkObserve is one detector flush: 512 observations (velocity:
// people served to 100 accounts, limit 20 in 10 s) in one Observe call.
// Redis CPU per op divided by 512 is its cost per observation.
func BenchmarkObserve(b *testing.B) { benchObserve(b, false) }

// BenchmarkObserveTally is the same with tallies (enumeration's look-ups:
// 100 accounts, window 1 h): every event counted, none dropped.
func BenchmarkObserveTally(b *testing.B) { benchObserve(b, true) }

func benchObserve(b *testing.B, tally bool) {
	srv := redistest.Start(b)
	s := open(b, []string{srv.Addr()})
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = "detect:velocity:people:account:" + strconv.Itoa(i)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	obs := make([]store.Observation, 512)
	at := time.Now()
	b.ResetTimer()
	defer redistest.ReportCPU(b, srv)()
	for b.Loop() {
		for i := range obs {
			at = at.Add(100 * time.Microsecond)
			obs[i] = store.Observation{Key: keys[rng.IntN(len(keys))], Member: rng.Uint64N(1 << 20), At: at, Window: 10 * time.Second, Limit: 20}
			if tally {
				obs[i] = store.Observation{Key: keys[rng.IntN(len(keys))], At: at, Window: time.Hour, Tally: true}
			}
		}
		if _, err := s.Observe(context.Background(), obs); err != nil {
			b.Fatal(err)
		}
	}
}
