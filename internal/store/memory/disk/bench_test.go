package disk

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/detect"
	"github.com/warden-gw/warden/internal/shadow"
	"github.com/warden-gw/warden/internal/store"
	"github.com/warden-gw/warden/internal/store/memory"
)

// The 2,000,000 keys of the benchmarks: 1,600,000 rate limits, 300,000
// budgets of 1-8 subjects, 100,000 link filters of 10 ids (a gateway
// in front of many addresses and accounts, few of them heavy).
const (
	benchLimits  = 1_600_000
	benchBudgets = 300_000
	benchLinks   = 100_000
)

var (
	bench2MOnce sync.Once
	bench2M     *memory.Store
)

// store2M fills a store with the benchmarks' 2,000,000 keys at t0.
func store2M(b *testing.B) *memory.Store {
	bench2MOnce.Do(func() {
		st := memory.New(memory.Options{SweepEvery: -1})
		ctx := context.Background()
		req := &store.AdmitRequest{Limits: make([]store.LimitRequest, 1)}
		for i := range benchLimits {
			req.Limits[0] = store.LimitRequest{Key: fmt.Sprintf("rl:per-ip:10.%d.%d.%d", i>>16, i>>8&255, i&255), Interval: time.Second, Burst: 10, Cost: 1}
			st.Admit(ctx, t0, req)
		}
		for i := range benchBudgets {
			st.Spend(ctx, t0, []store.SpendRequest{{Key: fmt.Sprintf("bd:contact:acct:%d", i), Window: 24 * time.Hour, Limit: 200, Subjects: seq(i, 1+i%8)}})
		}
		for i := range benchLinks {
			st.Link(ctx, t0, fmt.Sprintf("ln:acct:%d", i), seq(i, 10), store.Social, 0, 24*time.Hour)
		}
		bench2M = st
	})
	if got := bench2M.Stats().Keys; got != benchLimits+benchBudgets+benchLinks {
		b.Fatalf("store holds %d keys, want 2,000,000", got)
	}
	return bench2M
}

// BenchmarkSnapshot2M is one snapshot of 2,000,000 keys to a file: copy per
// shard, encode, write, fsync, rename. Target: under 1 s of wall time.
func BenchmarkSnapshot2M(b *testing.B) {
	st := store2M(b)
	path := filepath.Join(b.TempDir(), SnapshotFile)
	var info snapInfo
	b.ResetTimer()
	for b.Loop() {
		var err error
		if info, err = snapshotFile(path, st, nil, t0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(info.bytes)/1e6, "MB")
	b.ReportMetric(float64(info.limits+info.budgets+info.links), "keys")
}

// BenchmarkRestore2M opens a directory holding a snapshot of 2,000,000
// keys and restores it into a new store (checking the file whole first,
// then loading it). Target: under 3 s.
func BenchmarkRestore2M(b *testing.B) {
	src := store2M(b)
	dir := b.TempDir()
	if _, err := snapshotFile(filepath.Join(dir, SnapshotFile), src, nil, t0); err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	now := func() time.Time { return t0.Add(time.Millisecond) } // before the limits (1 s) expire
	var sum Summary
	b.ResetTimer()
	for b.Loop() {
		d, err := Open(Options{Dir: dir, Logger: log, Now: now})
		if err != nil {
			b.Fatal(err)
		}
		st := memory.New(memory.Options{SweepEvery: -1, HashKey: d.HashKey()})
		if sum, err = d.Restore(context.Background(), st); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		d.Close(context.Background(), nil)
		b.StartTimer()
	}
	r := sum.Restored
	if r.Limits+r.Budgets+r.Links != benchLimits+benchBudgets+benchLinks {
		b.Fatalf("restored %+v", r)
	}
	b.ReportMetric(float64(r.Limits+r.Budgets+r.Links), "keys")
}

// BenchmarkAdmitDuringSnapshot is Admit on the 2,000,000-key store while
// snapshots run back to back beside it (b.N admits; compare with
// BenchmarkAdmitIdle2M): what a request waits for one shard's copy.
func BenchmarkAdmitDuringSnapshot(b *testing.B) {
	st := store2M(b)
	dir := b.TempDir()
	stop := make(chan struct{})
	done := make(chan int)
	go func() {
		n := 0
		for {
			select {
			case <-stop:
				done <- n
				return
			default:
			}
			snapshotFile(filepath.Join(dir, SnapshotFile), st, nil, t0)
			n++
		}
	}()
	admitLoop(b, st)
	close(stop)
	b.ReportMetric(float64(<-done), "snapshots")
}

// BenchmarkAdmitIdle2M is BenchmarkAdmitDuringSnapshot without snapshots.
func BenchmarkAdmitIdle2M(b *testing.B) { admitLoop(b, store2M(b)) }

func admitLoop(b *testing.B, st *memory.Store) {
	keys := make([]string, 4096)
	for i := range keys {
		keys[i] = fmt.Sprintf("rl:per-ip:10.%d.%d.%d", i>>16, i>>8&255, i&255)
	}
	req := &store.AdmitRequest{Limits: make([]store.LimitRequest, 1)}
	ctx := context.Background()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		req.Limits[0] = store.LimitRequest{Key: keys[i&4095], Interval: time.Nanosecond, Burst: 10, Cost: 1}
		st.Admit(ctx, t0, req)
		i++
	}
}

