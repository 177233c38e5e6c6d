package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/warden-gw/warden/internal/audience"
	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/ledger/clickhouse"
)

// runAudience: warden audience --accounts ID,...|@FILE [--overlap
// ID,...|@FILE] [--dose] [--upstream URL] [--credential-env VAR]
// [--rate N] [--ledger DIR|--clickhouse ADDR] [--dp-epsilon E|--dp-rho R
// --researcher NAME]. The reach split reads the fleet's ledger in
// ClickHouse when the ledger is read there (queryFlags.onClickHouse).
func runAudience(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("audience", stderr)
	qf := addQueryFlags(fs)
	fs.String("accounts", "", "the accounts: ID,ID,... or @FILE (required)")
	fs.String("overlap", "", "also: compare with another set of accounts (ID,... or @FILE): each, both, either")
	fs.Bool("dose", false, "also: people following at least k of the accounts, for every k")
	upstream := fs.String("upstream", "", "the platform's URL (default: upstream.url of --config)")
	route := fs.String("route", "", `the follower list route (default: the route map's list route ending in /followers, else "GET /v1/users/{id}/followers")`)
	credEnv := fs.String("credential-env", "", "environment variable holding the service credential (a bearer token; default: a token minted with identity.account's HS256 secret from --config for --service-account)")
	service := fs.String("service-account", "1", "the account a minted service token is for")
	rate := fs.Float64("rate", 20, "at most this many list requests a second")
	pageSize := fs.Int("page-size", 50, "records asked per page (limit=N)")
	maxPages := fs.Int("max-pages", 100000, "at most this many pages per account; past it no count is given")
	noLedger := fs.Bool("no-ledger", false, "do not split the accounts' reach by followers, even when a ledger is configured")
	addPrivateFlags(fs)
	if _, err := positionals(fs, args, 0, "usage: warden audience --accounts ID,...|@FILE [--overlap ID,...|@FILE] [--dose] [--upstream URL] [--credential-env VAR] [--rate N]\n"+
		"                       [--ledger DIR|--clickhouse ADDR|--no-ledger] [--dp-epsilon E|--dp-rho R --researcher NAME] [--config FILE] [--from T] [--to T] [--json]"); err != nil {
		return err
	}
	if err := requireFlags(fs, "accounts"); err != nil {
		return err
	}
	if *rate <= 0 || *rate > 10000 || *pageSize < 1 || *maxPages < 1 {
		return errors.New("--rate must be in (0, 10000], --page-size and --max-pages at least 1")
	}
	if err := oneLedger(*qf.ledger, *qf.clickhouse); err != nil {
		return err
	}
	v := url.Values{}
	setFlags(fs, v, append([]string{"ledger", "clickhouse", "config", "json"}, audienceHow...)...)
	if err := readIDFlags(v, "accounts", "overlap"); err != nil {
		return err
	}
	cfg, err := audienceConfig(fs, qf)
	if err != nil {
		return err
	}
	// What the question is, checked before any list is paged: the ids,
	// the window, and a ledger named and absent.
	if _, err := audienceQuery(v, time.Now()); err != nil {
		return err
	}
	if *qf.ledger != "" && !*noLedger {
		if info, err := os.Stat(*qf.ledger); err != nil {
			return fmt.Errorf("--ledger: %w", err)
		} else if !info.IsDir() {
			return fmt.Errorf("--ledger: %s is not a directory", *qf.ledger)
		}
	}
	// The ledger the reach split reads and DP budgets are charged in: a
	// fleet's in ClickHouse (--clickhouse, or the config's backend), else
	// the directory (--ledger, or the config's ledger.dir when it exists).
	var ch *clickhouse.Client
	if qf.onClickHouse(cfg) {
		if ch, err = clickhouseSource(cfg, *qf.clickhouse); err != nil {
			return err
		}
	}
	dir := *qf.ledger
	if dir == "" && cfg != nil && cfg.Ledger.Dir != "" {
		if info, err := os.Stat(cfg.Ledger.Dir); err == nil && info.IsDir() {
			dir = cfg.Ledger.Dir
		}
	}
	var led audience.Ledger
	if !*noLedger {
		switch {
		case ch != nil:
			led = ch
		case dir != "":
			// A damaged day rollup or author index is passed over for
			// the hours (the same answer), and said on stderr.
			led = audience.Dir(dir, warnOn(stderr))
		}
	}
	l := &audience.Lists{NextCursor: "next_cursor", PageSize: *pageSize, Rate: *rate, MaxPages: *maxPages,
		Client: &http.Client{Timeout: 30 * time.Second}, Retries: audienceRetries}
	if err := listRoute(l, cfg, *route); err != nil {
		return err
	}
	l.Upstream = *upstream
	if l.Upstream == "" && cfg != nil {
		l.Upstream = cfg.Upstream.URL
	}
	if l.Upstream == "" {
		return errors.New("no upstream: give --upstream URL or a --config with upstream.url")
	}
	if u, err := url.Parse(l.Upstream); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--upstream: %q is not an http or https URL", l.Upstream)
	}
	if err = serviceCredential(l, cfg, *credEnv, *service); err != nil {
		return err
	}
	// The budget sits in the ledger directory: a DP answer needs one.
	budgetDir := dir
	if budgetDir == "" && cfg != nil {
		budgetDir = cfg.Ledger.Dir
	}
	res, err := answerAudience(ctx, l, led, ch, budgetDir, cfg, v, time.Now())
	if *qf.json {
		printRefused(stdout, err)
	}
	if err != nil {
		return err
	}
	if *qf.json {
		return printJSON(stdout, res)
	}
	switch r := res.(type) {
	case *audience.Result:
		printAudience(stdout, r)
	case *audience.PrivateResult:
		printPrivateAudience(stdout, r)
	}
	return nil
}

