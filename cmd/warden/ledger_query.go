package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/admin"
	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/ledger/clickhouse"
	"github.com/warden-gw/warden/internal/reach"
)

// The ledger's queries are answered by one function, answerQuery, from
// url.Values: the admin API passes its query string, each command its
// flags. So a command and its endpoint cannot disagree.

// queryFlags are the flags every ledger query takes.
type queryFlags struct {
	ledger, clickhouse, config, from, to *string
	json                                 *bool
	// loaded is the config target read (nil when none was): a table
	// says what it could not show without one (explain's budgets).
	loaded *config.Config
}

func addQueryFlags(fs *flag.FlagSet) *queryFlags {
	return &queryFlags{
		ledger:     fs.String("ledger", "", "ledger directory (default: ledger.dir of --config)"),
		clickhouse: fs.String("clickhouse", "", "ask the ledger in ClickHouse at ADDR (host:port of its HTTP interface; database, user and password from ledger.clickhouse of --config); \"config\": ledger.clickhouse as it is"),
		config:     fs.String("config", "examples/lab.yaml", "config file whose ledger.dir is read (and, for explain, its budgets)"),
		from:       fs.String("from", "", "start of the window: RFC 3339, or a duration back from now (90m, 24h, 7d)"),
		to:         fs.String("to", "", "end of the window, as --from (default: now)"),
		json:       fs.Bool("json", false, "print JSON instead of a table"),
	}
}

// parseArgs parses flags placed before, between or after the positional
// arguments (flag stops at the first one), and returns the positionals.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// positionals parses args as parseArgs does and wants n positional
// arguments; else it prints usage (a line) and the flags, and returns
// errUsage.
func positionals(fs *flag.FlagSet, args []string, n int, usage string) ([]string, error) {
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), usage)
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return nil, errUsage
	}
	if len(pos) != n {
		// Say what was wrong before the usage: a stray word (a flag's
		// value left without its flag) would otherwise only exit 2.
		if len(pos) > n {
			fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), pos[n])
		} else {
			fmt.Fprintf(fs.Output(), "%s: missing argument\n", fs.Name())
		}
		fs.Usage()
		return nil, errUsage
	}
	return pos, nil
}

// requireFlags is positionals' check for the flags a command cannot go
// without: one not given says so and prints the usage (exit status 2), as
// a missing argument does.
func requireFlags(fs *flag.FlagSet, names ...string) error {
	for _, n := range names {
		if f := fs.Lookup(n); f != nil && f.Value.String() == "" {
			fmt.Fprintf(fs.Output(), "%s: missing --%s\n", fs.Name(), n)
			fs.Usage()
			return errUsage
		}
	}
	return nil
}

// setFlags records in v the flags set on the command line (by name).
func setFlags(fs *flag.FlagSet, v url.Values, skip ...string) {
	fs.Visit(func(f *flag.Flag) {
		for _, s := range skip {
			if s == f.Name {
				return
			}
		}
		v.Set(f.Name, f.Value.String())
	})
}

// oneLedger refuses --ledger with --clickhouse: they name two ledgers, and
// the command would read one of them without saying which.
func oneLedger(dir, addr string) error {
	if dir != "" && addr != "" {
		return errors.New("give --ledger DIR or --clickhouse ADDR, not both")
	}
	return nil
}

// onClickHouse reports whether the ledger is read in ClickHouse: with
// --clickhouse, or without --ledger when cfg's backend is clickhouse.
func (q *queryFlags) onClickHouse(cfg *config.Config) bool {
	return *q.clickhouse != "" || (*q.ledger == "" && cfg != nil && cfg.Ledger.Backend == config.LedgerClickHouse)
}

