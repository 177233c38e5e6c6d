package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/warden-gw/warden/internal/lab/ledgerbench"
)

// runBenchLedger is `warden bench ledger`: issue 21's ledger benchmark
// (bench/README.md), with ClickHouse as the comparison row when
// clickhouse-server is installed.
func runBenchLedger(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench ledger", stderr)
	n := fs.Int("accesses", 100_000_000, "Accesses to generate")
	ids := fs.Int("identities", 1_000_000, "identities (accounts, each with its ip and /24)")
	subjects := fs.Int("subjects", 1_000_000, "subjects")
	authors := fs.Int("authors", 100_000, "authors (heavy-tailed popularity)")
	days := fs.Int("days", 30, "days the Accesses span")
	dir := fs.String("dir", "", "ledger directory to write (must not exist; default: a temporary one, removed after)")
	out := fs.String("out", "", "also write the report to this file")
	ch := fs.Bool("clickhouse", true, "load the same Accesses into ClickHouse (when installed) as the comparison row")
	wl := fs.Bool("warden", true, "run the warden ledger's row (false: the ClickHouse comparison alone)")
	hp := fs.String("heapprofile", "", "write a heap profile (pprof) of the ledger's writer at its live heap's peak to this file")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return errUsage
	}
	// The generator reads 0 as its default (the 100,000,000 over
	// 30 days): a 0 or a negative typed here would start the full run.
	for _, f := range []struct {
		name string
		v    int
	}{{"accesses", *n}, {"identities", *ids}, {"subjects", *subjects}, {"authors", *authors}, {"days", *days}} {
		if f.v < 1 {
			return fmt.Errorf("bench ledger: -%s: %d is not a positive number", f.name, f.v)
		}
	}
	// The report and the heap profile are written during or after the
	// run (hours at the default size): a path that cannot take them is
	// said before it starts.
	for _, f := range []struct{ name, path string }{{"out", *out}, {"heapprofile", *hp}} {
		if f.path == "" {
			continue
		}
		if err := writableFile(f.path); err != nil {
			return fmt.Errorf("bench ledger: -%s: %w", f.name, err)
		}
	}
	d := *dir
	if d == "" {
		t, err := os.MkdirTemp("", "warden-bench-ledger-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(t)
		d = t + "/ledger"
	} else if _, err := os.Stat(d); err == nil {
		return fmt.Errorf("bench ledger: %s exists; give a new directory", d)
	}
	rep, err := ledgerbench.Run(ctx, ledgerbench.Options{Dir: d, Accesses: *n, Identities: *ids, Subjects: *subjects, Authors: *authors, Days: *days, NoClickHouse: !*ch, NoWarden: !*wl, HeapProfile: *hp}, stderr)
	if err != nil {
		return err
	}
	cmd := strings.TrimSpace("warden bench ledger " + strings.Join(args, " "))
	rep.Format(stdout, cmd)
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		rep.Format(f, cmd)
		return f.Close()
	}
	return nil
}
