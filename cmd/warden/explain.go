package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/warden-gw/warden/internal/admin"
	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/explain"
	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/ration"
	"github.com/warden-gw/warden/internal/refusal"
	"github.com/warden-gw/warden/internal/store"
	"github.com/warden-gw/warden/internal/store/memory/disk"
	"github.com/warden-gw/warden/internal/store/redis"
)

// explainRequest is the explain query: the explanation of request id,
// with the budgets and rate limits of cfg (nil: none).
func explainRequest(ctx context.Context, src ledger.Source, cfg *config.Config, win ledger.Window, id string) (*explain.Explanation, error) {
	if id == "" {
		return nil, badQuery("a request id is required")
	}
	rules := explain.RulesOf(cfg)
	switch {
	case cfg == nil:
	case cfg.Store.Backend == config.StoreMemory && cfg.Store.Memory.Dir != "":
		// The state directory's ban log keeps every ban put and lifted
		// (until compacted): what a ban's reason is read from, by the
		// command and the gateway's admin API alike.
		rules.Bans = banLogDir(cfg.Store.Memory.Dir)
	case cfg.Store.Backend == config.StoreRedis:
		// Redis keeps the bans held now, not those ended.
		rules.Bans = redisBans(cfg.Store.Redis)
	}
	x, err := explain.Request(ctx, src, rules, win, id)
	if err == nil && x == nil {
		err = fmt.Errorf("%w: no request %s in the ledger %s%s", admin.ErrNotFound, id, src, notRecorded(win))
	}
	return x, err
}

// banLogDir is the ban log of a state directory (store.memory.dir), read
// only.
type banLogDir string

func (d banLogDir) BanHistory(_ context.Context, k store.BanKey) ([]store.BanChange, error) {
	return disk.BanHistory(string(d), k)
}

// redisBans is the bans a Redis store holds now: a ban ended (expired or
// lifted) is gone from it, reason and all.
type redisBans redis.Config

func (c redisBans) BanHistory(ctx context.Context, k store.BanKey) ([]store.BanChange, error) {
	cfg := redis.Config(c)
	cfg.Lease.Tokens = 1 // no leases, no ban mirror: one look-up, then closed
	s, err := redis.New(ctx, cfg, redis.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	b, err := s.BanOf(ctx, k, time.Now())
	if b == nil || err != nil {
		return nil, err
	}
	return []store.BanChange{{Ban: *b}}, nil
}

// notRecorded says why a request id may be missing from the ledger: what
// is never recorded and, when a window was asked, the window.
func notRecorded(win ledger.Window) string {
	const what = "the ledger records answers on the route map's routes, refusals and upstream failures, not an answer on a path outside the route map"
	var w string
	switch {
	case !win.From.IsZero() && !win.To.IsZero():
		w = fmt.Sprintf(" from %s to %s", fmtTime(&win.From), fmtTime(&win.To))
	case !win.From.IsZero():
		w = " from " + fmtTime(&win.From)
	case !win.To.IsZero():
		w = " up to " + fmtTime(&win.To)
	default:
		return ": " + what
	}
	return w + ": it may be outside that window, or not recorded (" + what + ")"
}

// fmtClassCounts writes class counts as "contact 1, profile 3" (classes
// sorted), "none" without any.
func fmtClassCounts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, c := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", c, m[c]))
	}
	return strings.Join(parts, ", ")
}

