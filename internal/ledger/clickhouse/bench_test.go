package clickhouse

import (
	"context"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
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
