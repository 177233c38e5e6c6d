//go:build unix

package gateway

import (
	"context"
	"log/slog"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/detect"
	"github.com/warden-gw/warden/internal/ration"
	"github.com/warden-gw/warden/internal/shadow"
	"github.com/warden-gw/warden/internal/store/memory"
)

// BenchmarkServeProvenance is warden bench's rows (e) and (e-prov) on the
// fast front's handler, as BenchmarkServe runs it (no kernel, a canned
// upstream): e is examples/lab.yaml without the detector and the budgets
// naming provenances, e-prov with them, every detector rule in shadow mode
// and the detector fed through its recording as warden serve feeds it.
// ns/op is the request path alone; cpu-ns/op is the process's CPU per
// request, the recording goroutine's and the collector's included: on a
// 2-core machine that is what the rows' CPU per request compares.
func BenchmarkServeProvenance(b *testing.B) {
	b.Setenv("LAB_JWT_SECRET", "lab-secret")
	b.Setenv("LAB_PARTNER_KEY", "pk-0123456789abcdef")
	reqs := benchRequests(b, 16384, 1000, 100000)
	for _, prov := range []bool{false, true} {
		name := map[bool]string{false: "e", true: "e-prov"}[prov]
		b.Run(name, func(b *testing.B) {
			cfg := labBenchConfig(b)
			if prov {
				for i := range cfg.Detect.Rules {
					cfg.Detect.Rules[i].Mode = ration.Shadow
				}
			} else {
				rowE(cfg)
			}
			f, closeRec := provFront(b, cfg)
			serveMeasured(b, f, reqs, closeRec)
		})
	}
}

// provFront is benchFront with the detector of cfg (when enabled) and
// extra fed through recordings; the function returned drains them.
func provFront(b *testing.B, cfg *config.Config, extra ...*Recording) (*fastFront, func()) {
	b.Helper()
	cfg.Upstream.URL = "http://platform.test"
	cfg.Log.Level = "warn"
	cfg.Front = config.FrontFast
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	st := memory.New(memory.Options{SweepEvery: -1})
	b.Cleanup(func() { st.Close() })
	m, err := NewMetrics(reg)
	if err != nil {
		b.Fatal(err)
	}
	rm := ration.NewMetrics(nil)
	var recs []*Recording
	if cfg.Detect.Enabled {
		d, err := detect.New(cfg.Detect, nil, st, shadow.New(reg), nil, log)
		if err != nil {
			b.Fatal(err)
		}
		recs = append(recs, NewRecording("detect", d, 0, NewRecordingMetrics(nil)))
	}
	recs = append(recs, extra...)
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	p, err := NewPipeline(ctx, cfg, Deps{Store: st, Ration: rm, Metrics: m, Logger: log, Recordings: recs})
	if err != nil {
		b.Fatal(err)
	}
	g, err := New(cfg, p, m, log)
	if err != nil {
		b.Fatal(err)
	}
	f, ok := g.front.(*fastFront)
	if !ok {
		b.Fatalf("front %s, want fast", g.Front())
	}
	f.client.Dial = func(string) (net.Conn, error) { return &cannedConn{}, nil }
	return f, func() {
		for _, rc := range recs {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := rc.Close(ctx); err != nil {
				b.Errorf("recording not drained: %v", err)
			}
			cancel()
		}
	}
}

// cpuNow is the process's user and system CPU time so far, in ns.
func cpuNow() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
