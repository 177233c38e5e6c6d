package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"math"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/privacy"
	"github.com/warden-gw/warden/internal/refusal"
)

// figure is one noisy number the transparency page publishes.
type figure struct {
	Name  string `json:"name"`
	Value int64  `json:"value"`
	Low   int64  `json:"low"`
	High  int64  `json:"high"`
}

// release is one day's transparency answer, as kept with its budget (a
// repeat of the same day is the same answer, free).
type release struct {
	Day        string   `json:"day"`
	ThirdParty []figure `json:"third_party"` // per registered app
	Stopped    figure   `json:"stopped"`     // identities refused that day (StopRules)
	Epsilon    string   `json:"epsilon"`
	Guarantee  string   `json:"guarantee"`
	Mechanism  string   `json:"mechanism"`
	Confidence float64  `json:"confidence"`
}

type transparencyPage struct {
	R      *release
	Budget *privacy.Account
	// DaysLeft is how many more days' figures the remaining budget pays
	// for (shown signed in): then the public page stops publishing.
	DaysLeft int
	Refused  string
	HasApps  bool
	Epsilon  string
	Interval string
}

// transparency publishes, for the last full UTC day, how many distinct
// people's contact details each registered app (a third party) was served
// and how many identities were refused for harvesting (StopRules, counted
// from the ledger: refusedIdentities), each with noise
// (discrete Laplace) and the guarantee, charged once a day to the
// "transparency" budget: asked again the same day, the same answer.
func (d *Dashboard) transparency(w http.ResponseWriter, r *http.Request) {
	v := view{Title: "Transparency", Nav: "transparency"}
	if s := d.session(r); s != nil {
		v.CSRF, v.Signed = s.csrf, true
	}
	p := transparencyPage{Epsilon: d.opts.TransparencyEpsilon.FloatString(3)}
	if d.opts.LedgerDir == "" && d.opts.Fleet == nil {
		v.Error = "This gateway keeps no ledger: there is nothing to report."
		v.Data = p
		d.render(w, r, http.StatusOK, "transparency", v)
		return
	}
	rel, acct, err := d.release(r)
	var ex *privacy.ExhaustedError
	switch {
	case errors.As(err, &ex):
		p.Refused = "This day's figures are not published: the privacy budget set aside for this page is spent."
		p.Budget = &ex.Account
	case err != nil:
		v.Error = "The figures could not be computed (see the gateway's log)."
		d.opts.Logger.Error("dashboard: transparency", "error", err.Error())
	default:
		p.R, p.Budget = rel, &acct
	}
	p.HasApps = p.R != nil && len(p.R.ThirdParty) > 0
	if p.Budget != nil {
		p.DaysLeft = daysLeft(p.Budget.Remaining, d.opts.TransparencyEpsilon)
	}
	v.Data = p
	d.render(w, r, http.StatusOK, "transparency", v)
}

