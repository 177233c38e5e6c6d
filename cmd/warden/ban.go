package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/warden-gw/warden/internal/admin"
	"github.com/warden-gw/warden/internal/store"
)

const banUsage = `usage: warden ban [flags] ls|add|rm [flags]

  ls   [--facet F] [--limit N] [--json]      list unexpired bans
  add  --facet F --value V [--reason R] (--ttl D | --until T)
  rm   --facet F --value V

flags (before or after the subcommand):
`

// banClient talks to the admin API; its fields are the shared flags.
type banClient struct {
	admin     string
	tokenFile string
	tokenEnv  string
	by        string

	token string
	http  *http.Client
}

func (c *banClient) flags(fs *flag.FlagSet) {
	// Defaults are the current values, so flags given before the
	// subcommand survive the subcommand's own flag set.
	fs.StringVar(&c.admin, "admin", c.admin, "admin API base `URL`")
	fs.StringVar(&c.tokenFile, "token-file", c.tokenFile, "read the admin token from `FILE` (mode 0600 or 0640)")
	fs.StringVar(&c.tokenEnv, "token-env", c.tokenEnv, "read the admin token from environment variable `NAME`, unless --token-file is given")
	fs.StringVar(&c.by, "by", c.by, "operator `NAME` recorded with a ban (X-Warden-Operator)")
}

// runBan lists, adds or removes bans through the admin API.
func runBan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := &banClient{admin: "http://127.0.0.1:9090", tokenEnv: "WARDEN_ADMIN_TOKEN", by: os.Getenv("USER")}
	fs := newFlags("ban", stderr)
	c.flags(fs)
	fs.Usage = func() { fmt.Fprint(stderr, banUsage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errUsage
	}
	sub, rest := fs.Arg(0), fs.Args()[1:]
	sfs := newFlags("ban "+sub, stderr)
	c.flags(sfs)
	var run func(ctx context.Context) error
	switch sub {
	case "ls", "list":
		var asJSON bool
		var facet string
		var limit int
		sfs.BoolVar(&asJSON, "json", false, "print the API's JSON answer")
		sfs.StringVar(&facet, "facet", "", "only bans on `FACET`")
		sfs.IntVar(&limit, "limit", 1000, "list at most `N` bans")
		run = func(ctx context.Context) error { return c.list(ctx, stdout, facet, limit, asJSON) }
	case "add":
		var req banAdd
		sfs.StringVar(&req.Facet, "facet", "", "facet: app, account, ip, net or fingerprint")
		sfs.StringVar(&req.Value, "value", "", "facet value (net: a CIDR like 10.1.2.0/24)")
		// A default, as cscli's: the API keeps a reason with every ban, and
		// "warden ban add --facet ip --value V --ttl 24h" is how an operator
		// in a hurry (and issue 19) writes it.
		sfs.StringVar(&req.Reason, "reason", "manual ban", "why, kept with the ban")
		sfs.StringVar(&req.TTL, "ttl", "", "ban `DURATION`, like 24h")
		sfs.StringVar(&req.Until, "until", "", "ban until `TIME` (RFC 3339)")
		run = func(ctx context.Context) error { return c.add(ctx, stdout, req) }
	case "rm", "remove":
		var facet, value string
		sfs.StringVar(&facet, "facet", "", "facet of the ban")
		sfs.StringVar(&value, "value", "", "value of the ban")
		run = func(ctx context.Context) error { return c.remove(ctx, stdout, facet, value) }
	default:
		fmt.Fprintf(stderr, "warden ban: unknown subcommand %q\n", sub)
		fs.Usage()
		return errUsage
	}
	if err := sfs.Parse(rest); err != nil {
		return err
	}
	if sfs.NArg() > 0 {
		fmt.Fprintf(stderr, "warden ban %s: unexpected argument %q\n", sub, sfs.Arg(0))
		return errUsage
	}
	if err := c.setup(fs, sfs); err != nil {
		return err
	}
	return run(ctx)
}

// setup checks the admin URL and loads the token.
func (c *banClient) setup(sets ...*flag.FlagSet) error {
	u, err := url.Parse(c.admin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--admin %q: want a URL like http://127.0.0.1:9090", c.admin)
	}
	c.admin = strings.TrimSuffix(u.String(), "/")
	env := c.tokenEnv
	if c.tokenFile != "" {
		env = ""
		for _, fs := range sets {
			if isSet(fs, "token-env") {
				return errors.New("give --token-file or --token-env, not both")
			}
		}
	}
	if c.token, err = admin.LoadToken(c.tokenFile, env); err != nil {
		return err
	}
	c.http = &http.Client{Timeout: 15 * time.Second}
	return nil
}

func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

type banAdd struct {
	Facet  string `json:"facet"`
	Value  string `json:"value"`
	Reason string `json:"reason"`
	TTL    string `json:"ttl,omitempty"`
	Until  string `json:"until,omitempty"`
}

