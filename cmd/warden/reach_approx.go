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
// flags were refused with it already (privateQuery). Its reader is opened
// with the options src's queries use (readerOptions): the command's
// warnings on stderr, the admin API's log and count.
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
	return reach.RunApprox(dir, q, readerOptions(src)...)
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

// dirLedger is a ledger directory as answerQuery is given it: its queries
// (ledger.Dir) and the reader options they open with, for the answers
// that open their own readers of the directory (reach --approx, the admin
// API's audience): a damaged day rollup or author index they pass over is
// then said as the queries' are (WithWarnings), not silently.
type dirLedger struct {
	ledger.Source
	opts []ledger.ReaderOption
}

// localLedger is the ledger directory dir read with opts.
func localLedger(dir string, opts ...ledger.ReaderOption) dirLedger {
	return dirLedger{ledger.Dir(dir, opts...), opts}
}

// readerOptions are the reader options of src when it is a directory
// (localLedger), else none.
func readerOptions(src ledger.Source) []ledger.ReaderOption {
	if d, ok := src.(dirLedger); ok {
		return d.opts
	}
	return nil
}

// warnOn is the commands' WithWarnings: a day rollup or author index
// passed over (the hours answer, the same) is a "warning:" line naming it
// on w, the command's stderr.
func warnOn(w io.Writer) ledger.ReaderOption {
	return ledger.WithWarnings(func(err error) { fmt.Fprintf(w, "warning: %v\n", err) })
}
