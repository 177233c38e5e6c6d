//go:build unix

package gateway

import (
	"bufio"
	"io"
	"runtime"
	"syscall"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/warden-gw/warden/internal/dashboard"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/ledger"
)

// BenchmarkServeLedger is warden bench's rows (e) and (e-ledger) on the
// fast front's handler, as BenchmarkServeProvenance runs (e): e-ledger
// adds what warden serve adds with ledger.dir set: the ledger and the
// dashboard's Watch, fed through one recording. cpu-ns/op is the
// process's CPU per request, the recordings' goroutines, the ledger's
// flushes and the collector's included: the figure the rows' CPU per
// request compares, without the kernel's loopback TCP that dominates
// `warden bench`. e-nop has e-ledger's recording feed a recorder that
// does nothing: what the Access and its hand-off cost the process.
func BenchmarkServeLedger(b *testing.B) {
	b.Setenv("LAB_JWT_SECRET", "lab-secret")
	b.Setenv("LAB_PARTNER_KEY", "pk-0123456789abcdef")
	reqs := benchRequests(b, 16384, 1000, 100000)
	for _, name := range []string{"e", "e-ledger", "e-nop"} {
		b.Run(name, func(b *testing.B) {
			cfg := labBenchConfig(b)
			rowE(cfg)
			var recs []*Recording
			var l *ledger.Ledger
			switch name {
			case "e-ledger":
				var err error
				if l, err = ledger.Open(ledger.Options{Dir: b.TempDir()}); err != nil {
					b.Fatal(err)
				}
				m := NewRecordingMetrics(nil)
				recs = append(recs, NewRecording("ledger", Recorders{l, dashboard.NewWatch(0)}, 0, m))
			case "e-nop":
				m := NewRecordingMetrics(nil)
				recs = append(recs, NewRecording("ledger", nop{}, 0, m))
			}
			f, closeRec := provFront(b, cfg, recs...)
			serveMeasured(b, f, reqs, func() {
				closeRec()
				if l != nil { // its flushes are the run's CPU too
					if err := l.Close(); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// nop is a transient recorder that does nothing: e-nop is the hand-off's
// cost alone.
type nop struct{}

func (nop) Record(*inspect.Access) {}
func (nop) Transient() bool        { return true }

// capture keeps every Access it is fed.
type capture struct{ accs []*inspect.Access }

func (c *capture) Record(acc *inspect.Access) { c.accs = append(c.accs, acc) }

// labAccesses are the Accesses of n row (e) requests, as the recorders
// are fed them.
func labAccesses(b *testing.B, n int) []*inspect.Access {
	b.Setenv("LAB_JWT_SECRET", "lab-secret")
	b.Setenv("LAB_PARTNER_KEY", "pk-0123456789abcdef")
	reqs := benchRequests(b, n, 1000, 100000)
	cfg := labBenchConfig(b)
	cfg.Detect.Enabled = false
	c := &capture{}
	rc := NewRecording("capture", c, n+1, NewRecordingMetrics(nil))
	f, closeRec := provFront(b, cfg, rc)
	ctx := new(fasthttp.RequestCtx)
	sink := bufio.NewWriter(io.Discard)
	for _, r := range reqs {
		if err := serveOnce(f, ctx, r, sink); err != nil {
			b.Fatal(err)
		}
	}
	closeRec()
	return c.accs
}

// BenchmarkRecorders is what each recorder of e-ledger costs per Access
// of row (e) on its own goroutine (cpu-ns/op: its thread's CPU time, the
// collector's assists included): the ledger's Record and the dashboard's
// Watch.
func BenchmarkRecorders(b *testing.B) {
	accs := labAccesses(b, 1<<14)
	for _, c := range []struct {
		name string
		make func(b *testing.B) Recorder
	}{
		{"ledger", func(b *testing.B) Recorder {
			l, err := ledger.Open(ledger.Options{Dir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { l.Close() })
			return l
		}},
		{"watch", func(*testing.B) Recorder { return dashboard.NewWatch(0) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			r := c.make(b)
			threadCPUPerOp(b, func(i int) { r.Record(accs[i%len(accs)]) })
		})
		br, ok := c.make(b).(BatchRecorder)
		if !ok {
			continue
		}
		// As Recording.drain hands a busy queue over: drainBatch at a
		// time (an op is still one Access).
		b.Run(c.name+"-batch", func(b *testing.B) {
			threadCPUPerOp(b, func(i int) {
				if i%drainBatch == 0 {
					k := i % len(accs)
					br.RecordBatch(accs[k:min(len(accs), k+drainBatch)])
				}
			})
		})
	}
}

// threadCPUPerOp runs op(0), op(1), ... for b's loop on one thread and
// reports that thread's CPU time per op (cpu-ns/op).
func threadCPUPerOp(b *testing.B, op func(i int)) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	i := 0
	start := threadCPU()
	for b.Loop() {
		op(i)
		i++
	}
	b.ReportMetric(float64(threadCPU()-start)/float64(b.N), "cpu-ns/op")
}

var _ BatchRecorder = (*ledger.Ledger)(nil)

// threadCPU is the CPU time of the calling thread, in ns (the goroutine
// locked to it): what one core spends, whatever else the machine runs.
func threadCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1, &ru); err != nil { // RUSAGE_THREAD
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
