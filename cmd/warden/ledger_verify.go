package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"

	"github.com/warden-gw/warden/internal/ledger"
)

// runLedgerVerify: warden ledger verify. Exit status 1 when anything does
// not check.
func runLedgerVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("ledger verify", stderr)
	qf := addQueryFlags(fs)
	if _, err := positionals(fs, args, 0, "usage: warden ledger verify [--ledger DIR | --config FILE] [--json]"); err != nil {
		return err
	}
	return runQueryCommand(ctx, fs, qf, "verify", url.Values{}, stdout, func(w io.Writer, v any) error {
		res := v.(*ledger.VerifyReport)
		tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
		fmt.Fprintln(tw, "PARTITION\tSEALED\tACCESSES\tHASH\tOK")
		for _, p := range res.Partitions {
			h := "-"
			if p.Hash != "" {
				h = p.Hash[:16]
			}
			ok := "ok"
			if !p.OK {
				ok = "FAIL"
			}
			fmt.Fprintf(tw, "%s\t%v\t%d\t%s\t%s\n", p.Name, p.Sealed, p.Accesses, h, ok)
		}
		tw.Flush()
		if len(res.Rollups) > 0 {
			tw = tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
			fmt.Fprintln(tw, "ROLLUP\tPARTITIONS\tOK")
			for _, r := range res.Rollups {
				ok := "ok"
				if !r.OK {
					ok = "FAIL"
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\n", r.Day, r.Hours, ok)
			}
			tw.Flush()
		}
		for _, p := range res.Problems {
			fmt.Fprintln(w, "problem:", p)
		}
		for _, p := range res.Rebuild {
			fmt.Fprintln(w, "to rebuild:", p)
		}
		status := "ok"
		if !res.OK {
			status = "FAILED"
		}
		fmt.Fprintf(w, "%s: %d partitions (%d removed by retention), %d day rollups, %d author indexes, head %s: %s\n", res.Dir, len(res.Partitions), res.Retired, len(res.Rollups), len(res.AuthorIndexes), res.Head, status)
		return nil
	})
}
