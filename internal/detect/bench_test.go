package detect

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/shadow"
	"github.com/warden-gw/warden/internal/store/memory"
)

// BenchmarkRecord is the recording goroutine's cost per Access: 1,000
// accounts each reading profiles under every rule's limit, on the memory
// store (counted in place).
func BenchmarkRecord(b *testing.B) { benchRecord(b, false) }

// BenchmarkRecordShared is the same with a shared store: what queueing the
// observations adds to the recording goroutine (flushes, which run on
// their own goroutine, are left out).
func BenchmarkRecordShared(b *testing.B) { benchRecord(b, true) }

func benchRecord(b *testing.B, shared bool) {
	st := memory.New(memory.Options{SweepEvery: -1})
	defer st.Close()
	cfg := Config{Enabled: true, Rules: []Rule{
		{Name: "velocity", Kind: Velocity, Limit: 1 << 20, Window: 10 * time.Second},
		{Name: "enum", Kind: Enumeration, Limit: 1 << 20, Ratio: 0.5, Window: time.Hour},
		{Name: "persist", Kind: Persistence, Limit: 1 << 20, Window: 10 * time.Second},
	}}
	var opts []Option
	if shared {
		opts = append(opts, WithShared(st), func(d *Detector) { d.fleet.manual = true })
	}
	d, err := New(cfg, nil, st, shadow.New(prometheus.NewRegistry()), nil, slog.New(slog.DiscardHandler), opts...)
	if err != nil {
		b.Fatal(err)
	}
	accs := make([]*inspect.Access, 4096)
	for i := range accs {
		accs[i] = profile(who(fmt.Sprint(i%1000), fmt.Sprintf("10.0.%d.%d", i/256%256, i%256)), t0.Add(time.Duration(i)*time.Millisecond), fmt.Sprint(100000+i))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		d.Record(accs[i%len(accs)])
		i++
		if shared && i%1024 == 0 {
			d.fleet.waiting = d.fleet.waiting[:0]
		}
	}
}