// target resolves where the ledger is read (--clickhouse, --ledger, or
// the config's ledger.clickhouse with backend clickhouse, else its
// ledger.dir) and the config (nil when only --ledger was given and
// --config was left at its default and is absent). dir is the ledger
// directory when there is one (DP budgets are kept there).
func (q *queryFlags) target(fs *flag.FlagSet) (ledger.Source, string, *config.Config, error) {
	if err := oneLedger(*q.ledger, *q.clickhouse); err != nil {
		return nil, "", nil, err
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })
	var cfg *config.Config
	if explicit || *q.ledger == "" {
		c, err := config.Load(*q.config)
		switch {
		case err == nil:
			cfg = c
		case explicit || !errors.Is(err, os.ErrNotExist):
			return nil, "", nil, err
		}
	}
	q.loaded = cfg
	dir := *q.ledger
	if dir == "" && cfg != nil {
		dir = cfg.Ledger.Dir
	}
	if q.onClickHouse(cfg) {
		src, err := clickhouseSource(cfg, *q.clickhouse)
		return src, dir, cfg, err
	}
	if dir == "" {
		if cfg == nil {
			// The default --config is relative: run elsewhere than the
			// repository, it is not there, which is not "sets no dir".
			return nil, "", nil, fmt.Errorf("no ledger: give --ledger DIR, --config FILE with ledger.dir, or --clickhouse ADDR (the default config %s is not here)", *q.config)
		}
		return nil, "", nil, fmt.Errorf("no ledger: %s sets no ledger.dir; give --ledger DIR or --clickhouse ADDR", *q.config)
	}
	if *q.ledger == "" {
		if err := configLedger(*q.config, dir); err != nil {
			return nil, "", nil, err
		}
	}
	// A damaged day rollup or author index is passed over for the
	// hours (the same answer), and said on stderr.
	warn := warnOn(fs.Output())
	return localLedger(dir, warn), dir, cfg, nil
}

// configLedger checks dir, the ledger directory config names (its
// ledger.dir), so that one missing is said as that file's, not as a bare
// "stat warden-ledger" the reader cannot place.
func configLedger(config, dir string) error {
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("ledger.dir of %s: %w; give --ledger DIR", config, err)
	}
	return nil
}

// clickhouseSource is the ledger in ClickHouse: ledger.clickhouse of cfg,
// at addr unless addr is "" or "config".
func clickhouseSource(cfg *config.Config, addr string) (*clickhouse.Client, error) {
	var cc clickhouse.Config
	if cfg != nil {
		cc = cfg.Ledger.ClickHouse
	}
	if addr != "" && addr != "config" {
		cc.Addrs = strings.Split(addr, ",")
	}
	cc.SetDefaults()
	return clickhouse.NewClient(cc)
}

// parseWhen reads RFC 3339, or a duration back from now (Go's units, and
// d for days).
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	// RFC 3339 allows a lower case t and z (its 5.6); Go's layout reads
	// only T and Z.
	if t, err := time.Parse(time.RFC3339Nano, strings.ToUpper(s)); err == nil {
		return t, nil
	}
	d, err := parseSpan(s)
	if errors.Is(err, errSpanRange) {
		return time.Time{}, fmt.Errorf("%q is out of range: a duration back from now is at most %dd (about 292 years); give a time in RFC 3339 for one further back", s, int64(math.MaxInt64/(24*time.Hour)))
	}
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor a duration back from now", s)
	}
	return now.Add(-d), nil
}

// errSpanRange is a duration too long for time.Duration (about 292 years).
var errSpanRange = errors.New("duration out of range")

// goDuration is the syntax time.ParseDuration reads, which also refuses
// a duration beyond its range, as "invalid".
var goDuration = regexp.MustCompile(`^[-+]?(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+$`)

