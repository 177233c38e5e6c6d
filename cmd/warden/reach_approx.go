package main

import (
	"fmt"
	"io"

	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/ledger/clickhouse"
	"github.com/warden-gw/warden/internal/reach"
)

// answerApprox answers reach's approx=true: the reach estimated from
// HyperLogLog sketches with its error bound (reach.RunApprox), from the
// local ledger directory, for the command and the admin API alike. DP
// flags were refused with it already (privateQuery).
func answerApprox(src ledger.Source, dir string, q reach.Query) (*reach.ApproxResult, error) {
	if _, ok := src.(*clickhouse.Client); ok {
		return nil, badQuery("approx: reads the local ledger's index; leave out --clickhouse (ClickHouse answers exactly: uniqExact)")
	}
	if dir == "" {
		return nil, badQuery("approx: reads a local ledger directory; give --ledger DIR")
	}
	if q.Dose || q.Overlap != nil || !q.After.IsZero() {
		return nil, badQuery("approx: answers reach and impressions only (not dose, overlap or after)")
	}
	return reach.RunApprox(dir, q)
}

// printApprox is an approximate answer's table.
func printApprox(w io.Writer, res *reach.ApproxResult) error {
	b := res.ErrorBound
	fmt.Fprintf(w, "reach of %d authors, by %s, %s to %s (approximate: %s)\n", res.Authors, res.By, fmtTime(res.From), fmtTime(res.To), res.Sketch)
	tw := newTable(w)
	fmt.Fprintf(tw, "PEOPLE (ESTIMATE)\t%.0f%% BOUND\tRELATIVE STD ERROR\tIMPRESSIONS (EXACT)\n", 100*b.Confidence)
	fmt.Fprintf(tw, "%d\t[%d, %d]\t%.2f%%\t%d\n", res.Reach, b.Low, b.High, 100*b.RelativeStandardError, res.Impressions)
	return tw.Flush()
}
