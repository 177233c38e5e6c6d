package main

import (
	"context"
	"fmt"
	"io"
	"math/bits"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/warden-gw/warden/internal/admin"
	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/ledger"
)

// explanation is the decision on one request, from the ledger.
type explanation struct {
	RequestID    string            `json:"request_id"`
	File         string            `json:"file"`
	Time         time.Time         `json:"time"`
	Route        string            `json:"route"`
	Status       int               `json:"status"`
	Decision     string            `json:"decision"` // served, masked or refused
	Rule         string            `json:"rule,omitempty"`
	Facet        string            `json:"facet,omitempty"`
	MaskRules    []string          `json:"mask_rules"`
	Identity     map[string]string `json:"identity"`
	List         string            `json:"list,omitempty"`
	Unreferenced bool              `json:"unreferenced"`
	Records      int               `json:"records"`
	Served       map[string]int    `json:"served"` // class -> records served with it
	Masked       map[string]int    `json:"masked"` // class -> records it was masked on
	Budgets      []budgetSeen      `json:"budgets"`
}

// budgetSeen is what one budget of the config counted for this request's
// identity before it: distinct subjects of its class served unmasked to
// the facet's value within its window (from the ledger, so only what the
// ledger recorded).
type budgetSeen struct {
	Name    string `json:"name"`
	Facet   string `json:"facet"`
	Value   string `json:"value"`
	Class   string `json:"class"`
	Window  string `json:"window"`
	Seen    int    `json:"seen"`
	Limit   int    `json:"limit"`
	AgeTier bool   `json:"age_tiers"` // the limit is lower for young accounts
	Applied bool   `json:"applied"`   // this budget refused or masked the request
}

func explainRequest(ctx context.Context, src ledger.Source, cfg *config.Config, win ledger.Window, id string) (*explanation, error) {
	if id == "" {
		return nil, badQuery("a request id is required")
	}
	found, err := src.Find(ctx, win, id)
	if err != nil {
		return nil, err
	}
	if found == nil {
		return nil, fmt.Errorf("%w: no request %s in the ledger %s", admin.ErrNotFound, id, src)
	}
	e := found.Entry
	x := &explanation{RequestID: id, File: found.File, Time: e.Time, Route: e.Route, Status: e.Status, Rule: e.Rule, Facet: e.Facet,
		MaskRules: append([]string{}, e.MaskRules...), Identity: map[string]string{}, List: e.List, Unreferenced: e.Unreferenced,
		Records: len(e.Records), Served: map[string]int{}, Masked: map[string]int{}, Budgets: []budgetSeen{}}
	for _, f := range identify.Facets {
		if v := e.Identity[f-1]; v != "" {
			x.Identity[f.String()] = v
		}
	}
	for _, rc := range e.Records {
		for s := rc.Classes; s != 0; s &= s - 1 {
			i := bits.TrailingZeros64(s)
			if i >= len(e.Classes) {
				continue
			}
			if rc.Masked&(1<<uint(i)) != 0 {
				x.Masked[e.Classes[i]]++
			} else {
				x.Served[e.Classes[i]]++
			}
		}
	}
	switch {
	case e.Rule != "" || e.Status >= 400:
		x.Decision = "refused"
	case len(x.Masked) > 0:
		x.Decision = "masked"
	default:
		x.Decision = "served"
	}
	if cfg == nil {
		return x, nil
	}
	for _, b := range cfg.Ration.Budgets {
		f, ok := identify.ParseFacet(b.Facet)
		if !ok {
			continue
		}
		val := e.Identity[f-1]
		if val == "" {
			continue
		}
		seen, err := src.Distinct(ctx, ledger.Window{From: e.Time.Add(-b.Window), To: e.Time.Add(-time.Microsecond)}, f, val, b.Class)
		if err != nil {
			return nil, err
		}
		x.Budgets = append(x.Budgets, budgetSeen{Name: b.Name, Facet: b.Facet, Value: val, Class: b.Class, Window: b.Window.String(),
			Seen: seen, Limit: b.Limit, AgeTier: len(b.AccountAge) > 0,
			Applied: e.Rule == b.Name || slices.Contains(e.MaskRules, b.Name)})
	}
	return x, nil
}

// runExplain: warden explain REQUEST_ID.
func runExplain(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("explain", stderr)
	qf := addQueryFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: warden explain REQUEST_ID [--ledger DIR | --config FILE] [--json]")
		fs.PrintDefaults()
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return errUsage
	}
	if len(pos) != 1 {
		fs.Usage()
		return errUsage
	}
	return runQueryCommand(fs, qf, "explain", url.Values{"id": {pos[0]}}, stdout, func(w io.Writer, v any) error {
		x := v.(*explanation)
		tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
		fmt.Fprintf(tw, "request\t%s\n", x.RequestID)
		fmt.Fprintf(tw, "time\t%s\n", x.Time.Format(time.RFC3339Nano))
		fmt.Fprintf(tw, "route\t%s\n", x.Route)
		d := fmt.Sprintf("%s (status %d)", x.Decision, x.Status)
		if x.Rule != "" {
			d += fmt.Sprintf(": rule %s, facet %s", x.Rule, x.Facet)
		}
		if len(x.MaskRules) > 0 {
			d += ": masked by " + strings.Join(x.MaskRules, ", ")
		}
		fmt.Fprintf(tw, "decision\t%s\n", d)
		var ids []string
		for _, f := range identify.Facets {
			if v, ok := x.Identity[f.String()]; ok {
				ids = append(ids, f.String()+"="+v)
			}
		}
		fmt.Fprintf(tw, "identity\t%s\n", strings.Join(ids, " "))
		if x.List != "" {
			fmt.Fprintf(tw, "list\t%s\n", x.List)
		}
		if x.Unreferenced {
			fmt.Fprintf(tw, "look-up\tof an id never shown to the identity (unreferenced)\n")
		}
		fmt.Fprintf(tw, "records\t%d; classes served %v, masked %v\n", x.Records, x.Served, x.Masked)
		fmt.Fprintf(tw, "ledger\t%s\n", x.File)
		tw.Flush()
		if len(x.Budgets) > 0 {
			fmt.Fprintln(w, "\nbudgets: distinct subjects of the class served to the facet's value within the window before this request")
			tw = tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
			fmt.Fprintln(tw, "BUDGET\tFACET\tVALUE\tCLASS\tWINDOW\tSEEN\tLIMIT\tAPPLIED")
			for _, b := range x.Budgets {
				lim := fmt.Sprint(b.Limit)
				if b.AgeTier {
					lim += " (less if young)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%v\n", b.Name, b.Facet, b.Value, b.Class, b.Window, b.Seen, lim, b.Applied)
			}
			tw.Flush()
		}
		return nil
	})
}