func parseSpan(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseFloat(n, 64)
		if err != nil || math.IsNaN(days) {
			return 0, fmt.Errorf("%q is not a number of days", n)
		}
		if h := days * 24 * float64(time.Hour); h >= math.MaxInt64 || h <= math.MinInt64 {
			return 0, errSpanRange
		}
		return time.Duration(days * 24 * float64(time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil && goDuration.MatchString(s) {
		return 0, errSpanRange
	}
	return d, err
}

func badQuery(format string, a ...any) error {
	return fmt.Errorf("%w: %s", admin.ErrBadRequest, fmt.Sprintf(format, a...))
}

func queryWindow(v url.Values, now time.Time) (ledger.Window, error) {
	from, err := parseWhen(v.Get("from"), now)
	if err != nil {
		return ledger.Window{}, badQuery("from: %v", err)
	}
	to, err := parseWhen(v.Get("to"), now)
	if err != nil {
		return ledger.Window{}, badQuery("to: %v", err)
	}
	if !from.IsZero() && !to.IsZero() && to.Before(from) {
		return ledger.Window{}, badQuery("to is before from")
	}
	if to.IsZero() && from.After(now) {
		// Left open, to is now: the same mistake as an earlier --to,
		// answered as an empty window it would read as "nobody".
		return ledger.Window{}, badQuery("from %s is in the future (to, left open, is now)", from.Format(time.RFC3339))
	}
	return ledger.Window{From: from, To: to}, nil
}

func queryFacet(v url.Values, key string, def identify.Facet, allowed ...identify.Facet) (identify.Facet, error) {
	s := v.Get(key)
	if s == "" {
		return def, nil
	}
	f, ok := identify.ParseFacet(s)
	if ok && len(allowed) > 0 {
		ok = false
		for _, a := range allowed {
			ok = ok || a == f
		}
	}
	if !ok {
		names := []string{}
		for _, a := range allowed {
			names = append(names, a.String())
		}
		if len(names) == 0 {
			names = []string{"app", "account", "ip", "net", "fingerprint"}
		}
		return 0, badQuery("%s: %q is not %s", key, s, strings.Join(names, ", "))
	}
	return f, nil
}

// splitIDs splits ids separated by commas, spaces or lines, each once.
func splitIDs(s string) []string {
	var out []string
	seen := map[string]bool{}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' || r == '\r' }) {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}

// unknownClass is an error when class is not "" and names no class of
// cfg's route map, or, without a config to ask, when no Access of the
// window served or masked a class of that name (unseen:
// WhoTookResult.ClassUnseen; a route's or rule's name is none): a misspelt
// --class would otherwise read as "nobody took it". Asked only of an
// empty answer, so a class an earlier config named is still answered
// where the ledger has it.
func unknownClass(cfg *config.Config, class string, unseen bool) error {
	if class == "" {
		return nil
	}
	if cfg == nil {
		if unseen {
			return badQuery("class: no Access in the ledger's window names a class %q (the route map's class names, as --config gives them)", class)
		}
		return nil
	}
	names := cfg.Inspect.ClassNames()
	if slices.Contains(names, class) {
		return nil
	}
	return badQuery("class: %q is not a class of the route map (%s)", class, strings.Join(names, ", "))
}

// facetValue reads an identity's value as the ledger writes it
// (identify.ParseValue): an ip and a net in their canonical forms (a net
// by its masked prefix, as identify derives it), a fingerprint in lower
// case, so that 2001:DB8::1, 127.16.5.1/24 or FF5994A7C6086629 find what
// the ledger holds rather than nothing, and "abc" as an ip, or a
// fingerprint that is not 16 hex digits, is an error, not an identity
// that took nothing.
func facetValue(f identify.Facet, s string) (string, error) {
	if s == "" {
		return "", badQuery("value is required")
	}
	v, err := identify.ParseValue(f, s)
	if err != nil {
		return "", badQuery("value: %v", err)
	}
	return v, nil
}

// idList reads the set of ids of query parameter key: "ID,ID,...". An
// "@FILE" is the command line's (readIDFlags reads it there): asked of the
// admin API it would read a file on the gateway's host, so it is refused.
// Given and empty (",", a blank file) is an error: an empty set asks
// nothing, and answering as if it were left out would hide the mistake.
func idList(key, s string) ([]string, error) {
	ids := splitIDs(s)
	for _, id := range ids {
		if strings.HasPrefix(id, "@") {
			return nil, badQuery("%s: %q: @FILE is read by the command line only; send the ids", key, id)
		}
	}
	if len(ids) == 0 {
		return nil, badQuery("%s: the set is empty; give ID,ID,... or @FILE", key)
	}
	return ids, nil
}

// readIDFlags replaces, in v, each of keys given as "@FILE" by the ids the
// file holds (separated by commas, spaces or lines; a line whose first
// character other than a space is '#' is a comment), so that answerQuery
// reads no file.
func readIDFlags(v url.Values, keys ...string) error {
	for _, k := range keys {
		name, ok := strings.CutPrefix(v.Get(k), "@")
		if !ok {
			// @FILE among ids would reach idList, whose message is the
			// API's (send the ids): here, say where @FILE goes.
			for _, id := range splitIDs(v.Get(k)) {
				if strings.HasPrefix(id, "@") {
					return badQuery("--%s: %q: @FILE must be the whole value of --%s (--%s @FILE), not one of its ids", k, id, k, k)
				}
			}
			continue
		}
		b, err := os.ReadFile(name)
		if err != nil {
			return badQuery("--%s: %v", k, err)
		}
		// An editor's byte order mark (Notepad, "CSV UTF-8") is no part
		// of the first id: left on, that id would match nobody and the
		// answer would go without it, silently. UTF-16 would be read as
		// ids holding NUL bytes: refused.
		if bytes.HasPrefix(b, []byte("\xff\xfe")) || bytes.HasPrefix(b, []byte("\xfe\xff")) {
			return badQuery("--%s: %s is UTF-16; save it as UTF-8 (or ASCII)", k, name)
		}
		b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
		ids := splitIDs(uncomment(string(b)))
		if len(ids) == 0 {
			return badQuery("--%s: %s holds no ids", k, name)
		}
		for _, id := range ids {
			if strings.HasPrefix(id, "@") {
				return badQuery("--%s: %s holds %q: a file of ids names no other file", k, name, id)
			}
		}
		v.Set(k, strings.Join(ids, ","))
	}
	return nil
}

// uncomment drops the comment lines of an @FILE: those whose first
// character other than a space is '#'.
func uncomment(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "#") {
			lines[i] = ""
		}
	}
	return strings.Join(lines, "\n")
}

// answerQuery answers the ledger query name from src; dir is the ledger
// directory ("" without one: DP budgets are kept there, verify reads it).
// cfg may be nil (explain then shows no budgets). Errors wrapping
// admin.ErrBadRequest are the asker's; admin.ErrNotFound, nothing
// matched.
func answerQuery(ctx context.Context, src ledger.Source, dir string, cfg *config.Config, name string, v url.Values, now time.Time) (any, error) {
	if v.Has(admin.LedgerBody) && name != "replay" {
		return nil, badQuery("%s takes no body (only replay: its new config)", name)
	}
	if name == "verify" {
		if dir == "" || src.String() != dir {
			return nil, badQuery("verify reads a local ledger directory; give --ledger DIR")
		}
		return ledger.Verify(dir)
	}
	win, err := queryWindow(v, now)
	if err != nil {
		return nil, err
	}
	switch name {
	case "who-took":
		subject := v.Get("subject")
		if subject == "" {
			return nil, badQuery("subject is required")
		}
		by, err := queryFacet(v, "by", identify.FacetAccount)
		if err != nil {
			return nil, err
		}
		res, err := src.WhoTook(ctx, win, subject, v.Get("class"), by)
		if err == nil && len(res.Rows) == 0 {
			err = unknownClass(cfg, v.Get("class"), res.ClassUnseen)
		}
		return res, err
	case "took-by":
		f, err := queryFacet(v, "facet", 0)
		if err != nil || f == 0 {
			return nil, badQuery("facet: want app, account, ip, net or fingerprint")
		}
		value, err := facetValue(f, v.Get("value"))
		if err != nil {
			return nil, err
		}
		return src.TookBy(ctx, win, f, value)
	case "reach":
		return answerReach(ctx, src, dir, cfg, win, v, now)
	case "explain":
		return explainRequest(ctx, src, cfg, win, v.Get("id"))
	case "audience":
		return apiAudience(ctx, src, dir, cfg, v, now)
	case "replay":
		return apiReplay(ctx, src, dir, win, v.Get(admin.LedgerBody))
	}
	return nil, fmt.Errorf("%w: no ledger query %q", admin.ErrNotFound, name)
}

func answerReach(ctx context.Context, src ledger.Source, dir string, cfg *config.Config, win ledger.Window, v url.Values, now time.Time) (any, error) {
	if v.Get("authors") == "" {
		return nil, badQuery("authors: give ID,ID,... or @FILE")
	}
	authors, err := idList("authors", v.Get("authors"))
	if err != nil {
		return nil, err
	}
	for _, k := range []string{"dose", "approx"} {
		// The command line sends true or false; on the API another
		// spelling would be read as false and the answer given without it.
		if b := v.Get(k); b != "" && b != "true" && b != "false" {
			return nil, badQuery("%s: %q is not true or false", k, b)
		}
	}
	q := reach.Query{Authors: authors, Window: win, Dose: v.Get("dose") == "true"}
	if q.By, err = queryFacet(v, "by", identify.FacetAccount, identify.FacetAccount, identify.FacetIP); err != nil {
		return nil, err
	}
	if o := v.Get("overlap"); o != "" {
		if q.Overlap, err = idList("overlap", o); err != nil {
			return nil, err
		}
	}
	if a := v.Get("after"); a != "" {
		if q.After, err = parseWhen(a, now); err != nil {
			return nil, badQuery("after: %v", err)
		}
	}
	p, err := privateQuery(dir, cfg, "reach", v)
	if err != nil {
		return nil, err
	}
	if p != nil {
		// Against ClickHouse the budget is ClickHouse's, shared by the
		// fleet: one kept in each gateway's directory would let a
		// researcher ask every host.
		if ch, ok := src.(*clickhouse.Client); ok {
			p.Budgets = clickhouse.NewBudgets(ch, researcherLimit(cfg))
		}
	}
	if v.Get("approx") == "true" {
		return answerApprox(src, dir, q)
	}
	if p != nil {
		res, err := reach.RunPrivateOn(ctx, src, q, *p)
		return res, refusedBudget(err)
	}
	return reach.RunOn(ctx, src, q)
}

// printJSON writes v indented.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// runQueryCommand is the common body of the query commands: flags to
// values, the answer, then JSON or the command's table.
func runQueryCommand(ctx context.Context, fs *flag.FlagSet, qf *queryFlags, name string, v url.Values, stdout io.Writer, table func(io.Writer, any) error) error {
	setFlags(fs, v, "ledger", "clickhouse", "config", "json")
	if err := readIDFlags(v, "authors", "overlap"); err != nil {
		return err
	}
	src, dir, cfg, err := qf.target(fs)
	if err != nil {
		return err
	}
	res, err := answerQuery(ctx, src, dir, cfg, name, v, time.Now())
	if *qf.json {
		printRefused(stdout, err)
	}
	if err != nil {
		return err
	}
	if *qf.json {
		if err := printJSON(stdout, res); err != nil {
			return err
		}
	} else if err := table(stdout, res); err != nil {
		return err
	}
	if vr, ok := res.(*ledger.VerifyReport); ok && !vr.OK {
		return errors.New("the ledger does not verify")
	}
	return nil
}

func fmtTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// ledgerQuerier answers the admin API's ledger queries over the directory
// the gateway writes (or its ClickHouse, with ledger.backend clickhouse),
// with the config in force (explain's budgets).
type ledgerQuerier struct {
	src ledger.Source
	dir string
	cfg func() *config.Config
	log *slog.Logger
}

// ledgerQueries is the admin API's Ledger: the fleet's ClickHouse when ch is
// not nil, else the directory (nil without one), whose open hour is kept
// read in cache between queries.
func ledgerQueries(ch *clickhouse.Client, dir string, cache *ledger.Cache, cfg func() *config.Config, log *slog.Logger, skipped prometheus.Counter) admin.Ledger {
	if ch != nil {
		return ledgerQuerier{ch, dir, cfg, log}
	}
	if dir == "" {
		return nil
	}
	// A damaged day rollup or author index is passed over for the hours
	// (the same answer), logged and counted.
	warn := ledger.WithWarnings(func(err error) {
		skipped.Inc()
		log.LogAttrs(context.Background(), slog.LevelWarn, "ledger: derived file passed over", slog.String("error", err.Error()))
	})
	return ledgerQuerier{localLedger(dir, ledger.WithCache(cache), warn), dir, cfg, log}
}

// derivedSkipped is warden_ledger_derived_skipped_total, registered in
// reg: one counter for the admin API's ledger queries and the dashboard's
// own readers (a registry takes a name once).
func derivedSkipped(reg prometheus.Registerer) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "warden_ledger_derived_skipped_total",
		Help: "Day rollups and author indexes the ledger's readers in the gateway (admin API queries, dashboard pages) passed over (damaged: answered from the hours)."})
	reg.MustRegister(c)
	return c
}

