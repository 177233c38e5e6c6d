package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/warden-gw/warden/internal/canary"
	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/trace"
)

// runTrace: warden trace PATH...|- [--ledger DIR | --clickhouse ADDR]
// [--json] [--config FILE] [--false-accusation P]; warden trace --served
// FACET VALUE.
func runTrace(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("trace", stderr)
	ledgerDir := fs.String("ledger", "", "the access ledger's directory (default: ledger.dir of --config)")
	chAddr := fs.String("clickhouse", "", "read the ledger in ClickHouse at ADDR (database, user and password from ledger.clickhouse of --config); \"config\": ledger.clickhouse as it is (the default with ledger.backend clickhouse)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	cfgFile := fs.String("config", "", "config whose canary section (and ledger.dir) the gateway ran with (default: the canary defaults, key from WARDEN_CANARY_KEY)")
	eps := fs.Float64("false-accusation", trace.DefaultFalseAccusation, "bound on the chance of accusing anyone who did not take the copy")
	served := fs.String("served", "", "list the canaries an identity was served: --served FACET VALUE")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "reader goroutines")
	namedMin := fs.Int("named-min", trace.DefaultNamedMin, "name every identity served at least this many of the copy's subjects")
	pos, err := parseArgs(fs, args)
	if err == nil {
		// Say what is wrong before the usage: a bare exit 2 leaves a
		// stranger guessing which of the values was refused.
		switch {
		case !(*eps > 0 && *eps < 1):
			fmt.Fprintf(stderr, "warden trace: --false-accusation %g: the probability must be above 0 and below 1\n", *eps)
		case *namedMin < 1:
			fmt.Fprintf(stderr, "warden trace: --named-min %d: at least 1\n", *namedMin)
		case *served != "" && len(pos) != 1:
			fmt.Fprintf(stderr, "warden trace: --served %s takes one VALUE after the facet, got %d\n", *served, len(pos))
		case *workers < 1:
			fmt.Fprintf(stderr, "warden trace: --workers %d: at least 1\n", *workers)
		case *served == "" && len(pos) == 0:
			fmt.Fprintln(stderr, "warden trace: no copy to read: give its PATH, or - for standard input")
		}
	}
	if err != nil || (*served == "" && len(pos) == 0) || (*served != "" && len(pos) != 1) || !(*eps > 0 && *eps < 1) || *namedMin < 1 || *workers < 1 {
		fmt.Fprintln(stderr, "usage: warden trace PATH...|- [--ledger DIR | --clickhouse ADDR] [--json] [--config FILE] [--false-accusation P] [--named-min N] [--workers N]\n       warden trace --served FACET VALUE [--ledger DIR | --clickhouse ADDR] [--json]")
		return errUsage
	}
	if err := oneLedger(*ledgerDir, *chAddr); err != nil {
		return err
	}
	ccfg := canary.Config{KeyEnv: "WARDEN_CANARY_KEY"}
	var cfg *config.Config
	if *cfgFile != "" {
		if cfg, err = config.Load(*cfgFile); err != nil {
			return err
		}
		if cfg.Canary.Enabled() {
			ccfg = cfg.Canary
		}
		if *ledgerDir == "" && *chAddr == "" {
			if cfg.Ledger.Backend == config.LedgerClickHouse {
				*chAddr = "config"
			} else if *ledgerDir = cfg.Ledger.Dir; *ledgerDir != "" {
				if err := configLedger(*cfgFile, *ledgerDir); err != nil {
					return err
				}
			}
		}
	}
	c, err := canary.New(ccfg, nil)
	if err != nil {
		fmt.Fprintf(stderr, "warden trace: no canary evidence: %v\n", err)
		c = nil
	}
	var led trace.Entries
	var chLed *trace.Replay
	var local *ledger.Reader
	// ledErr is what cut the last replay short, either ledger's: a
	// report from part of it is not given.
	ledErr := func() error {
		if local != nil {
			return local.Err()
		}
		return chLed.Err()
	}
	switch {
	case *chAddr != "":
		src, err := clickhouseSource(cfg, *chAddr)
		if err != nil {
			return err
		}
		chLed = trace.NewReplay(ctx, src)
		led = chLed
	case *ledgerDir != "":
		// A damaged day rollup is passed over for the hours (the same
		// Accesses), and said on stderr as the ledger's queries do.
		r, err := ledger.OpenReader(*ledgerDir, ledger.Window{}, warnOn(stderr))
		if err != nil {
			return err
		}
		defer r.Close()
		led, local = r, r
	}
	if *served != "" {
		f, ok := identify.ParseFacet(*served)
		switch {
		case !ok:
			return fmt.Errorf("--served %q: not a facet (account, app, ip, net, fingerprint)", *served)
		case c == nil:
			return errors.New("--served: no canary key: the canaries an identity was shown are derived from it")
		case led == nil:
			return errors.New("--served: no ledger: give --ledger DIR, --clickhouse ADDR, or --config with ledger.dir")
		case !slices.ContainsFunc(c.Config().Facets, func(s string) bool { g, _ := identify.ParseFacet(s); return g == f }):
			// The code is keyed only by canary.facets: any other facet's
			// value would be answered "none" whoever it is.
			return fmt.Errorf("--served %s: canaries are keyed by %s (canary.facets), never by %s", f, strings.Join(c.Config().Facets, ", "), f)
		}
		// An ip or a net in the form the ledger writes it, as took-by
		// reads it: 127.0.0.1/24 is 127.0.0.0/24.
		value, err := facetValue(f, pos[0])
		if err != nil {
			return fmt.Errorf("--served %s: %s", f, cliMessage(err))
		}
		if c.Keys() > 1 {
			// The ledger does not say which key signed when: the replay
			// is under today's, so lists fetched before the last rotation
			// list canaries the identity was not shown.
			fmt.Fprintf(stderr, "warning: replayed under the signing key (the first of %s's %d): lists fetched before the last rotation were shown the older key's canaries, not these\n", c.Config().KeyEnv, c.Keys())
		}
		list := trace.Served(c, led, f, value)
		if err := ledErr(); err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(map[string]any{"facet": f.String(), "value": value, "canaries": list})
		}
		fmt.Fprintf(stdout, "%d canaries served to %s %s\n", len(list), f, value)
		tw := tabwriter.NewWriter(stdout, 0, 2, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME\tROUTE\tLIST\tID\tUSERNAME\tEMAIL\tPHONE")
		for _, s := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Time.Format(time.RFC3339), s.Route, s.List, s.ID, s.Username, s.Email, s.Phone)
		}
		return tw.Flush()
	}
	t := trace.New(c, *workers)
	t.NameFrom(*namedMin)
	// read counts decompressed bytes (the speed), in the files' own bytes
	// against their total size (the bar; none when a copy comes on
	// standard input or is no regular file).
	var read, in atomic.Int64
	total := copySize(pos)
	stop := progress(stderr, &read, &in, total)
	for _, p := range pos {
		var r io.Reader = os.Stdin
		if p != "-" {
			f, err := os.Open(p)
			if err != nil {
				stop()
				return err
			}
			defer f.Close()
			r = countingReader{f, &in}
		}
		before := t.Records()
		st, err := t.Read(r, func(n int) { read.Add(int64(n)) })
		if err != nil {
			stop()
			return fmt.Errorf("%s: %w", p, err)
		}
		if st.Truncated {
			fmt.Fprintf(stderr, "warning: %s: the gzip stream is cut short; traced the %d bytes it holds\n", p, st.Bytes)
		}
		switch {
		case t.Records() != before:
		case st.Bytes == 0:
			fmt.Fprintf(stderr, "warning: %s: empty: no record\n", p)
		default:
			fmt.Fprintf(stderr, "warning: %s: no record in its %d bytes (read as %s): no value was taken for an id, username, e-mail or phone\n", p, st.Bytes, st.Format)
		}
	}
	stop()
	if t.Records() == 0 {
		// A copy trace cannot read is not one nobody took: answering
		// "accused: nobody" would hide it.
		return errors.New("no record read from the copy: trace reads CSV (a header or not), JSON, NDJSON, mongoexport, Elasticsearch bulk and elasticdump, SQL dumps (mysqldump, pg_dump, sqlite3 .dump), gzip'd or not")
	}
	rep := t.ReportEntries(led, *eps)
	if err := ledErr(); err != nil {
		return err
	}
	if led != nil && rep.Subjects > 0 && rep.Served == 0 && rep.Candidates == 0 {
		// Nobody accused and nobody named, rightly or because the ledger
		// given is not the gateway's (an empty or wrong directory reads
		// as a ledger with no Access): say which evidence is missing.
		fmt.Fprintf(stderr, "warning: the ledger shows none of the copy's %d subjects served to anyone and no list answer to score: the copy was not taken through this gateway, or this is not its ledger\n", rep.Subjects)
	}
	if rep.ContactOnly > 0 {
		// Such records give no coverage (the ledger keeps ids), and their
		// canaries are found only among those the ledger says were served.
		switch {
		case c == nil:
			fmt.Fprintf(stderr, "warning: %d of the %d records have an e-mail or phone and no id or username: they give no ledger coverage, and without a canary key no canary is found among them\n", rep.ContactOnly, rep.Records)
		case led == nil:
			fmt.Fprintf(stderr, "warning: %d of the %d records have an e-mail or phone and no id or username: they give no ledger coverage, and their canaries are found among those the ledger says were served: give --ledger or --clickhouse\n", rep.ContactOnly, rep.Records)
		default:
			fmt.Fprintf(stderr, "note: %d of the %d records have an e-mail or phone and no id or username: %d canaries found among them by contact (%d canary-shaped values matched no served canary); they give no ledger coverage\n", rep.ContactOnly, rep.Records, rep.ContactCanaries, rep.ContactUnmatched)
		}
	}
	if rep.UsernameOnly > 0 {
		fmt.Fprintf(stderr, "note: %d of the %d records have a username and no id: they give no ledger coverage (the ledger keeps the platform's ids, not usernames); their canaries are found by the key\n", rep.UsernameOnly, rep.Records)
	}
	if rep.CanaryIDsOnly > 0 {
		fmt.Fprintf(stderr, "note: %d records hold a canary's id and no username, e-mail or phone: the copy keeps ids only, so its canaries cannot be verified (an id alone is not; they are not counted as forgeries either), and the ledger's coverage is the evidence\n", rep.CanaryIDsOnly)
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(rep)
	}
	byContact := ""
	if rep.ContactCanaries > 0 {
		byContact = fmt.Sprintf(", %d of them by e-mail or phone alone", rep.ContactCanaries)
	}
	idsOnly := ""
	if rep.CanaryIDsOnly > 0 {
		idsOnly = fmt.Sprintf(", %d canary ids with nothing to verify them", rep.CanaryIDsOnly)
	}
	fmt.Fprintf(stdout, "%d records, %d distinct subjects, %d canaries found (verified by the key%s), %d canary-shaped records rejected%s\n",
		rep.Records, rep.Subjects, rep.CanariesFound, byContact, rep.CanariesForged, idsOnly)
	if led == nil {
		fmt.Fprintln(stdout, "no ledger (--ledger or --clickhouse): no coverage, no scores")
		return nil
	}
	fmt.Fprintf(stdout, "accused (false-accusation probability at most %g over %d identities scored):\n", rep.FalseAccusation, rep.Candidates)
	tw := tabwriter.NewWriter(stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "FACET\tVALUE\tCANARIES\tSCORE\tTHRESHOLD\tSLOTS\tCOVERAGE\tCOLLUDERS TOLERATED")
	for _, a := range rep.Accused {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.1f\t%.1f\t%d\t%.2f%%\t%d\n", a.Facet, a.Value, a.Canaries, a.Score, a.Threshold, a.Slots, 100*a.Coverage, a.Colluders)
	}
	tw.Flush()
	if len(rep.Accused) == 0 {
		fmt.Fprintln(stdout, "  nobody")
	}
	fmt.Fprintf(stdout, "ledger coverage: %.1f%% of the subjects were served through warden; these explain %.1f%%:\n", 100*rep.Served, 100*rep.Covered)
	tw = tabwriter.NewWriter(stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "FACET\tVALUE\tSUBJECTS\tSHARE\tADDED")
	for _, cv := range rep.Coverage {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.2f%%\t%.2f%%\n", cv.Facet, cv.Value, cv.Subjects, 100*cv.Share, 100*cv.Added)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "named by the ledger: %d identities were served at least %d of the copy's subjects (accused or not: the ledger cannot tell a harvester from a heavy reader)", rep.NamedTotal, rep.NamedMin)
	if rep.NamedTotal > len(rep.Named) {
		fmt.Fprintf(stdout, "; the first %d", len(rep.Named))
	}
	fmt.Fprintln(stdout, ":")
	tw = tabwriter.NewWriter(stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "FACET\tVALUE\tSUBJECTS\tSHARE\tACCUSED")
	for _, n := range rep.Named {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.2f%%\t%s\n", n.Facet, n.Value, n.Subjects, 100*n.Share, map[bool]string{true: "yes", false: "no"}[n.Accused])
	}
	return tw.Flush()
}

