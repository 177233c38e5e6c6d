package main

import (
	"context"
	"fmt"
	"io"
	"net/url"

	"github.com/warden-gw/warden/internal/reach"
)

// runReach: warden reach --authors ID,...|@FILE [--by account|ip] [--dose]
// [--overlap ID,...|@FILE] [--after T].
func runReach(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("reach", stderr)
	qf := addQueryFlags(fs)
	fs.String("authors", "", "the authors: ID,ID,... or @FILE (required)")
	fs.String("by", "account", "a person is an account or an ip")
	fs.Bool("dose", false, "also: people reached by at least k of the authors, for every k")
	fs.String("overlap", "", "also: compare with another set of authors (ID,... or @FILE): each, both, either")
	fs.String("after", "", "also: people served the authors' content after T (RFC 3339 or a duration back), and how many of them were new")
	fs.Bool("approx", false, "an approximate answer (HyperLogLog sketches) with its error bound; reach and impressions only")
	addPrivateFlags(fs)
	if _, err := positionals(fs, args, 0, "usage: warden reach --authors ID,...|@FILE [--by account|ip] [--dose] [--overlap ID,...|@FILE] [--after T] [--approx]\n"+
		"                    [--dp-epsilon E|--dp-rho R --researcher NAME] [--ledger DIR|--clickhouse ADDR] [--config FILE] [--from T] [--to T] [--json]"); err != nil {
		return err
	}
	if err := requireFlags(fs, "authors"); err != nil {
		return err
	}
	return runQueryCommand(ctx, fs, qf, "reach", url.Values{}, stdout, func(w io.Writer, v any) error {
		switch r := v.(type) {
		case *reach.PrivateResult:
			printPrivateReach(w, r)
		case *reach.ApproxResult:
			return printApprox(w, r)
		default:
			printReach(w, v.(*reach.Result))
		}
		return nil
	})
}

// reachDose, reachOverlap head reach's dose and overlap tables.
const (
	reachDose    = "people reached by at least k of the authors"
	reachOverlap = "overlap"
)

// printReach is an exact answer's table.
func printReach(w io.Writer, res *reach.Result) {
	fmt.Fprintf(w, "reach of %d authors, by %s, %s to %s (exact)\n", res.Authors, res.By, fmtTime(res.From), fmtTime(res.To))
	tw := newTable(w)
	fmt.Fprintln(tw, "PEOPLE\tIMPRESSIONS")
	fmt.Fprintf(tw, "%d\t%d\n", res.Reach, res.Impressions)
	tw.Flush()
	printDose(w, reachDose, res.Dose)
	printOverlap(w, reachOverlap, "AUTHORS", res.Overlap)
	if a := res.After; a != nil {
		fmt.Fprintf(w, "\nafter %s: %d people reached (%d of them not reached before), %d impressions\n",
			fmtTime(&a.Time), a.Reach, a.New, a.Impressions)
	}
}

// printPrivateReach is a DP answer's table: every figure noisy, with its
// interval, then the guarantee and the budget.
func printPrivateReach(w io.Writer, res *reach.PrivateResult) {
	fmt.Fprintf(w, "reach of %d authors, by %s, %s to %s (differentially private: noisy, not exact)\n", res.Authors, res.By, fmtTime(res.From), fmtTime(res.To))
	tw := newTable(w)
	fmt.Fprintf(tw, "PEOPLE\t%.0f%% INTERVAL\n", 100*res.Privacy.Confidence)
	fmt.Fprintf(tw, "%d\t%s\n", res.Reach, fmtInterval(res.Interval))
	tw.Flush()
	printPrivateDose(w, reachDose, res.Dose)
	printPrivateOverlap(w, reachOverlap, "AUTHORS", res.Overlap)
	if a := res.After; a != nil {
		fmt.Fprintf(w, "\nafter %s: %d people reached %s (%d of them not reached before %s)\n",
			fmtTime(&a.Time), a.Reach, fmtInterval(a.ReachInterval), a.New, fmtInterval(a.NewInterval))
	}
	fmt.Fprintln(w, "impressions: not released with DP (one person's impressions have no bound)")
	printPrivacy(w, res.Privacy, res.Budget)
}

// printDose writes the dose table of a reach or audience answer, headed
// "dose: " and title; nothing when no dose was asked (nil).
func printDose(w io.Writer, title string, dose []reach.Dose) {
	if dose == nil {
		return
	}
	// Rows past the last k anyone was reached by are all 0 (JSON lists
	// them): one row says so, not a line per author of a large set.
	last := len(dose)
	for last > 1 && dose[last-1].People == 0 && dose[last-2].People == 0 {
		last--
	}
	lines := []string{"K\tPEOPLE"}
	for _, d := range dose[:last] {
		lines = append(lines, fmt.Sprintf("%d\t%d", d.K, d.People))
	}
	if last < len(dose) {
		lines[len(lines)-1] = fmt.Sprintf("%d-%d\t0", dose[last-1].K, dose[len(dose)-1].K)
	}
	printSetTable(w, "dose: "+title, lines...)
}

// printPrivateDose is printDose of a DP answer: each row with its interval.
func printPrivateDose(w io.Writer, title string, dose []reach.PrivateDose) {
	if len(dose) == 0 {
		return
	}
	lines := []string{"K\tPEOPLE\tINTERVAL"}
	for _, d := range dose {
		lines = append(lines, fmt.Sprintf("%d\t%d\t%s", d.K, d.People, fmtInterval(d.Interval)))
	}
	printSetTable(w, "dose: "+title, lines...)
}

// printOverlap writes the overlap table of a reach or audience answer,
// headed title, its first column named set; nothing without an overlap.
func printOverlap(w io.Writer, title, set string, o *reach.Overlap) {
	if o != nil {
		printSetTable(w, title, set+"\tOTHER\tBOTH\tEITHER", fmt.Sprintf("%d\t%d\t%d\t%d", o.A, o.B, o.Both, o.Either))
	}
}

// printPrivateOverlap is printOverlap of a DP answer: the intervals in a
// second row.
func printPrivateOverlap(w io.Writer, title, set string, o *reach.PrivateOverlap) {
	if o != nil {
		iv := o.Intervals
		printSetTable(w, title, set+"\tOTHER\tBOTH\tEITHER", fmt.Sprintf("%d\t%d\t%d\t%d", o.A, o.B, o.Both, o.Either),
			fmtInterval(iv["a"])+"\t"+fmtInterval(iv["b"])+"\t"+fmtInterval(iv["both"])+"\t"+fmtInterval(iv["either"]))
	}
}

// printSetTable writes one of the tables reach and audience answers
// share: a blank line, the title, then the lines (tab-separated) aligned.
func printSetTable(w io.Writer, title string, lines ...string) {
	fmt.Fprintln(w, "\n"+title)
	tw := newTable(w)
	for _, l := range lines {
		fmt.Fprintln(tw, l)
	}
	tw.Flush()
}
