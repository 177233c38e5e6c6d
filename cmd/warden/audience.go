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
	"strings"
	"time"

	"github.com/warden-gw/warden/internal/audience"
	"github.com/warden-gw/warden/internal/config"
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
	accounts := fs.String("accounts", "", "the accounts: ID,ID,... or @FILE (required)")
	overlap := fs.String("overlap", "", "also: compare with another set of accounts (ID,... or @FILE): each, both, either")
	dose := fs.Bool("dose", false, "also: people following at least k of the accounts, for every k")
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
	if *rate <= 0 || *rate > 10000 || *pageSize < 1 || *maxPages < 1 {
		return errors.New("--rate must be in (0, 10000], --page-size and --max-pages at least 1")
	}
	if *accounts == "" {
		return errors.New("--accounts: give ID,ID,... or @FILE")
	}
	v := url.Values{}
	setFlags(fs, v, "ledger", "clickhouse", "config", "json", "credential-env", "service-account", "upstream", "rate", "page-size", "max-pages", "no-ledger")
	if err := readIDFlags(v, "accounts", "overlap"); err != nil {
		return err
	}
	cfg, err := audienceConfig(fs, qf)
	if err != nil {
		return err
	}
	q := audience.Query{Dose: *dose}
	if q.Accounts, err = idList("accounts", v.Get("accounts")); err != nil {
		return err
	}
	if *overlap != "" {
		if q.Overlap, err = idList("overlap", v.Get("overlap")); err != nil {
			return err
		}
	}
	if q.Window, err = queryWindow(v, time.Now()); err != nil {
		return err
	}
	// A ledger named and absent fails now, not after paging through every
	// follower list at --rate.
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
	if !*noLedger {
		switch {
		case ch != nil:
			q.Ledger = ch
		case dir != "":
			q.Ledger = audience.Dir(dir)
		}
	}
	l := &audience.Lists{NextCursor: "next_cursor", PageSize: *pageSize, Rate: *rate, MaxPages: *maxPages,
		Client: &http.Client{Timeout: 30 * time.Second}}
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
	if l.Credential, err = serviceCredential(cfg, *credEnv, *service); err != nil {
		return err
	}
	// The budget sits in the ledger directory: a DP answer needs one.
	budgetDir := dir
	if budgetDir == "" && cfg != nil {
		budgetDir = cfg.Ledger.Dir
	}
	p, err := privateQuery(budgetDir, cfg, "audience", v)
	if err != nil {
		return err
	}
	// A fleet on ClickHouse keeps its researchers' budgets there, as reach
	// does: one budget per researcher, whichever host is asked.
	if p != nil && ch != nil {
		p.Budgets = clickhouse.NewBudgets(ch, researcherLimit(cfg))
	} else if p != nil && budgetDir == "" {
		return errors.New("a DP answer is charged to a budget kept in the ledger directory (or in ClickHouse with --clickhouse ADDR): give --ledger DIR or a --config with ledger.dir")
	}
	var res any
	if p != nil {
		pr, err := audience.RunPrivate(ctx, l, q, *p)
		if *qf.json {
			printRefused(stdout, err)
		}
		if err != nil {
			return err
		}
		res = pr
	} else if res, err = audience.Run(ctx, l, q); err != nil {
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

// serviceCredential is the Authorization value: the bearer token in env,
// or one minted with the config's HS256 account secret.
func serviceCredential(cfg *config.Config, env, account string) (string, error) {
	if env != "" {
		tok := strings.TrimSpace(os.Getenv(env))
		if tok == "" {
			return "", fmt.Errorf("--credential-env: %s is empty", env)
		}
		if !strings.HasPrefix(strings.ToLower(tok), "bearer ") {
			tok = "Bearer " + tok
		}
		return tok, nil
	}
	if cfg == nil {
		return "", errors.New("no credential: give --credential-env VAR or a --config whose identity.account has an HS256 secret")
	}
	a := cfg.Identity.Account
	var secret []byte
	switch {
	case a.SecretEnv != "":
		secret = []byte(os.Getenv(a.SecretEnv))
	case a.SecretFile != "":
		b, err := os.ReadFile(a.SecretFile)
		if err != nil {
			return "", err
		}
		secret = []byte(strings.TrimRight(string(b), "\r\n"))
	}
	if len(secret) == 0 {
		return "", errors.New("no credential: give --credential-env VAR, or set the config's identity.account secret")
	}
	now := time.Now()
	enc := base64.RawURLEncoding
	claims, _ := json.Marshal(map[string]any{"sub": account, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "created": now.Add(-365 * 24 * time.Hour).Unix()})
	msg := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(claims)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(msg))
	return "Bearer " + msg + "." + enc.EncodeToString(m.Sum(nil)), nil
}

// audienceDose, audienceOverlap head audience's dose and overlap tables.
const (
	audienceDose    = "people following at least k of the accounts"
	audienceOverlap = "overlap of the followers"
)

func printAudience(w io.Writer, r *audience.Result) {
	fmt.Fprintf(w, "audience of %d accounts (exact): %d distinct people follow at least one; %d pages in %d requests\n", r.Accounts, r.Audience, r.Pages, r.Requests)
	tw := newTable(w)
	fmt.Fprintln(tw, "ACCOUNT\tFOLLOWERS")
	for _, c := range r.Lists {
		fmt.Fprintf(tw, "%s\t%d\n", c.Account, c.Followers)
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
