package main

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"time"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/reach"
)

// runReachApprox answers warden reach --approx: the reach estimated from
// HyperLogLog sketches with its error bound (reach.RunApprox), from the
// local ledger directory. The admin API does not answer it.
func runReachApprox(fs *flag.FlagSet, qf *queryFlags, stdout io.Writer) error {
	v := url.Values{}
	setFlags(fs, v, "ledger", "clickhouse", "config", "json")
	if v.Get("clickhouse") != "" {
		return badQuery("approx: reads the local ledger's index; leave out --clickhouse (ClickHouse answers exactly: uniqExact)")
	}
	for _, k := range []string{"dp-epsilon", "dp-rho", "researcher"} {
		if v.Get(k) != "" {
			return badQuery("approx: a DP answer is drawn from the exact count; leave out --approx")
		}
	}
	_, dir, _, err := qf.target(fs)
	if err != nil {
		return err
	}
	if dir == "" {
		return badQuery("approx: reads a local ledger directory; give --ledger DIR")
	}
	win, err := queryWindow(v, time.Now())
	if err != nil {
		return err
	}
	authors, err := idList(v.Get("authors"))
	if err != nil {
		return err
	}
	if len(authors) == 0 {
		return badQuery("authors: give ID,ID,... or @FILE")
	}
	q := reach.Query{Authors: authors, Window: win, Dose: v.Get("dose") == "true"}
	if q.By, err = queryFacet(v, "by", identify.FacetAccount, identify.FacetAccount, identify.FacetIP); err != nil {
		return err
	}
	if v.Get("overlap") != "" || v.Get("after") != "" {
		return badQuery("approx: answers reach and impressions only (not --overlap or --after)")
	}
	res, err := reach.RunApprox(dir, q)
	if err != nil {
		return err
	}
	if *qf.json {
		return printJSON(stdout, res)
	}
	b := res.ErrorBound
	fmt.Fprintf(stdout, "reach of %d authors, by %s, %s to %s (approximate: %s)\n", res.Authors, res.By, fmtTime(&win.From), fmtTime(&win.To), res.Sketch)
	tw := newTable(stdout)
	fmt.Fprintf(tw, "PEOPLE (ESTIMATE)\t%.0f%% BOUND\tRELATIVE STD ERROR\tIMPRESSIONS (EXACT)\n", 100*b.Confidence)
	fmt.Fprintf(tw, "%d\t[%d, %d]\t%.2f%%\t%d\n", res.Reach, b.Low, b.High, 100*b.RelativeStandardError, res.Impressions)
	return tw.Flush()
}