// BenchmarkDetectState is the detector's share of a snapshot at its
// bound: max_tracked (100,000) accounts, each with a velocity window of 20
// people (limit 20), an enumeration window of 5 never-shown ids with its
// tallies (limit 5) and a ban history. Reported: ExportDetect's wall time
// (export-ns; the detector's lock is taken for 1,024 tracks at a time
// within it), and the bytes it adds to the file.
func BenchmarkDetectState(b *testing.B) {
	st := memory.New(memory.Options{SweepEvery: -1, Shards: 1})
	defer st.Close()
	d, err := detect.New(detect.Config{Enabled: true, Rules: []detect.Rule{
		{Name: "contact-velocity", Kind: detect.Velocity, Limit: 20, Window: 10 * time.Second},
		{Name: "enumeration", Kind: detect.Enumeration, Limit: 5, Ratio: 0.5, Window: time.Hour},
	}}, nil, st, shadow.New(prometheus.NewRegistry()), nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	ns := t0.UnixNano()
	var full store.DetectState
	for i := range 100_000 {
		w := store.DetectWindow{Rule: "contact-velocity"}
		for j := range 20 {
			w.Keys, w.At = append(w.Keys, uint64(i*100+j)), append(w.At, ns-int64(20-j))
		}
		e := store.DetectWindow{Rule: "enumeration", Tally: true, Width: store.TallyWidth(time.Hour), Last: store.TallyBucket(ns, store.TallyWidth(time.Hour))}
		for j := range 5 {
			e.Keys, e.At = append(e.Keys, uint64(i*100+50+j)), append(e.At, ns-int64(5-j))
		}
		e.All[0], e.Unreferenced[0] = 9, 5
		v := fmt.Sprint(1_000_000 + i)
		full.Tracks = append(full.Tracks, store.DetectTrack{Facet: "account", Value: v, Windows: []store.DetectWindow{w, e}})
		full.Offences = append(full.Offences, store.DetectOffence{Facet: "account", Value: v, N: 1, Until: ns, Seen: ns, Banned: ns})
	}
	if p := d.Restore(t0, &full); p.Tracks != 100_000 || p.Offences != 100_000 {
		b.Fatalf("restored %+v", p)
	}
	var out store.DetectState
	var buf bytes.Buffer
	var exportNs, size int64
	for b.Loop() {
		begin := time.Now()
		d.ExportDetect(t0, &out)
		exportNs += time.Since(begin).Nanoseconds()
		buf.Reset()
		if _, err := writeSnapshot(&buf, st, &out, t0); err != nil {
			b.Fatal(err)
		}
		size = int64(buf.Len())
	}
	b.ReportMetric(float64(exportNs)/float64(b.N), "export-ns")
	b.ReportMetric(float64(size), "bytes")
}