// runExplain: warden explain REQUEST_ID.
func runExplain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("explain", stderr)
	qf := addQueryFlags(fs)
	pos, err := positionals(fs, args, 1, "usage: warden explain REQUEST_ID [--ledger DIR | --clickhouse ADDR] [--config FILE] [--from T] [--to T] [--json]")
	if err != nil {
		return err
	}
	return runQueryCommand(ctx, fs, qf, "explain", url.Values{"id": {pos[0]}}, stdout, func(w io.Writer, v any) error {
		x := v.(*explain.Explanation)
		tw := newTable(w)
		fmt.Fprintf(tw, "request\t%s\n", x.RequestID)
		fmt.Fprintf(tw, "time\t%s\n", x.Time.Format(time.RFC3339Nano))
		route := x.Route
		if route == "" {
			route = "none (not a route of the route map)"
		}
		fmt.Fprintf(tw, "route\t%s\n", route)
		edge := x.Rule == refusal.RuleRequest
		d := fmt.Sprintf("%s (status %d)", x.Decision, x.Status)
		switch {
		case edge:
			d += fmt.Sprintf(": rule %s, reason %s: refused at the gateway's edge, before any budget or rate limit was asked", x.Rule, x.Facet)
		case x.Decision == explain.Refused:
			d += fmt.Sprintf(": rule %s, facet %s", x.Rule, x.Facet)
			d += refusalGloss(x.Rule, x.Facet)
		case x.Decision == explain.UpstreamError:
			d += ": the upstream's answer, passed on unchanged"
		case x.Decision == explain.UpstreamFailed:
			d += ": the upstream gave no answer warden could send; warden answered"
		}
		if len(x.MaskRules) > 0 {
			d += ": masked by " + strings.Join(x.MaskRules, ", ")
		}
		fmt.Fprintf(tw, "decision\t%s\n", d)
		if b := x.Ban; b != nil {
			fmt.Fprintf(tw, "ban\t%s\n", fmtBan(b))
		}
		var ids []string
		for _, f := range identify.Facets {
			if v, ok := x.Identity[f.String()]; ok {
				ids = append(ids, f.String()+"="+v)
			}
		}
		if len(ids) == 0 {
			ids = append(ids, "none known")
		}
		fmt.Fprintf(tw, "identity\t%s\n", strings.Join(ids, " "))
		if x.List != "" {
			fmt.Fprintf(tw, "list\t%s\n", x.List)
		}
		if x.Unreferenced {
			fmt.Fprintf(tw, "look-up\tof an id never shown to the identity (unreferenced)\n")
		}
		fmt.Fprintf(tw, "records\t%d; classes served %s; masked %s\n", x.Records, fmtClassCounts(x.Served), fmtClassCounts(x.Masked))
		fmt.Fprintf(tw, "ledger\t%s\n", x.File)
		tw.Flush()
		if qf.loaded == nil && !edge {
			// The counts come from the config's rules: say so rather than
			// let their absence read as "none applied".
			fmt.Fprintln(w, "\nbudgets and rate limits: not shown; give --config FILE (the config the gateway ran with) for what each had counted")
		}
		if len(x.Budgets) > 0 {
			fmt.Fprintln(w, "\nbudgets: distinct subjects of the class served to the facet's value (with the account, for a budget identified: own) in the budget's window as it stood before this request (windows are tumbling: a 24h one began at 00:00 UTC)")
			tw = newTable(w)
			fmt.Fprintln(tw, "BUDGET\tFACET\tVALUE\tCLASS\tWINDOW\tSEEN\tLIMIT\tAPPLIED")
			bound := false
			for _, b := range x.Budgets {
				lim := fmt.Sprint(b.Limit)
				if b.AgeTier {
					// A value accounts share: a young account's tier
					// counts the young accounts' only, SEEN everyone's.
					shared := b.Facet != "account" && b.Account == ""
					switch {
					case b.TierUnknown && shared:
						lim += " (less if young, counting its tier's accounts only)"
					case b.TierUnknown:
						lim += " (less if young)"
					case b.YoungerThan != "" && shared:
						lim = fmt.Sprintf("%d (account younger than %s, counting its tier's accounts only; %d past it)", b.LimitApplied, b.YoungerThan, b.Limit)
					case b.YoungerThan != "":
						lim = fmt.Sprintf("%d (account younger than %s; %d past it)", b.LimitApplied, b.YoungerThan, b.Limit)
					default:
						lim += " (no age tier applied)"
					}
				}
				v := b.Value
				if b.Account != "" {
					v += " account=" + b.Account
				}
				class, seen := b.Class, fmt.Sprint(b.Seen)
				if len(b.Provenance) > 0 {
					class += " [" + strings.Join(b.Provenance, ",") + "]"
				}
				if b.UpperBound {
					seen, bound = "<="+seen, true
				}
				applied := fmt.Sprint(b.Applied)
				if b.Mode == string(ration.Shadow) {
					// Never applied: say what it would have done.
					applied = "false (shadow mode)"
					if b.WouldApply {
						applied = map[bool]string{false: "false (shadow mode: would have masked)", true: "false (shadow mode: would have refused)"}[b.Action == ration.Block]
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.Name, b.Facet, v, class, b.Window, seen, lim, applied)
			}
			tw.Flush()
			if bound {
				fmt.Fprintln(w, "<=: the budget counts only records whose ids were shown to the identity the ways it names [in brackets]; the ledger keeps whether a look-up was unreferenced, not how a referenced id was shown, so SEEN counts records of every provenance: an upper bound")
			}
		}
		if len(x.RateLimits) > 0 {
			fmt.Fprintln(w, "\nrate limits: requests recorded from the value (with the account, for a limit identified: own) on the limit's routes within its burst window before this request; it admits at most ADMITS in any such window")
			tw = newTable(w)
			fmt.Fprintln(tw, "LIMIT\tFACET\tVALUE\tRATE\tBURST\tWINDOW\tSEEN\tADMITS\tAPPLIED")
			for _, r := range x.RateLimits {
				v := r.Value
				if r.Account != "" {
					v += " account=" + r.Account
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%d\t%d\t%v\n", r.Name, r.Facet, v, r.Rate, r.Burst, r.Window, r.Seen, r.Admits, r.Applied)
			}
			tw.Flush()
		}
		return nil
	})
}

// fmtBan says what is known of the ban that refused a request.
func fmtBan(b *explain.Ban) string {
	s := fmt.Sprintf("on %s %s", b.Facet, b.Value)
	if b.Unavailable != "" {
		return s + ": its reason is not known: the ban store could not be read (" + b.Unavailable + ")"
	}
	if b.State == explain.BanUnknown {
		return s + ": its reason is not known: no ban log was read (--config FILE with store.memory.dir), or the ban has ended since and nothing keeps it (Redis keeps only the bans held; a log is compacted)"
	}
	s += fmt.Sprintf(", reason %q", b.Reason)
	if b.By != "" {
		s += ", by " + b.By
	}
	s += ", from " + fmtTime(b.Created)
	if b.Until != nil {
		s += " until " + fmtTime(b.Until)
	}
	switch b.State {
	case explain.BanHeld:
		return s + "; still held"
	case explain.BanExpired:
		return s + "; expired since"
	case explain.BanLifted:
		return s + "; lifted since (warden ban rm)"
	case explain.BanReplaced:
		return s + "; replaced since by a later ban on the same value"
	}
	return s
}

// refusalGloss says in words what the refusals named by a stage rather
// than by a configured rule mean ("" for the rest: their rule is the
// config's name).
func refusalGloss(rule, facet string) string {
	switch {
	case rule == refusal.RuleStore && facet == refusal.StoreAdmit:
		return ": the state store failed at admission, before any rate limit was asked"
	case rule == refusal.RuleStore && facet == refusal.StoreRation:
		return ": the state store failed while the answer's budgets were counted, after the rate limits admitted it"
	case rule == refusal.RuleInternal && facet == refusal.InternalAnswering:
		return ": warden failed while it made the answer; the 500 replaced an answer already decided"
	case rule == refusal.RuleInternal:
		return ": warden failed while it served the request"
	}
	return ""
}
