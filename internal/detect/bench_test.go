package detect

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/ration"
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

// BenchmarkRecordLab is the recording goroutine's cost per Access in
// warden bench's row (e-prov): examples/lab.yaml's detector rules, every
// one in shadow mode, 1,000 accounts reading profiles of random ids (never
// shown: unreferenced) at about 28k Accesses/s, contact served on every
// other answer (the budgets mask the rest).
func BenchmarkRecordLab(b *testing.B) {
	st := memory.New(memory.Options{SweepEvery: -1})
	defer st.Close()
	sh := ration.Shadow
	cfg := Config{Enabled: true, Exempt: ration.Exempt{Apps: []string{"partner-app"}}, Rules: []Rule{
		{Name: "contact-velocity", Kind: Velocity, Facet: "account", Limit: 20, Window: 10 * time.Second, Mode: sh},
		{Name: "contact-velocity-anonymous", Kind: Velocity, Facet: "ip", Limit: 20, Window: 10 * time.Second, Mode: sh},
		{Name: "list-fanout", Kind: Fanout, Facet: "account", Limit: 5, Window: 10 * time.Minute, Mode: sh},
		{Name: "enumeration", Kind: Enumeration, Facet: "account", Limit: 5, Ratio: 0.5, Window: time.Hour, Mode: sh},
		{Name: "persistence", Kind: Persistence, Facet: "account", Limit: 30, Window: 10 * time.Second, Mode: sh},
		{Name: "persistence-anonymous", Kind: Persistence, Facet: "ip", Limit: 30, Window: 10 * time.Second, Mode: sh},
	}}
	d, err := New(cfg, nil, st, shadow.New(prometheus.NewRegistry()), nil, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	accs := make([]*inspect.Access, 1<<16)
	for i := range accs {
		a := profile(who(fmt.Sprint(rng.IntN(1000)), "127.0.0.1"), t0, fmt.Sprint(1+rng.IntN(100000)))
		a.Unreferenced = true
		if i%2 == 1 {
			a.Records[0].Masked = 1 // contact
		}
		accs[i] = a
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		a := accs[i%len(accs)]
		a.Time = t0.Add(time.Duration(i) * 36 * time.Microsecond) // time moves on
		d.Record(a)
		i++
	}
}