// apiParams are the query-string parameters each admin API query reads,
// beside from and to. The command line's flags are checked by its flag
// set; the API's query string is checked here.
var apiParams = map[string][]string{
	"who-took": {"subject", "class", "by"},
	"took-by":  {"facet", "value"},
	"reach":    {"authors", "by", "dose", "overlap", "after", "approx", "dp-epsilon", "dp-rho", "researcher"},
	"explain":  {"id"},
	"verify":   {},
	"audience": {"accounts", "overlap", "dose", "rate", "service-account", "no-ledger", "dp-epsilon", "dp-rho", "researcher"},
	"replay":   {}, // and its body, the new config
}

// apiAudienceRefused are audience's flags the API refuses with its own
// message (apiAudience): left to it.
var apiAudienceRefused = []string{"upstream", "credential-env", "route", "page-size", "max-pages"}

// checkAPIParams refuses a parameter the query does not read, or one given
// twice: either would be dropped without a word (a misspelt
// overlap or from, a second authors=), and the answer given to another
// question than the one asked.
func checkAPIParams(name string, args url.Values) error {
	known, ok := apiParams[name]
	if !ok {
		return nil // answerQuery says there is no such query
	}
	keys := make([]string, 0, len(args))
	for k := range args {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		switch {
		case k == admin.LedgerBody && name == "replay":
		case name == "audience" && slices.Contains(apiAudienceRefused, k):
		case k != "from" && k != "to" && !slices.Contains(known, k):
			return badQuery("%s: no parameter %q (it takes %s)", name, k, strings.Join(append(slices.Clone(known), "from", "to"), ", "))
		}
		if len(args[k]) > 1 {
			return badQuery("%s: given %d times; give it once (a set of ids as ID,ID,...)", k, len(args[k]))
		}
	}
	return nil
}

// Query answers under the asker's context: a page closed or a client gone
// stops the query (ClickHouse's at once; a directory's reads finish).
func (q ledgerQuerier) Query(ctx context.Context, name string, args url.Values) (any, error) {
	if err := checkAPIParams(name, args); err != nil {
		return nil, err
	}
	res, err := answerQuery(ctx, q.src, q.dir, q.cfg(), name, args, time.Now())
	if sql := clickhouse.SQLOf(err); sql != "" && q.log != nil {
		// The error names the query; its SQL (the ids asked about) only
		// at debug.
		q.log.LogAttrs(ctx, slog.LevelDebug, "ledger: clickhouse query failed", slog.String("query", name), slog.String("sql", sql), slog.String("error", err.Error()))
	}
	return res, err
}