func (c *banClient) add(ctx context.Context, stdout io.Writer, req banAdd) error {
	switch {
	case req.Facet == "" || req.Value == "":
		return errors.New("add: --facet and --value are required")
	case req.TTL == "" && req.Until == "":
		return errors.New("add: --ttl or --until is required")
	}
	if req.Until != "" {
		// Said here in the flag's terms, not as the API's JSON decoding error.
		if _, err := time.Parse(time.RFC3339, req.Until); err != nil {
			return fmt.Errorf("add: --until %q: want an RFC 3339 time such as 2030-01-02T15:04:05Z", req.Until)
		}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("add: encode request: %w", err)
	}
	var b store.Ban
	if err := c.call(ctx, http.MethodPost, "/v1/bans", body, &b); err != nil {
		return fmt.Errorf("add: %w", err)
	}
	fmt.Fprintf(stdout, "banned %s %s until %s (by %s)\n", b.Facet, b.Value, b.Until.Format(time.RFC3339), b.By)
	return nil
}

func (c *banClient) remove(ctx context.Context, stdout io.Writer, facet, value string) error {
	if facet == "" || value == "" {
		return errors.New("rm: --facet and --value are required")
	}
	// The query form carries any value; the path form is cleaned by the server's router.
	q := url.Values{"facet": {facet}, "value": {value}}
	if err := c.call(ctx, http.MethodDelete, "/v1/bans?"+q.Encode(), nil, nil); err != nil {
		return fmt.Errorf("rm: %w", err)
	}
	fmt.Fprintf(stdout, "removed ban on %s %s\n", facet, value)
	return nil
}

func (c *banClient) list(ctx context.Context, stdout io.Writer, facet string, limit int, asJSON bool) error {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if facet != "" {
		q.Set("facet", facet)
	}
	var raw json.RawMessage
	if err := c.call(ctx, http.MethodGet, "/v1/bans?"+q.Encode(), nil, &raw); err != nil {
		return fmt.Errorf("ls: %w", err)
	}
	if asJSON {
		var buf bytes.Buffer
		if err := json.Indent(&buf, raw, "", "  "); err != nil {
			return fmt.Errorf("ls: format answer: %w", err)
		}
		buf.WriteByte('\n')
		_, err := stdout.Write(buf.Bytes())
		return err
	}
	var l admin.BanListing
	if err := json.Unmarshal(raw, &l); err != nil {
		return fmt.Errorf("ls: decode answer: %w", err)
	}
	now := time.Now()
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FACET\tVALUE\tEXPIRES\tBY\tREASON")
	for _, b := range l.Bans {
		exp := "never"
		if !b.Until.IsZero() {
			exp = fmt.Sprintf("%s (in %s)", b.Until.UTC().Format(time.RFC3339), roughly(b.Until.Sub(now)))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", b.Facet, b.Value, exp, b.By, b.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if l.Total == 0 {
		fmt.Fprintln(stdout, "(no bans)")
	}
	if l.Truncated {
		fmt.Fprintf(stdout, "(%d of %d bans shown; raise --limit or filter with --facet)\n", len(l.Bans), l.Total)
	}
	return nil
}

// call sends one request and decodes a 2xx answer into out (if not nil).
// Failures say what to check: the address, the token, or the server's
// own validation message.
func (c *banClient) call(ctx context.Context, method, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.admin+path, rd)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.by != "" {
		req.Header.Set("X-Warden-Operator", c.by)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("admin API at %s refused the connection: is `warden serve` running with its admin listener there? (--admin)", c.admin)
		}
		return fmt.Errorf("admin API at %s: %w", c.admin, err)
	}
	defer resp.Body.Close()
	// Bans are listed at most 100,000 at a time; 64 MiB holds that.
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("admin API at %s: read answer: %w", c.admin, err)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return fmt.Errorf("admin API at %s refused the token (401): check %s", c.admin, c.tokenSource())
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			return fmt.Errorf("admin API at %s: HTTP %d (not warden's admin API?)", c.admin, resp.StatusCode)
		}
		return fmt.Errorf("%s (HTTP %d)", e.Error, resp.StatusCode)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("admin API at %s: decode answer: %w", c.admin, err)
	}
	return nil
}

// tokenSource names where the token came from, for error messages.
func (c *banClient) tokenSource() string {
	if c.tokenFile != "" {
		return "the token file " + c.tokenFile
	}
	return "$" + c.tokenEnv
}

// roughly prints d to the minute without zero tails: 1h30m, 24h, 5m.
func roughly(d time.Duration) string {
	if d < time.Minute {
		return "<1m"
	}
	s := d.Round(time.Minute).String()
	s = strings.TrimSuffix(s, "0s")
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
