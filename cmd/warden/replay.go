package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/ledger/clickhouse"
	"github.com/warden-gw/warden/internal/replay"
)

const replayLimits = `
The replay starts with empty counts at --from and decides each Access at
its own time. It cannot see what the ledger does not hold:
  - requests on routes the route map does not inspect leave no Access, so a
    rate limit counting them sees fewer requests than it would live;
  - an answer refused before the upstream answered, or blocked by a budget,
    has no records: one the new config would let through is reported as no
    longer refused, but its records are not counted by any budget
    (Accesses blocked by a budget of the new config are not replayed);
  - banned requests are left out (bans are not configuration);
  - account age (account_age tiers replay at the budget's limit), scopes
    (taken as the gateway decided them) and whether a look-up's id had
    been shown (the gateway's verdict) are not decided again;
  - an Access the recorder dropped (warden_recorder_dropped_total) is
    missing.
The JSON's "caveats" name those that apply to the new config's rules.`

// runReplay: warden replay --config NEW.yaml [--ledger DIR] [--from T] [--to T] [--json].
func runReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("replay", stderr)
	cfgPath := fs.String("config", "", "the new config whose limits and budgets are replayed (required)")
	dir := fs.String("ledger", "", "ledger directory (default: ledger.dir of --config)")
	from := fs.String("from", "", "start of the window: RFC 3339, or a duration back from now (90m, 24h, 7d)")
	to := fs.String("to", "", "end of the window, as --from (default: now)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: warden replay --config NEW.yaml [--ledger DIR] [--from T] [--to T] [--json]\n\n"+
			"Replays a window of the ledger through NEW.yaml's rate limits and budgets and reports who\n"+
			"would have been refused or masked that was not, and the reverse.")
		fs.PrintDefaults()
		fmt.Fprintln(stderr, replayLimits)
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return errUsage
	}
	if len(pos) != 0 || *cfgPath == "" {
		fs.Usage()
		return errUsage
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	if *dir == "" {
		if *dir = cfg.Ledger.Dir; *dir == "" {
			return fmt.Errorf("no ledger: %s sets no ledger.dir; give --ledger DIR", *cfgPath)
		}
		if err := configLedger(*cfgPath, *dir); err != nil {
			return err
		}
	}
	win, err := queryWindow(url.Values{"from": {*from}, "to": {*to}}, time.Now())
	if err != nil {
		return err
	}
	// A damaged day rollup is passed over (the hours hold the Accesses),
	// and said on stderr as the ledger's queries do.
	rep, err := replay.Run(ctx, *dir, win, cfg, warnOn(stderr))
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, rep)
	}
	return replayTable(stdout, rep)
}

// apiReplay is the admin API's replay: the new config is the POSTed body
// (YAML, as a file for warden replay --config), replayed over the
// gateway's own ledger directory.
func apiReplay(ctx context.Context, src ledger.Source, dir string, win ledger.Window, body string) (*replay.Report, error) {
	if strings.TrimSpace(body) == "" {
		return nil, badQuery("replay: POST the new config's YAML as the body")
	}
	if _, ok := src.(*clickhouse.Client); ok || dir == "" {
		return nil, badQuery("replay: reads the gateway's local ledger directory (ledger.dir)")
	}
	cfg, err := config.Parse("body", []byte(body))
	if err != nil {
		return nil, badQuery("%v", err)
	}
	return replay.Run(ctx, dir, win, cfg, readerOptions(src)...) // the queries' warnings and cache
}

func replayTable(w io.Writer, rep *replay.Report) error {
	fmt.Fprintf(w, "window %s .. %s: %d accesses, %d replayed", fmtTime(rep.Window.From), fmtTime(rep.Window.To), rep.Accesses, rep.Replayed)
	for _, reason := range replay.Reasons {
		if n := rep.NotReplayed[reason]; n > 0 {
			fmt.Fprintf(w, ", %d not (%s)", n, reason)
		}
	}
	fmt.Fprintln(w)
	if !rep.Changed() {
		fmt.Fprintln(w, "no change: nobody would be refused or masked otherwise than they were")
	} else {
		tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
		fmt.Fprintln(tw, "CHANGE\tRULE\tFACET\tVALUE\tANSWERS\tRECORDS")
		for _, l := range []struct {
			name string
			rows []replay.Row
		}{{"newly refused", rep.NewlyRefused}, {"no longer refused", rep.NoLongerRefused},
			{"newly masked", rep.NewlyMasked}, {"no longer masked", rep.NoLongerMasked}} {
			for _, r := range l.rows {
				recs := "-"
				if r.Records > 0 {
					recs = fmt.Sprint(r.Records)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", l.name, r.Rule, r.Facet, r.Value, r.Count, recs)
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, c := range rep.Caveats {
		fmt.Fprintln(w, "caveat:", c)
	}
	return nil
}