// audienceRetries is how many times a page that failed with a 5xx, a 429
// or no answer is asked again (after 0.5, 1 and 2 s) before the count
// fails: one failure does not throw away an hour of paging.
const audienceRetries = 3

// audienceHow are audience's parameters that say how to ask, not what:
// left out of a DP answer's question, so that the same question paged at
// another rate is the same question (and the same answer, free).
var audienceHow = []string{"credential-env", "service-account", "upstream", "rate", "page-size", "max-pages", "no-ledger"}

// audienceQuery reads audience's question from v: accounts and overlap
// (ids; the command line has read any @FILE), dose, from and to.
func audienceQuery(v url.Values, now time.Time) (audience.Query, error) {
	q := audience.Query{Dose: v.Get("dose") == "true"}
	var err error
	if v.Get("accounts") == "" {
		return q, badQuery("accounts: give ID,ID,... or @FILE")
	}
	if q.Accounts, err = idList("accounts", v.Get("accounts")); err != nil {
		return q, err
	}
	if o := v.Get("overlap"); o != "" {
		if q.Overlap, err = idList("overlap", o); err != nil {
			return q, err
		}
	}
	q.Window, err = queryWindow(v, now)
	return q, err
}

// answerAudience answers audience's question v by paging l, splitting
// the accounts' reach on led (nil: no split); a DP answer is charged in
// ch (a fleet's ClickHouse) or else in budgetDir. The command and the
// admin API both answer through it.
func answerAudience(ctx context.Context, l *audience.Lists, led audience.Ledger, ch *clickhouse.Client, budgetDir string, cfg *config.Config, v url.Values, now time.Time) (any, error) {
	q, err := audienceQuery(v, now)
	if err != nil {
		return nil, err
	}
	q.Ledger = led
	ask := url.Values{}
	for k, vals := range v {
		if !slices.Contains(audienceHow, k) {
			ask[k] = vals
		}
	}
	// Whether the reach is split is part of the question: an answer
	// given without a ledger (--no-ledger, or none configured yet) is no
	// repeat of one asked with it, which must carry the split.
	ask.Del("reach-split")
	if led == nil {
		ask.Set("reach-split", "none")
	}
	p, err := privateQuery(budgetDir, cfg, "audience", ask)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return audience.Run(ctx, l, q)
	}
	// A fleet on ClickHouse keeps its researchers' budgets there, as reach
	// does: one budget per researcher, whichever host is asked.
	if ch != nil {
		p.Budgets = clickhouse.NewBudgets(ch, researcherLimit(cfg))
	} else if budgetDir == "" {
		return nil, badQuery("a DP answer is charged to a budget kept in the ledger directory (or in ClickHouse with --clickhouse ADDR): give --ledger DIR or a --config with ledger.dir")
	}
	res, err := audience.RunPrivate(ctx, l, q, *p)
	return res, refusedBudget(err)
}

// apiAudienceTime bounds the admin API's audience: its server's write
// timeout is 30 s, and an answer written after it is lost.
const apiAudienceTime = 25 * time.Second

