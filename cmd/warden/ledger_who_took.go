package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"

	"github.com/warden-gw/warden/internal/ledger"
)

// runWhoTook: warden ledger who-took SUBJECT [--class C] [--by FACET].
func runWhoTook(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("ledger who-took", stderr)
	qf := addQueryFlags(fs)
	fs.String("class", "", "only identities served this class unmasked")
	fs.String("by", "account", "identify takers by app, account, ip, net or fingerprint")
	pos, err := positionals(fs, args, 1, "usage: warden ledger who-took SUBJECT [--class C] [--by FACET] [--ledger DIR] [--from T] [--to T] [--json]")
	if err != nil {
		return err
	}
	return runQueryCommand(ctx, fs, qf, "who-took", url.Values{"subject": {pos[0]}}, stdout, func(w io.Writer, v any) error {
		res := v.(*ledger.WhoTookResult)
		what := "any record"
		if res.Class != "" {
			what = "class " + res.Class + " unmasked"
		}
		fmt.Fprintf(w, "subject %s (%s), by %s: %d identities\n", res.Subject, what, res.By, len(res.Rows))
		tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
		fmt.Fprintln(tw, strings.ToUpper(res.By)+"\tCLASSES\tCOUNT\tFIRST\tLAST")
		for _, r := range res.Rows {
			val := r.Value
			if val == "" {
				val = "(none)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", val, strings.Join(r.Classes, ","), r.Count, fmtTime(&r.First), fmtTime(&r.Last))
		}
		return tw.Flush()
	})
}