func (d *Dashboard) release(r *http.Request) (*release, privacy.Account, error) {
	now := d.opts.Now().UTC()
	end := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	start := end.AddDate(0, 0, -1)
	win := ledger.Window{From: start, To: end.Add(-time.Nanosecond)}
	var apps []string
	c := d.config()
	if c != nil {
		for _, k := range c.Identity.App.Keys {
			apps = append(apps, k.App)
		}
	}
	stopRules := StopRules(c)
	eps := d.opts.TransparencyEpsilon
	query := fmt.Sprintf("transparency\nday=%s\napps=%s\nstopped=%s\nepsilon=%s", start.Format(time.DateOnly), strings.Join(apps, ","),
		strings.Join(stopRules, ","), eps.RatString())
	charge := transparencyCharge(eps)
	whole := privacy.Mechanism{Epsilon: eps}
	draw := func(src privacy.Source) (json.RawMessage, error) {
		exact, err := d.servedToApps(r.Context(), win, apps)
		if err != nil {
			return nil, err
		}
		stopped, err := d.refusedIdentities(r.Context(), win, stopRules)
		if err != nil {
			return nil, err
		}
		exact = append(exact, int64(stopped))
		// One person may sit in every cell (served to every app, and
		// refused): each cell gets epsilon/cells, the release epsilon.
		per := privacy.Mechanism{Epsilon: new(big.Rat).Quo(eps, big.NewRat(int64(len(exact)), 1))}
		h, err := per.Release(src, exact)
		if err != nil {
			return nil, err
		}
		note := h.Note("person", privacy.Ledger)
		rel := release{Day: start.Format(time.DateOnly), Epsilon: eps.FloatString(3), Guarantee: whole.Guarantee("person", privacy.Ledger),
			Mechanism: note.Mechanism + " per figure, " + note.Parameter, Confidence: note.Confidence}
		for i := range exact {
			val, iv := h.Figure(func(c int) bool { return c == i })
			f := figure{Value: val, Low: iv.Low, High: iv.High}
			if i < len(apps) {
				f.Name = apps[i]
				rel.ThirdParty = append(rel.ThirdParty, f)
			} else {
				f.Name = StoppedName
				rel.Stopped = f
			}
		}
		return json.Marshal(rel)
	}
	// The page is public: a repeat of the day's question is answered from
	// memory, not by the budget's keeper (a file under a lock, or a
	// ClickHouse query on a fleet), so that nobody can make the gateway
	// ask ClickHouse once per request they send.
	if rel, acct, ok := d.released.get(query); ok {
		return rel, acct, nil
	}
	raw, acct, err := d.keeper().Answer(r.Context(), TransparencyResearcher, query, charge, draw)
	if err != nil {
		return nil, acct, err
	}
	var rel release
	if err := json.Unmarshal(raw, &rel); err != nil {
		return nil, acct, fmt.Errorf("dashboard: transparency answer: %w", err)
	}
	d.released.put(query, &rel, acct)
	return &rel, acct, nil
}

// releaseCache keeps the last transparency answer given: the same query
// (the day, the apps, epsilon) is the same answer, free, for the whole day.
type releaseCache struct {
	mu    sync.Mutex
	query string
	rel   *release
	acct  privacy.Account
}

func (c *releaseCache) get(query string) (*release, privacy.Account, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rel == nil || c.query != query {
		return nil, privacy.Account{}, false
	}
	// As the keeper says of a repeat: the same answer, charged nothing.
	acct := c.acct
	acct.Charged, acct.Repeat = "0", true
	return c.rel, acct, true
}

func (c *releaseCache) put(query string, rel *release, acct privacy.Account) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.query, c.rel, c.acct = query, rel, acct
}

var funcs = template.FuncMap{
	"itoa": itoa,
	"num": func(f float64) string {
		return strconv.FormatFloat(f, 'f', -1, 64)
	},
	"when": func(t any) string {
		switch x := t.(type) {
		case time.Time:
			if x.IsZero() {
				return "-"
			}
			return x.UTC().Format("2006-01-02 15:04:05Z")
		case *time.Time:
			if x == nil || x.IsZero() {
				return "-"
			}
			return x.UTC().Format("2006-01-02 15:04:05Z")
		}
		return "-"
	},
	"left": func(until, now time.Time) string {
		if until.IsZero() {
			return "no expiry"
		}
		return until.Sub(now).Round(time.Second).String()
	},
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"pct": func(f float64) string { return strconv.FormatFloat(100*f, 'f', 2, 64) + "%" },
	"get": func(v map[string][]string, k string) string {
		if len(v[k]) == 0 {
			return ""
		}
		return v[k][0]
	},
}

func itoa(i int) string { return strconv.Itoa(i) }

// servedToApps counts, per app, the distinct people whose contact details
// it was served in win: from the fleet's ledger when there is one, else
// from the directory in one pass over its Accesses (a reader keeps no
// hour decoded between queries, so a Distinct per app would decode the
// day once per app).
func (d *Dashboard) servedToApps(ctx context.Context, win ledger.Window, apps []string) ([]int64, error) {
	exact := make([]int64, 0, len(apps)+1)
	if f := d.opts.Fleet; f != nil {
		for _, a := range apps {
			n, err := f.Ledger.Distinct(ctx, win, identify.FacetApp, a, "contact")
			if err != nil {
				return nil, err
			}
			exact = append(exact, int64(n))
		}
		return exact, nil
	}
	rd, err := d.openLedger(ctx, win)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	ns, err := rd.DistinctEach(identify.FacetApp, apps, "contact")
	if err != nil {
		return nil, err
	}
	for _, n := range ns {
		exact = append(exact, int64(n))
	}
	return exact, nil
}