// apiAudience is the admin API's audience query: the lists are paged on
// the gateway's own upstream (upstream.url, with serve's --upstream) with
// a token minted from its config's account secret, never a URL or
// credential of the asker's (the gateway would fetch whatever it was
// given). rate (default 20 a second, at most 10,000) and
// service-account (default 1) may be given; the reach split reads the
// gateway's ledger unless no-ledger=true.
func apiAudience(ctx context.Context, src ledger.Source, dir string, cfg *config.Config, v url.Values, now time.Time) (any, error) {
	for _, k := range []string{"upstream", "credential-env", "route", "page-size", "max-pages"} {
		if v.Has(k) {
			return nil, badQuery("%s: the admin API pages the gateway's own upstream with its config's route and credential; ask warden audience for another", k)
		}
	}
	if cfg == nil || cfg.Upstream.URL == "" {
		return nil, badQuery("audience: the gateway's config names no upstream")
	}
	rate := 20.0
	if s := v.Get("rate"); s != "" {
		r, err := strconv.ParseFloat(s, 64)
		if err != nil || !(r > 0 && r <= 10000) {
			return nil, badQuery("rate: %q is not a number of requests a second in (0, 10000]", s)
		}
		rate = r
	}
	service := "1"
	if s := v.Get("service-account"); s != "" {
		service = s
	}
	l := &audience.Lists{NextCursor: "next_cursor", PageSize: 50, Rate: rate, MaxPages: 100000,
		Client: &http.Client{Timeout: 30 * time.Second}, Upstream: cfg.Upstream.URL, Retries: audienceRetries}
	if err := listRoute(l, cfg, ""); err != nil {
		return nil, err
	}
	var err error
	if err = serviceCredential(l, cfg, "", service); err != nil {
		return nil, badQuery("audience: %v", err)
	}
	var led audience.Ledger
	ch, _ := src.(*clickhouse.Client)
	switch {
	case v.Get("no-ledger") == "true":
	case ch != nil:
		led = ch
	case dir != "":
		led = audience.Dir(dir, readerOptions(src)...) // the queries' warnings and cache
	}
	ctx, cancel := context.WithTimeout(ctx, apiAudienceTime)
	defer cancel()
	res, err := answerAudience(ctx, l, led, ch, dir, cfg, v, now)
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil, badQuery("audience: paging the lists at %g requests a second takes longer than the admin API's %s; ask warden audience (or a higher rate)", rate, apiAudienceTime)
	}
	return res, err
}

// audienceConfig loads --config: needed unless --upstream and a
// credential are given.
func audienceConfig(fs *flag.FlagSet, qf *queryFlags) (*config.Config, error) {
	explicit := false
	fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "config" })
	cfg, err := config.Load(*qf.config)
	if err != nil {
		if explicit || !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return nil, nil
	}
	return cfg, nil
}

// listRoute takes the follower list route from the config's route map.
func listRoute(l *audience.Lists, cfg *config.Config, want string) error {
	if cfg != nil {
		for _, r := range cfg.Inspect.Routes {
			if r.List == "" || (want != "" && r.Route != want) || (want == "" && !strings.HasSuffix(r.Route, "/followers")) {
				continue
			}
			return l.FromRoute(r.Route, r.List, r.Records, r.ID, r.Cursor)
		}
		if want != "" {
			return fmt.Errorf("--route %q is not a list route of the config's route map", want)
		}
	}
	if want == "" {
		want = "GET /v1/users/{id}/followers"
	}
	return l.FromRoute(want, "id", []string{"$.users[*]"}, "id", "cursor")
}

// serviceTokenLife is how long a minted service token is valid: the
// lists mint another before it ends (audience.Lists.Mint), so a run
// paging for longer is never refused halfway.
const serviceTokenLife = time.Hour

// serviceCredential sets l's Authorization value: the bearer token in
// env, or a minter of tokens signed with the config's HS256 account
// secret, each valid for serviceTokenLife (checked here: a missing
// secret fails before any list is paged).
func serviceCredential(l *audience.Lists, cfg *config.Config, env, account string) error {
	if env != "" {
		tok := strings.TrimSpace(os.Getenv(env))
		if tok == "" {
			return fmt.Errorf("--credential-env: %s is empty", env)
		}
		if !strings.HasPrefix(strings.ToLower(tok), "bearer ") {
			tok = "Bearer " + tok
		}
		l.Credential = tok
		return nil
	}
	secret, err := serviceSecret(cfg)
	if err != nil {
		return err
	}
	l.Mint = func(now time.Time) (string, time.Time, error) {
		exp := now.Add(serviceTokenLife)
		return mintService(secret, account, now, exp), exp, nil
	}
	return nil
}

