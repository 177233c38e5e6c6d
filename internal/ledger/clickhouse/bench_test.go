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
}