// copySize is the total size of the copies at paths, 0 when one is
// standard input or no regular file (its size says nothing).
func copySize(paths []string) int64 {
	var n int64
	for _, p := range paths {
		st, err := os.Stat(p)
		if p == "-" || err != nil || !st.Mode().IsRegular() {
			return 0
		}
		n += st.Size()
	}
	return n
}

// countingReader adds what it reads to n.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(b []byte) (int, error) {
	k, err := c.r.Read(b)
	c.n.Add(int64(k))
	return k, err
}

// progressLine is the progress shown after elapsed: a bar over the
// files' bytes read (in of total) when their size is known, and the
// decompressed bytes read and their speed.
func progressLine(read, in, total int64, elapsed time.Duration) string {
	speed := float64(read) / 1e6 / max(elapsed.Seconds(), 1e-3)
	if total <= 0 {
		return fmt.Sprintf("trace: %.1f MB read, %.0f MB/s", float64(read)/1e6, speed)
	}
	const width = 30
	frac := min(1, float64(in)/float64(total))
	done := int(frac * width)
	return fmt.Sprintf("trace: [%s%s] %3.0f%% of %.1f MB, %.1f MB read, %.0f MB/s",
		strings.Repeat("=", done), strings.Repeat(" ", width-done), 100*frac, float64(total)/1e6, float64(read)/1e6, speed)
}

// progress shows progressLine on a terminal until stop is called.
func progress(w io.Writer, read, in *atomic.Int64, total int64) (stop func()) {
	f, ok := w.(*os.File)
	if !ok {
		return func() {}
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return func() {}
	}
	done := make(chan struct{})
	fin := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(fin)
		tk := time.NewTicker(250 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-done:
				fmt.Fprint(f, "\r\033[K")
				return
			case <-tk.C:
				fmt.Fprint(f, "\r\033[K"+progressLine(read.Load(), in.Load(), total, time.Since(start)))
			}
		}
	}()
	return func() { close(done); <-fin }
}
