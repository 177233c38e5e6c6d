package explain

import (
	"context"
	"fmt"
	"math/bits"
	"slices"
	"time"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/ration"
	"github.com/warden-gw/warden/internal/refusal"
)

// Ledger is what an explanation reads: the Access of a request id, and the
// distinct subjects a facet value was served before it. Any ledger.Source
// (a directory, ClickHouse) is one.
type Ledger interface {
	// Find returns the Access of requestID, nil when win holds none.
	Find(ctx context.Context, win ledger.Window, requestID string) (*ledger.Found, error)
	// Distinct counts the distinct subjects of class served unmasked to
	// the facet's value in win.
	Distinct(ctx context.Context, win ledger.Window, by identify.Facet, value, class string) (int, error)
}

// Explanation is the decision on one request, from the ledger. Its JSON is
// what `warden explain --json` prints and the admin API answers.
type Explanation struct {
	RequestID    string            `json:"request_id"`
	File         string            `json:"file"` // the ledger's file (or table) that holds the Access
	Time         time.Time         `json:"time"`
	Route        string            `json:"route"`
	Status       int               `json:"status"`
	Decision     string            `json:"decision"` // Served, Masked, Refused, UpstreamError or UpstreamFailed
	Rule         string            `json:"rule,omitempty"`
	Facet        string            `json:"facet,omitempty"`
	MaskRules    []string          `json:"mask_rules"`
	Identity     map[string]string `json:"identity"` // facet name -> value, present facets only
	List         string            `json:"list,omitempty"`
	Unreferenced bool              `json:"unreferenced"`
	Records      int               `json:"records"`
	Served       map[string]int    `json:"served"` // class -> records served with it
	Masked       map[string]int    `json:"masked"` // class -> records it was masked on
	Budgets      []Budget          `json:"budgets"`
}

// The decisions, Explanation.Decision's values.
const (
	// Served: the upstream's answer went out, nothing masked.
	Served = "served"
	// Masked: the upstream's answer went out with fields masked (MaskRules).
	Masked = "masked"
	// Refused: warden answered in place of the upstream, or before asking
	// it (Rule and Facet say which rule).
	Refused = "refused"
	// UpstreamError: the upstream answered 400 or more and warden passed
	// that answer on (Status is the upstream's).
	UpstreamError = "upstream_error"
	// UpstreamFailed: the upstream gave no answer warden could send (down,
	// slow, too large) and warden answered 502 or 504 itself (499: the
	// client left first).
	UpstreamFailed = "upstream_failed"
)

// decision says what happened to a request from what the gateway recorded:
// a rule on every answer warden made in place of the upstream's (refusal.Own
// names warden's own, "upstream" among them, and no configured rule may take
// them), none on an upstream's answer it passed on, whatever its status.
func decision(rule string, status int, masked bool) string {
	switch {
	case rule == refusal.RuleUpstream:
		return UpstreamFailed
	case rule != "":
		return Refused
	case status >= 400:
		return UpstreamError
	case masked:
		return Masked
	}
	return Served
}

// Budget is what one budget of the config counted for the request's
// identity before it: distinct subjects of its class served unmasked to
// the facet's value within its window (from the ledger, so only what the
// ledger recorded).
type Budget struct {
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

// Request explains request id from l, the Access searched in win (zero:
// the whole ledger), with a row per budget of budgets whose facet the
// identity has (none: no rows). It returns nil when win holds no Access
// of that id.
func Request(ctx context.Context, l Ledger, budgets []ration.BudgetConfig, win ledger.Window, id string) (*Explanation, error) {
	found, err := l.Find(ctx, win, id)
	if err != nil {
		return nil, fmt.Errorf("explain %s: %w", id, err)
	}
	if found == nil {
		return nil, nil
	}
	e := found.Entry
	x := &Explanation{RequestID: id, File: found.File, Time: e.Time, Route: e.Route, Status: e.Status, Rule: e.Rule, Facet: e.Facet,
		MaskRules: append([]string{}, e.MaskRules...), Identity: map[string]string{}, List: e.List, Unreferenced: e.Unreferenced,
		Records: len(e.Records), Served: map[string]int{}, Masked: map[string]int{}, Budgets: []Budget{}}
	for _, f := range identify.Facets {
		if v := e.Identity[f-1]; v != "" {
			x.Identity[f.String()] = v
		}
	}
	for _, rc := range e.Records {
		for s := rc.Classes; s != 0; s &= s - 1 {
			i := bits.TrailingZeros64(s)
			if i >= len(e.Classes) {
				continue // a bit the route names no class for
			}
			if rc.Masked&(1<<uint(i)) != 0 {
				x.Masked[e.Classes[i]]++
			} else {
				x.Served[e.Classes[i]]++
			}
		}
	}
	x.Decision = decision(e.Rule, e.Status, len(x.Masked) > 0)
	for _, b := range budgets {
		f, ok := identify.ParseFacet(b.Facet)
		if !ok {
			continue
		}
		val := e.Identity[f-1]
		if val == "" {
			continue
		}
		// Before the request: its own records are not in its budget's count.
		seen, err := l.Distinct(ctx, ledger.Window{From: e.Time.Add(-b.Window), To: e.Time.Add(-time.Microsecond)}, f, val, b.Class)
		if err != nil {
			return nil, fmt.Errorf("explain %s: budget %s: %w", id, b.Name, err)
		}
		x.Budgets = append(x.Budgets, Budget{Name: b.Name, Facet: b.Facet, Value: val, Class: b.Class, Window: b.Window.String(),
			Seen: seen, Limit: b.Limit, AgeTier: len(b.AccountAge) > 0,
			Applied: e.Rule == b.Name || slices.Contains(e.MaskRules, b.Name)})
	}
	return x, nil
}