// serviceSecret is the config's HS256 account secret.
func serviceSecret(cfg *config.Config) ([]byte, error) {
	if cfg == nil {
		return nil, errors.New("no credential: give --credential-env VAR or a --config whose identity.account has an HS256 secret")
	}
	a := cfg.Identity.Account
	var secret []byte
	switch {
	case a.SecretEnv != "":
		secret = []byte(os.Getenv(a.SecretEnv))
	case a.SecretFile != "":
		b, err := os.ReadFile(a.SecretFile)
		if err != nil {
			return nil, err
		}
		secret = []byte(strings.TrimRight(string(b), "\r\n"))
	}
	if len(secret) == 0 {
		if a.SecretEnv != "" {
			return nil, fmt.Errorf("no credential: %s (identity.account.secret_env) is empty: set it, or give --credential-env VAR", a.SecretEnv)
		}
		return nil, errors.New("no credential: give --credential-env VAR, or set the config's identity.account secret")
	}
	return secret, nil
}

// mintService is the Authorization value of an HS256 token for account,
// issued at now, expiring at exp.
func mintService(secret []byte, account string, now, exp time.Time) string {
	enc := base64.RawURLEncoding
	claims, _ := json.Marshal(map[string]any{"sub": account, "iat": now.Unix(), "exp": exp.Unix(), "created": now.Add(-365 * 24 * time.Hour).Unix()})
	msg := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(claims)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(msg))
	return "Bearer " + msg + "." + enc.EncodeToString(m.Sum(nil))
}

// audienceDose, audienceOverlap head audience's dose and overlap tables.
const (
	audienceDose    = "people following at least k of the accounts"
	audienceOverlap = "overlap of the followers"
)

func printAudience(w io.Writer, r *audience.Result) {
	fmt.Fprintf(w, "audience of %d accounts (exact): %d distinct people follow at least one; %d pages in %d requests\n", r.Accounts, r.Audience, r.Pages, r.Requests)
	tw := newTable(w)
	// Lists holds --accounts' lists, then --overlap's (audience.people
	// pages them in that order): name the set when there are two.
	two := len(r.Lists) > r.Accounts
	if two {
		fmt.Fprintln(tw, "ACCOUNT\tFOLLOWERS\tSET")
	} else {
		fmt.Fprintln(tw, "ACCOUNT\tFOLLOWERS")
	}
	for i, c := range r.Lists {
		switch {
		case !two:
			fmt.Fprintf(tw, "%s\t%d\n", c.Account, c.Followers)
		case i < r.Accounts:
			fmt.Fprintf(tw, "%s\t%d\taccounts\n", c.Account, c.Followers)
		default:
			fmt.Fprintf(tw, "%s\t%d\toverlap\n", c.Account, c.Followers)
		}
	}
	tw.Flush()
	printDose(w, audienceDose, r.Dose)
	printOverlap(w, audienceOverlap, "ACCOUNTS", r.Overlap)
	if s := r.Reach; s != nil {
		fmt.Fprintf(w, "\nreach of their content (ledger, %s to %s): %d people, %d of them followers, %d not\n", fmtTime(s.From), fmtTime(s.To), s.Reach, s.Followers, s.NonFollowers)
	}
}

func printPrivateAudience(w io.Writer, r *audience.PrivateResult) {
	fmt.Fprintf(w, "audience of %d accounts (differentially private: noisy, not exact): %d people follow at least one, %s\n", r.Accounts, r.Audience, fmtInterval(r.Interval))
	printPrivateDose(w, audienceDose, r.Dose)
	printPrivateOverlap(w, audienceOverlap, "ACCOUNTS", r.Overlap)
	if s := r.Reach; s != nil {
		fmt.Fprintf(w, "\nreach of their content (ledger, %s to %s): %d people %s, %d of them followers %s, %d not %s\n", fmtTime(s.From), fmtTime(s.To),
			s.Reach, fmtInterval(s.ReachInterval), s.Followers, fmtInterval(s.FollowersInterval), s.NonFollowers, fmtInterval(s.NonFollowersInterval))
	}
	printPrivacy(w, r.Privacy, r.Budget)
}
