package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"slices"
	"text/tabwriter"

	"github.com/warden-gw/warden/internal/ledger"
)

// runTookBy: warden ledger took-by FACET VALUE.
func runTookBy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("ledger took-by", stderr)
	qf := addQueryFlags(fs)
	pos, err := positionals(fs, args, 2, "usage: warden ledger took-by FACET VALUE [--ledger DIR] [--from T] [--to T] [--json]")
	if err != nil {
		return err
	}
	return runQueryCommand(ctx, fs, qf, "took-by", url.Values{"facet": {pos[0]}, "value": {pos[1]}}, stdout, func(w io.Writer, v any) error {
		res := v.(*ledger.TookByResult)
		fmt.Fprintf(w, "%s %s: %d accesses, %d distinct subjects, %d lists, first %s, last %s\n",
			res.Facet, res.Value, res.Accesses, res.Subjects, res.Lists, fmtTime(res.First), fmtTime(res.Last))
		var classes []string
		for c := range res.Served {
			classes = append(classes, c)
		}
		for c := range res.Masked {
			if !slices.Contains(classes, c) {
				classes = append(classes, c)
			}
		}
		slices.Sort(classes)
		tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
		fmt.Fprintln(tw, "CLASS\tSERVED\tMASKED")
		for _, c := range classes {
			fmt.Fprintf(tw, "%s\t%d\t%d\n", c, res.Served[c], res.Masked[c])
		}
		return tw.Flush()
	})
}
