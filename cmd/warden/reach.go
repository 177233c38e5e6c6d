package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"

	"github.com/warden-gw/warden/internal/reach"
)

// runReach: warden reach --authors ID,...|@FILE [--by account|ip] [--dose]
// [--overlap ID,...|@FILE] [--after T].
func runReach(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("reach", stderr)
	qf := addQueryFlags(fs)
	fs.String("authors", "", "the authors: ID,ID,... or @FILE (required)")
	fs.String("by", "account", "a person is an account or an ip")
	fs.Bool("dose", false, "also: people reached by at least k of the authors, for every k")
	fs.String("overlap", "", "also: compare with another set of authors (ID,... or @FILE): each, both, either")
	fs.String("after", "", "also: people served the authors' content after T (RFC 3339 or a duration back), and how many of them were new")
	approx := fs.Bool("approx", false, "an approximate answer (HyperLogLog sketches) with its error bound; reach and impressions only")
	addPrivateFlags(fs)
	pos, err := parseArgs(fs, args)
	if err != nil || len(pos) != 0 {
		return errUsage
	}
	if *approx {
		return runReachApprox(fs, qf, stdout)
	}
	return runQueryCommand(fs, qf, "reach", url.Values{}, stdout, func(w io.Writer, v any) error {
		if p, ok := v.(*reach.PrivateResult); ok {
			printPrivateReach(w, p)
			return nil
		}
		res := v.(*reach.Result)
		fmt.Fprintf(w, "reach of %d authors, by %s, %s to %s (exact)\n", res.Authors, res.By, fmtTime(res.From), fmtTime(res.To))
		tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
		fmt.Fprintln(tw, "PEOPLE\tIMPRESSIONS")
		fmt.Fprintf(tw, "%d\t%d\n", res.Reach, res.Impressions)
		tw.Flush()
		if len(res.Dose) > 0 {
			fmt.Fprintln(w, "\ndose: people reached by at least k of the authors")
			tw = tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
			fmt.Fprintln(tw, "K\tPEOPLE")
			for _, d := range res.Dose {
				fmt.Fprintf(tw, "%d\t%d\n", d.K, d.People)
			}
			tw.Flush()
		}
		if o := res.Overlap; o != nil {
			fmt.Fprintln(w, "\noverlap")
			tw = tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
			fmt.Fprintln(tw, "AUTHORS\tOTHER\tBOTH\tEITHER")
			fmt.Fprintf(tw, "%d\t%d\t%d\t%d\n", o.A, o.B, o.Both, o.Either)
			tw.Flush()
		}
		if a := res.After; a != nil {
			fmt.Fprintf(w, "\nafter %s: %d people reached (%d of them not reached before), %d impressions\n",
				fmtTime(&a.Time), a.Reach, a.New, a.Impressions)
		}
		return nil
	})
}

// printPrivateReach is a DP answer's table: every figure noisy, with its
// interval, then the guarantee and the budget.
func printPrivateReach(w io.Writer, res *reach.PrivateResult) {
	fmt.Fprintf(w, "reach of %d authors, by %s, %s to %s (differentially private: noisy, not exact)\n", res.Authors, res.By, fmtTime(res.From), fmtTime(res.To))
	tw := newTable(w)
	fmt.Fprintf(tw, "PEOPLE\t%.0f%% INTERVAL\n", 100*res.Privacy.Confidence)
	fmt.Fprintf(tw, "%d\t%s\n", res.Reach, fmtInterval(res.Interval))
	tw.Flush()
	if len(res.Dose) > 0 {
		fmt.Fprintln(w, "\ndose: people reached by at least k of the authors")
		tw = newTable(w)
		fmt.Fprintln(tw, "K\tPEOPLE\tINTERVAL")
		for _, d := range res.Dose {
			fmt.Fprintf(tw, "%d\t%d\t%s\n", d.K, d.People, fmtInterval(d.Interval))
		}
		tw.Flush()
	}
	if o := res.Overlap; o != nil {
		fmt.Fprintln(w, "\noverlap")
		tw = newTable(w)
		fmt.Fprintln(tw, "AUTHORS\tOTHER\tBOTH\tEITHER")
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\n", o.A, o.B, o.Both, o.Either)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", fmtInterval(o.Intervals["a"]), fmtInterval(o.Intervals["b"]), fmtInterval(o.Intervals["both"]), fmtInterval(o.Intervals["either"]))
		tw.Flush()
	}
	if a := res.After; a != nil {
		fmt.Fprintf(w, "\nafter %s: %d people reached %s (%d of them not reached before %s)\n",
			fmtTime(&a.Time), a.Reach, fmtInterval(a.ReachInterval), a.New, fmtInterval(a.NewInterval))
	}
	fmt.Fprintln(w, "impressions: not released with DP (one person's impressions have no bound)")
	printPrivacy(w, res.Privacy, res.Budget)
}
