package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/warden-gw/warden/internal/lab/bench"
)

// runBench runs the benchmark rows (bench/README.md) and writes
// bench/results; `warden bench proxy` is row (b)'s bare Go proxy, run as a
// child so its CPU is accounted like the other proxies'.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "proxy" {
		return runBenchProxy(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "ledger" {
		return runBenchLedger(ctx, args[1:], stdout, stderr)
	}
	fs := newFlags("bench", stderr)
	duration := fs.Duration("duration", 8*time.Second, "wrk run per row per round")
	rounds := fs.Int("rounds", 3, "rounds; rows alternate within each")
	warmup := fs.Duration("warmup", 2*time.Second, "unrecorded wrk run per row before the rounds (0: none)")
	conns := fs.Int("connections", 64, "wrk connections (and open-loop connections)")
	threads := fs.Int("threads", 2, "wrk threads")
	rows := fs.String("rows", "", "rows to run, comma-separated (a, b, b-fast, c, d, d-fast, d-std, e, e-fast, e-snap, e-ledger, e-prov, e-canary, f); empty: all")
	out := fs.String("out", "bench/results", "results directory")
	lab := fs.String("lab-config", "examples/lab.yaml", "config of row (e)")
	profiles := fs.Int("profiles", 100_000, "lab platform profiles (ids 1..N)")
	accounts := fs.Int("accounts", 1000, "accounts whose tokens the load spreads over")
	workers := fs.Int("nginx-workers", runtime.NumCPU(), "nginx worker_processes (default: one per CPU, like auto)")
	openLoop := fs.Duration("latency-duration", 10*time.Second, "open-loop run at 50% of (a)'s peak, per run (0: skip)")
	profile := fs.Bool("profile", true, "perf-profile warden rows that miss a target (profile-ROW.txt)")
	snapKeys := fs.Int("snapshot-keys", bench.DefaultSnapshotKeys, "row e-snap: keys preloaded into its state directory")
	snapEvery := fs.Duration("snapshot-interval", bench.DefaultSnapshotInterval, "row e-snap: store.memory.snapshot_interval")
	profileRows := fs.String("profile-rows", "", "rows to perf-profile whether or not they miss a target, comma-separated")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "warden bench: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	// The results are written after the rounds: a directory that cannot
	// take them is said now, not after minutes of runs.
	if err := writableDir(*out); err != nil {
		return fmt.Errorf("bench: -out: %w", err)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("own executable: %w", err)
	}
	rep, err := bench.Run(ctx, bench.Options{
		Warden: self, OutDir: *out, LabConfig: *lab, Rows: strings.FieldsFunc(*rows, func(r rune) bool { return r == ',' }),
		Rounds: *rounds, Duration: *duration, Warmup: *warmup, Threads: *threads, Connections: *conns,
		Profiles: *profiles, Accounts: *accounts, NginxWorkers: *workers, OpenLoop: *openLoop, Profile: *profile,
		SnapshotKeys: *snapKeys, SnapshotInterval: *snapEvery,
		ProfileRows: strings.FieldsFunc(*profileRows, func(r rune) bool { return r == ',' }),
		Command:     strings.TrimSpace("warden bench " + strings.Join(args, " ")), Log: stderr,
	})
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, rep.Markdown())
	return nil
}

func runBenchProxy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench proxy", stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	upstream := fs.String("upstream", "", "upstream URL (http://host:port)")
	front := fs.String("front", "std", "std: httputil.ReverseProxy (row b); fast: fasthttp (row b-fast)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *front != "std" && *front != "fast" {
		fmt.Fprintf(stderr, "warden bench proxy: --front %q: want std or fast\n", *front)
		return errUsage
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	fmt.Fprintf(stdout, "bench-proxy listening on %s (upstream %s)\n", ln.Addr(), *upstream)
	if *front == "fast" {
		return bench.ServeFastProxy(ctx, ln, *upstream)
	}
	return bench.ServeProxy(ctx, ln, *upstream)
}

// writableDir makes dir (as the results' writer would) and checks that it
// takes a new file.
func writableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return takesFile(dir)
}

// writableFile checks that path can be written, changing nothing: a file
// that exists opens for writing (not truncated), else its directory takes
// a new file.
func writableFile(path string) error {
	if info, err := os.Stat(path); err == nil {
		if info.IsDir() {
			return fmt.Errorf("%s is a directory", path)
		}
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		return f.Close()
	}
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); err != nil {
		return err // stat DIR: no such file or directory
	}
	return takesFile(dir)
}

// takesFile checks that dir takes a new file, leaving none.
func takesFile(dir string) error {
	f, err := os.CreateTemp(dir, ".warden-write-check-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}