// StoppedName is the transparency page's name of its "harvesting
// stopped" figure.
const StoppedName = "identities refused for harvesting"

// StopRules are the rules whose refusals the transparency page counts as
// harvesting stopped: a ban (refusal.RuleBan: the detector's, or one an
// operator added: the ledger does not tell them apart) and the rationing
// rules that block, every budget's and the unreferenced rule's name (a
// rule whose action is mask never refuses, so its name counts nothing;
// named here, a budget that blocked part of the day and masks now is
// still counted). Not counted: rate limits (a burst of any client), the
// refusals at the edge or of credentials (refusal.RuleRequest,
// refusal.RuleIdentity), and the state store's or warden's own failures.
// Sorted: a fleet's gateways of one config ask the same question.
func StopRules(c *config.Config) []string {
	rules := []string{refusal.RuleBan}
	if c != nil {
		for _, b := range c.Ration.Budgets {
			rules = append(rules, b.Name)
		}
		if u := c.Ration.Unreferenced; u != nil {
			rules = append(rules, u.Name)
		}
	}
	slices.Sort(rules)
	return slices.Compact(rules)
}

// refusedIdentities counts the distinct identities refused in win by one
// of rules, each as its refusal named it: from the fleet's ledger when
// there is one, else from the directory, in one pass over its Accesses
// (a bit per identity counted, never the Accesses).
func (d *Dashboard) refusedIdentities(ctx context.Context, win ledger.Window, rules []string) (int, error) {
	if f := d.opts.Fleet; f != nil {
		return f.Ledger.RefusedIdentities(ctx, win, rules)
	}
	rd, err := d.openLedger(ctx, win)
	if err != nil {
		return 0, err
	}
	defer rd.Close()
	return rd.RefusedIdentities(rules)
}

// transparencyCharge is what one day's transparency page costs, rho
// epsilon²/2.
func transparencyCharge(eps *big.Rat) *big.Rat {
	charge := new(big.Rat).Mul(eps, eps)
	return charge.Quo(charge, big.NewRat(2, 1))
}

// daysLeft is how many days' transparency pages (each charged
// transparencyCharge(eps)) remaining, a budget's remaining rho, pays for;
// 0 when it does not parse.
func daysLeft(remaining string, eps *big.Rat) int {
	rem, ok := new(big.Rat).SetString(remaining)
	charge := transparencyCharge(eps)
	if !ok || rem.Sign() <= 0 || charge.Sign() <= 0 {
		return 0
	}
	q := new(big.Int).Quo(new(big.Int).Mul(rem.Num(), charge.Denom()), new(big.Int).Mul(rem.Denom(), charge.Num()))
	if !q.IsInt64() || q.Int64() > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(q.Int64())
}

// FewDaysLeft: below this many days of transparency figures left in its
// budget, the gateway warns once a day (checkTransparencyBudget).
const FewDaysLeft = 7

// checkTransparencyBudget warns, once a UTC day (the first check of the
// day), when the transparency page's budget pays for fewer than
// FewDaysLeft more days of figures: past it the public page stops
// publishing. A gateway without a ledger has no such page.
func (d *Dashboard) checkTransparencyBudget(ctx context.Context) {
	if d.opts.LedgerDir == "" && d.opts.Fleet == nil {
		return
	}
	now := d.opts.Now().UTC()
	day := now.Format(time.DateOnly)
	if d.budgetChecked == day {
		return
	}
	d.budgetChecked = day
	acct, err := d.standing(ctx, TransparencyResearcher)
	if err != nil {
		d.opts.Logger.LogAttrs(ctx, slog.LevelWarn, "dashboard: the transparency page's privacy budget could not be read", slog.String("error", err.Error()))
		return
	}
	if n := daysLeft(acct.Remaining, d.opts.TransparencyEpsilon); n < FewDaysLeft {
		d.opts.Logger.LogAttrs(ctx, slog.LevelWarn, "dashboard: the transparency page's privacy budget is nearly spent: after these days' figures the public page stops publishing "+
			"(ledger.privacy.researchers.transparency raises it)",
			slog.Int("days_left", n), slog.String("remaining_rho", acct.Remaining), slog.String("budget_rho", acct.Limit),
			slog.String("rho_a_day", transparencyCharge(d.opts.TransparencyEpsilon).RatString()))
	}
}
