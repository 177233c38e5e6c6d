package clickhouse

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/ledger"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSink records Accesses (the test traffic: profiles, feeds and
// lists, 2.3 records a piece) through the sink into the test server until
// all are in ClickHouse. Reported: Accesses/s of wall time, and Accesses
// per second of the gateway process's CPU (the sink's encoding and
// sending; ClickHouse's own CPU is not counted: it is another machine in
// a fleet).
func BenchmarkSink(b *testing.B) {
	s := server(b)
	cfg := config(b, s, "bench")
	cfg.BatchSize, cfg.BatchInterval = 50000, time.Second
	acc := traffic(100000)
	m := NewMetrics(nil)
	sink, err := NewSink(cfg, nil, m)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, t0 := cpuTime(), time.Now()
	for i := range b.N {
		a := *acc[i%len(acc)]
		sink.Record(&a)
	}
	if err := sink.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	cpu, wall := cpuTime()-cpu0, time.Since(t0)
	b.StopTimer()
	if n := sink.spool.len(); n != 0 {
		b.Fatalf("%d batches spooled", n)
	}
	var d dto.Metric
	m.insert.Write(&d)
	if n := d.GetHistogram().GetSampleCount(); n > 0 {
		b.ReportMetric(d.GetHistogram().GetSampleSum()/float64(n), "s/insert")
	}
	b.ReportMetric(float64(b.N)/wall.Seconds(), "accesses/s")
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "accesses/cpu-s")
	b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/access")
}

// BenchmarkEncode is the sink's encoding alone (no ClickHouse, no
// sending): the test traffic's Accesses into a batch's three tables, the
// buffers reset every 50,000 Accesses as the sink's batches are. ns/op is
// CPU per Access on one core.
func BenchmarkEncode(b *testing.B) {
	acc := traffic(100000)
	e := encoder{k0: 1, k1: 2}
	bt := &batch{id: 1}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := range b.N {
		if i%50000 == 0 {
			for t := range nTables {
				bt.rows[t] = bt.rows[t][:0]
			}
		}
		a := *acc[i%len(acc)]
		e.encode(bt, &a)
	}
	// The process's CPU: on a loaded machine ns/op (wall) is mostly
	// waiting for a core.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/access")
}

// BenchmarkFleetQueries: the fleet's questions of fleet.go against the
// test server holding 300,000 Accesses of 5,000 accounts (a few heavy,
// most light) over 20 hours, one record each of 50,000 subjects, a
// quarter of them feeds by 2,000 authors. top: the identities page's
// ranking of one facet (Top, the ten first over 24 hours); distinct10:
// what the page asked per facet before, a Distinct query for each of ten
// candidates; reached: warden audience's split, the viewers of 20
// authors. ns/op is wall time (the page waits for it; ClickHouse's CPU is
// another process's).
func BenchmarkFleetQueries(b *testing.B) {
	s := server(b)
	cfg := config(b, s, "benchfleet")
	cfg.BatchSize, cfg.BatchInterval = 50000, time.Second
	sink, err := NewSink(cfg, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	z := rand.NewZipf(r, 1.2, 1, 4999)
	end := time.Now().Add(-time.Minute)
	const n = 300000
	for i := range n {
		a := &inspect.Access{RequestID: fmt.Sprintf("f%023d", i), Time: end.Add(-time.Duration(n-i) * 20 * time.Hour / n), Status: 200,
			Route: "GET /v1/users/{id}", Classes: []string{"contact", "profile"}}
		acct := z.Uint64()
		a.Identity.Account = fmt.Sprint(acct)
		a.Identity.IP = netip.AddrFrom4([4]byte{10, byte(acct >> 8), byte(acct), 1})
		a.Records = []inspect.Record{{ID: fmt.Sprint(r.IntN(50000)), Classes: 3}}
		if i%4 == 0 {
			a.Route, a.Classes = "GET /v1/feed", []string{"post"}
			au := fmt.Sprint(r.IntN(2000))
			a.Records, a.Authors = []inspect.Record{{ID: "p" + au, Classes: 1}}, []string{au}
		}
		sink.Record(a)
	}
	if err := sink.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	c, err := NewClient(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	win := ledger.Window{From: end.Add(-24 * time.Hour), To: end}
	top, _, err := c.Top(ctx, win, identify.FacetAccount, "", 10)
	if err != nil || len(top) != 10 {
		b.Fatalf("top: %v %v", top, err)
	}
	authors := make([]string, 20)
	for i := range authors {
		authors[i] = fmt.Sprint(i * 97)
	}
	b.Run("top", func(b *testing.B) {
		for range b.N {
			if _, _, err := c.Top(ctx, win, identify.FacetAccount, "", 10); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("distinct10", func(b *testing.B) {
		for range b.N {
			for _, v := range top {
				if _, err := c.Distinct(ctx, win, identify.FacetAccount, v, ""); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("reached", func(b *testing.B) {
		people := 0
		for range b.N {
			people = 0
			if err := c.Reached(ctx, win, authors, identify.FacetAccount, func(string) { people++ }); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(people), "people")
	})
}
