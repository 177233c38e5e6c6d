package dashboard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/warden-gw/warden/internal/admin"
	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/explain"
	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/privacy"
	"github.com/warden-gw/warden/internal/reach"
)

// statusOf is the status a page answers when the admin API refused.
func statusOf(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return http.StatusInternalServerError
}

func errText(err error) string {
	var ae *apiError
	if errors.As(err, &ae) {
		// The page has the answer's status: its text starts with what was
		// wrong, as the command line's does (cliMessage), not with the
		// admin API's category, nor with the API's "invalid JSON body"
		// (the dashboard wrote the JSON, the user filled in a form).
		msg := ae.Msg
		for _, p := range []string{admin.ErrBadRequest.Error() + ": ", admin.ErrNotFound.Error() + ": ", "invalid JSON body: "} {
			msg = strings.TrimPrefix(msg, p)
		}
		return msg
	}
	return "failed (see the gateway's log)"
}

// ---- identities

type budgetCell struct {
	Budget, Class, Window string
	Seen, Limit           int
	Percent               int
}

type identityRow struct {
	Value    string
	Subjects int // distinct subjects of the ranking's class served in the last 24 hours
	Budgets  []budgetCell
}

type identityTable struct {
	Facet   string
	Budgets []string
	Rows    []identityRow
}

// identitiesPage is the identities page's data: the class it ranks by,
// why that one, the classes it may rank by, and a table per facet.
type identitiesPage struct {
	Class   string // "" ranks by every record
	Why     string // how the class was chosen
	Classes []string
	Tables  []identityTable
	// AnyRecords: the Watch does not count Class one by one (past its
	// first watchClasses), so its candidates are those served the most
	// records of any class, the ledger's counts then ranking them.
	AnyRecords bool
}

const topIdentities = 10

// everyRecord asks the identities page to rank by every record
// (?class=*): no class is named "*" (letters, digits, '_' and '-').
// "all" asks it too, as before, unless a class is named all.
const everyRecord = "*"

// rankClass is the class the identities page ranks by: the one asked
// (?class=, everyRecord: every record), else the class the config's budgets
// protect most (named by the most budgets; then the lowest limit; then
// by name), else every record. It says why, and lists the classes the
// page offers (the route map's and the budgets'). A class neither names
// is an error when there is a config: a typo is not "nobody took it".
func rankClass(cfg *config.Config, asked string) (class, why string, classes []string, err error) {
	type protected struct{ budgets, limit int }
	by := map[string]*protected{}
	if cfg != nil {
		classes = cfg.Inspect.ClassNames()
		for _, b := range cfg.Ration.Budgets {
			if !slices.Contains(classes, b.Class) {
				classes = append(classes, b.Class) // a config without a route map
			}
			p := by[b.Class]
			if p == nil {
				p = &protected{limit: b.Limit}
				by[b.Class] = p
			}
			p.budgets++
			p.limit = min(p.limit, b.Limit)
		}
	}
	slices.Sort(classes)
	switch {
	case asked == everyRecord || asked == "all" && !slices.Contains(classes, "all"):
		return "", "chosen on the page", classes, nil
	case asked != "":
		if cfg != nil && !slices.Contains(classes, asked) {
			return "", "", classes, fmt.Errorf("no route or budget names class %q", asked)
		}
		return asked, "chosen on the page", classes, nil
	}
	for _, c := range classes {
		p, q := by[c], by[class]
		if p != nil && (q == nil || p.budgets > q.budgets || p.budgets == q.budgets && p.limit < q.limit) {
			class = c
		}
	}
	if class == "" {
		return "", "default: no budget protects a class", classes, nil
	}
	p := by[class]
	return class, fmt.Sprintf("default: the class the budgets protect most (%d of %d budgets, lowest limit %d)", p.budgets, len(cfg.Ration.Budgets), p.limit), classes, nil
}

// identities ranks the identities by the ledger's counts: distinct
// subjects of a class (rankClass) served unmasked in 24 hours, or of
// every record, and what each budget on their facet counted within its
// window. From a directory it ranks the Watch's candidates (the
// identities this gateway served the most records of that class); on a
// fleet the fleet's ledger ranks every gateway's identities itself
// (topFleet).
func (d *Dashboard) identities(w http.ResponseWriter, r *http.Request) {
	begin := time.Now()
	v := view{Title: "Identities", Nav: "identities"}
	if d.opts.LedgerDir == "" && d.opts.Fleet == nil {
		v.Error = "No ledger on this gateway (ledger.dir): nothing to rank."
		d.render(w, r, http.StatusOK, "identities", v)
		return
	}
	cfg := d.config()
	page := identitiesPage{}
	var err error
	if page.Class, page.Why, page.Classes, err = rankClass(cfg, r.URL.Query().Get("class")); err != nil {
		v.Error, v.Data = err.Error(), page
		d.render(w, r, http.StatusBadRequest, "identities", v)
		return
	}
	fail := func(err error) {
		d.opts.Logger.LogAttrs(r.Context(), slog.LevelError, "dashboard: identities", slog.String("error", err.Error()))
		v.Error, v.Data = "ledger: "+err.Error(), identitiesPage{Class: page.Class, Why: page.Why, Classes: page.Classes}
		d.render(w, r, http.StatusOK, "identities", v)
	}
	now := d.opts.Now()
	var tops []fleetTop // per watched facet, on a fleet
	if d.opts.Fleet != nil {
		if tops, err = d.topFleet(r.Context(), now, page.Class); err != nil {
			fail(err)
			return
		}
	}
	// Each facet's candidates' subjects of the class in 24 hours, and
	// what each budget counted in its own window: from a directory every
	// count of one window in one pass over its Accesses (countDir), from
	// a fleet's ledger a query each (countFleet), the subjects already
	// counted by the ranking.
	var counts []identityCount
	var tables []identityTable
	var cells [][]budgetCell // per table, its budgets
	for fi, f := range watched {
		t := identityTable{Facet: f.String()}
		var bs []budgetCell
		if cfg != nil {
			for _, b := range cfg.Ration.Budgets {
				if b.Facet == f.String() {
					bs = append(bs, budgetCell{Budget: b.Name, Class: b.Class, Window: b.Window.String(), Limit: b.Limit})
					t.Budgets = append(t.Budgets, b.Name+" ("+b.Class+", "+b.Window.String()+")")
				}
			}
		}
		// A directory's counts come in one pass whatever their number, so
		// five times the rows shown are ranked; a fleet's ledger ranked
		// them already, the rows shown only. A class the Watch does not
		// count one by one has candidates by records of any class.
		cands, ok := d.opts.Watch.Top(f, page.Class, 5*topIdentities)
		page.AnyRecords = page.AnyRecords || !ok && tops == nil
		subjects := identityCount{win: 24 * time.Hour, q: ledger.DistinctQuery{By: f, Values: cands, Class: page.Class}}
		if tops != nil {
			subjects.q.Values, subjects.known = tops[fi].values, tops[fi].subjects
		}
		counts = append(counts, subjects)
		for _, b := range bs {
			win, _ := time.ParseDuration(b.Window)
			counts = append(counts, identityCount{win: win, q: ledger.DistinctQuery{By: f, Values: subjects.q.Values, Class: b.Class}})
		}
		tables, cells = append(tables, t), append(cells, bs)
	}
	count := d.countDir
	if d.opts.Fleet != nil {
		count = d.countFleet
	}
	seen, err := count(r.Context(), now, counts)
	if err != nil {
		fail(err)
		return
	}
	next := 0 // counts are in table order: subjects, then each budget
	for ti := range tables {
		t := &tables[ti]
		cands, subjects := counts[next].q.Values, seen[next]
		budgets := seen[next+1 : next+1+len(cells[ti])]
		next += 1 + len(cells[ti])
		for j, val := range cands {
			if subjects[j] == 0 {
				continue // served none of the class in 24 hours
			}
			ir := identityRow{Value: val, Subjects: subjects[j]}
			for i, b := range cells[ti] {
				b.Seen = budgets[i][j]
				if b.Limit > 0 {
					b.Percent = min(100, 100*b.Seen/b.Limit)
				}
				ir.Budgets = append(ir.Budgets, b)
			}
			t.Rows = append(t.Rows, ir)
		}
		sort.SliceStable(t.Rows, func(i, j int) bool { return t.Rows[i].Subjects > t.Rows[j].Subjects })
		if len(t.Rows) > topIdentities {
			t.Rows = t.Rows[:topIdentities]
		}
	}
	page.Tables = tables
	v.Data, v.Elapsed = page, time.Since(begin).String()
	d.render(w, r, http.StatusOK, "identities", v)
}

// identityCount is one column of the identities page: a DistinctQuery
// over the window ending now. known, when not nil, is its answer already
// (a fleet's ranking counted the subjects).
type identityCount struct {
	win   time.Duration
	q     ledger.DistinctQuery
	known []int
}

// fleetTop is one facet's identities as the fleet's ledger ranks them.
type fleetTop struct {
	values   []string
	subjects []int
}

// topFleet asks the fleet's ledger for each watched facet's top
// identities by distinct subjects of class ("": any) in 24 hours
// (FleetLedger.Top, the rows shown only), a query per facet, a few at a
// time: every gateway's identities, where the Watch knows only this
// gateway's.
func (d *Dashboard) topFleet(ctx context.Context, now time.Time, class string) ([]fleetTop, error) {
	tops := make([]fleetTop, len(watched))
	win := ledger.Window{From: now.Add(-24 * time.Hour), To: now}
	err := fleetEach(ctx, len(watched), func(ctx context.Context, i int) error {
		v, n, err := d.opts.Fleet.Ledger.Top(ctx, win, watched[i], class, topIdentities)
		if err != nil {
			return fmt.Errorf("%s: top %s: %w", d.opts.Fleet.Ledger, watched[i], err)
		}
		tops[i] = fleetTop{v, n} // each written by one call
		return nil
	})
	return tops, err
}

// countDir answers counts from the ledger directory: every count of one
// window in one pass over its Accesses (ledger.Reader.DistinctMany).
// Per count, per candidate.
func (d *Dashboard) countDir(ctx context.Context, now time.Time, counts []identityCount) ([][]int, error) {
	seen := make([][]int, len(counts))
	byWin := map[time.Duration][]int{}
	var wins []time.Duration
	for i, c := range counts {
		if byWin[c.win] == nil {
			wins = append(wins, c.win)
		}
		byWin[c.win] = append(byWin[c.win], i)
	}
	for _, win := range wins {
		rd, err := d.openLedger(ctx, ledger.Window{From: now.Add(-win), To: now})
		if err != nil {
			return nil, err
		}
		qs := make([]ledger.DistinctQuery, len(byWin[win]))
		for k, i := range byWin[win] {
			qs[k] = counts[i].q
		}
		res, err := rd.DistinctMany(qs)
		rd.Close()
		if err != nil {
			return nil, err
		}
		for k, n := range res {
			seen[byWin[win][k]] = n
		}
	}
	return seen, nil
}

// countFleet answers counts from the fleet's ledger, a Distinct query
// per count and candidate (the page asks only the rows it shows), a few
// at a time: ClickHouse answers each in a round trip, most of it waiting.
// A count known already is not asked.
func (d *Dashboard) countFleet(ctx context.Context, now time.Time, counts []identityCount) ([][]int, error) {
	seen := make([][]int, len(counts))
	type ask struct{ i, j int }
	var asks []ask
	for i, c := range counts {
		if c.known != nil {
			seen[i] = c.known
			continue
		}
		seen[i] = make([]int, len(c.q.Values))
		for j := range c.q.Values {
			asks = append(asks, ask{i, j})
		}
	}
	err := fleetEach(ctx, len(asks), func(ctx context.Context, k int) error {
		a := asks[k]
		c := counts[a.i]
		n, err := d.opts.Fleet.Ledger.Distinct(ctx, ledger.Window{From: now.Add(-c.win), To: now}, c.q.By, c.q.Values[a.j], c.q.Class)
		if err != nil {
			return fmt.Errorf("%s: distinct %s %q: %w", d.opts.Fleet.Ledger, c.q.By, c.q.Values[a.j], err)
		}
		seen[a.i][a.j] = n // each cell written by one call
		return nil
	})
	if err != nil {
		return nil, err
	}
	return seen, nil
}

// fleetEach calls fn for 0 to n-1, fleetQueries at a time, and returns
// the first error, the calls after it cancelled (their ctx ends).
func fleetEach(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	errs := make(chan error, fleetQueries)
	var wg sync.WaitGroup
	for range min(n, fleetQueries) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(ctx, i); err != nil {
					errs <- err
					cancel()
					return
				}
			}
		}()
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return ctx.Err()
	}
}

// fleetQueries bounds the identities page's queries in flight on the
// fleet's ledger.
const fleetQueries = 4

// tookBy is the ledger's took-by for one identity.
func (d *Dashboard) tookBy(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	v := view{Title: "Took by", Nav: "identities"}
	args := url.Values{"facet": {q.Get("facet")}, "value": {q.Get("value")}, "from": {orDefault(q.Get("from"), "24h")}}
	var res ledger.TookByResult
	code := http.StatusOK
	if err := d.call(r.Context(), http.MethodGet, "/v1/ledger/took-by?"+args.Encode(), nil, &res); err != nil {
		v.Error, code = errText(err), statusOf(err)
	} else {
		v.Data = struct {
			R    ledger.TookByResult
			From string
		}{res, args.Get("from")}
	}
	d.render(w, r, code, "tookby", v)
}

// ---- bans

type banPage struct {
	Bans      []admin.BanView
	Total     int
	Listed    bool // false: the store did not list the bans
	Truncated bool
	Facets    []string
	Form      url.Values
	Now       time.Time
}

const bansShown = 500

func (d *Dashboard) bans(w http.ResponseWriter, r *http.Request) {
	d.showBans(w, r, http.StatusOK, "", nil)
}

func (d *Dashboard) showBans(w http.ResponseWriter, r *http.Request, code int, msg string, form url.Values) {
	begin := time.Now()
	var bl admin.BanListing
	v := view{Title: "Bans", Nav: "bans", Error: msg}
	listed := true
	if err := d.call(r.Context(), http.MethodGet, "/v1/bans?limit=500", nil, &bl); err != nil {
		// Not "0 bans in force": the store did not say.
		v.Error, code, listed = errText(err), statusOf(err), false
	}
	switch r.URL.Query().Get("done") {
	case "added":
		v.Notice = "Ban added."
	case "removed":
		v.Notice = "Ban removed."
	}
	facets := make([]string, len(identify.Facets))
	for i, f := range identify.Facets {
		facets[i] = f.String()
	}
	if form == nil {
		form = url.Values{"ttl": {"1h"}}
	}
	v.Data = banPage{Bans: bl.Bans, Total: bl.Total, Listed: listed, Truncated: bl.Truncated, Facets: facets, Form: form, Now: d.opts.Now()}
	v.Elapsed = time.Since(begin).String()
	d.render(w, r, code, "bans", v)
}

func (d *Dashboard) addBan(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	// The API takes a ttl as a duration string or a number of seconds (its
	// error says so); a form sends text, so a number goes as a number.
	var ttl any = f.Get("ttl")
	if secs, err := strconv.ParseFloat(strings.TrimSpace(f.Get("ttl")), 64); err == nil && !math.IsNaN(secs) && !math.IsInf(secs, 0) {
		ttl = secs
	}
	body := map[string]any{"facet": f.Get("facet"), "value": strings.TrimSpace(f.Get("value")), "reason": f.Get("reason"), "ttl": ttl}
	if err := d.call(r.Context(), http.MethodPost, "/v1/bans", body, nil); err != nil {
		d.showBans(w, r, statusOf(err), errText(err), f)
		return
	}
	http.Redirect(w, r, "/bans?done=added", http.StatusSeeOther)
}

func (d *Dashboard) removeBan(w http.ResponseWriter, r *http.Request) {
	q := url.Values{"facet": {r.PostForm.Get("facet")}, "value": {r.PostForm.Get("value")}}
	if err := d.call(r.Context(), http.MethodDelete, "/v1/bans?"+q.Encode(), nil, nil); err != nil {
		d.showBans(w, r, statusOf(err), errText(err), nil)
		return
	}
	http.Redirect(w, r, "/bans?done=removed", http.StatusSeeOther)
}

// ---- explain

// explain shows the admin API's explanation of a request (package
// explain), as warden explain prints it.
func (d *Dashboard) explain(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimSpace(r.URL.Query().Get("id"))
	v := view{Title: "Explain", Nav: "explain"}
	code := http.StatusOK
	var x *explain.Explanation
	if id != "" {
		x = &explain.Explanation{}
		if err := d.call(r.Context(), http.MethodGet, "/v1/ledger/explain?"+url.Values{"id": {id}}.Encode(), nil, x); err != nil {
			v.Error, code, x = errText(err), statusOf(err), nil
		}
	}
	v.Data = struct {
		ID string
		X  *explain.Explanation
	}{id, x}
	d.render(w, r, code, "explain", v)
}

// ---- reach

type reachPage struct {
	Form     url.Values
	Exact    *reach.Result
	Private  *reach.PrivateResult
	Standing *privacy.Account
	Chart    any // the charts' data, as JSON in the page
}

// reachArgs are the admin API's reach arguments from a form.
func reachArgs(f url.Values) url.Values {
	a := url.Values{"authors": {f.Get("authors")}}
	for _, k := range []string{"from", "to", "overlap", "by"} {
		if s := strings.TrimSpace(f.Get(k)); s != "" {
			a.Set(k, s)
		}
	}
	if f.Get("dose") != "" {
		a.Set("dose", "true")
	}
	return a
}

func (d *Dashboard) reach(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := reachPage{Form: q}
	v := view{Title: "Reach", Nav: "reach"}
	code := http.StatusOK
	if strings.HasPrefix(q.Get("authors"), "@") {
		v.Error, code = "authors: give ids (a file is read by the command, not the dashboard)", http.StatusBadRequest
	} else if q.Get("authors") != "" {
		p.Exact = &reach.Result{}
		if err := d.call(r.Context(), http.MethodGet, "/v1/ledger/reach?"+reachArgs(q).Encode(), nil, p.Exact); err != nil {
			v.Error, code, p.Exact = errText(err), statusOf(err), nil
		} else {
			p.Chart = chartOf(p.Exact.Dose, p.Exact.Overlap)
		}
	}
	if who := q.Get("researcher"); who != "" && privacy.ValidResearcher(who) == nil {
		if a, err := d.standing(r.Context(), who); err == nil {
			p.Standing = &a
		} else if !errors.Is(err, errNoBudgets) {
			d.opts.Logger.LogAttrs(r.Context(), slog.LevelError, "dashboard: budget standing", slog.String("researcher", who), slog.String("error", err.Error()))
		}
	}
	v.Data = p
	d.render(w, r, code, "reach", v)
}

// reachDP is a DP answer for a named researcher: a POST, since it spends
// the researcher's budget.
var dpFormWords = strings.NewReplacer("dp-epsilon: ", "epsilon: ", "give --researcher NAME", "give the researcher's name")

func (d *Dashboard) reachDP(w http.ResponseWriter, r *http.Request) {
	f := r.PostForm
	p := reachPage{Form: f}
	v := view{Title: "Reach", Nav: "reach"}
	code := http.StatusOK
	a := reachArgs(f)
	a.Set("researcher", f.Get("researcher"))
	a.Set("dp-epsilon", f.Get("epsilon"))
	if strings.HasPrefix(f.Get("authors"), "@") {
		v.Error, code = "authors: give ids", http.StatusBadRequest
	} else {
		p.Private = &reach.PrivateResult{}
		if err := d.call(r.Context(), http.MethodGet, "/v1/ledger/reach?"+a.Encode(), nil, p.Private); err != nil {
			// The form's fields are researcher and epsilon, the API's
			// parameters and the command's flags --researcher and
			// --dp-epsilon, which the shared errors name.
			v.Error, code, p.Private = dpFormWords.Replace(errText(err)), statusOf(err), nil
		} else {
			var dose []reach.Dose
			for _, x := range p.Private.Dose {
				dose = append(dose, reach.Dose{K: x.K, People: int(x.People)})
			}
			var ov *reach.Overlap
			if o := p.Private.Overlap; o != nil {
				ov = &reach.Overlap{A: int(o.A), B: int(o.B), Both: int(o.Both), Either: int(o.Either)}
			}
			p.Chart = chartOf(dose, ov)
		}
	}
	v.Data = p
	d.render(w, r, code, "reach", v)
}

type chart struct {
	Title  string    `json:"title"`
	Labels []string  `json:"labels"`
	Values []float64 `json:"values"`
}

func chartOf(dose []reach.Dose, o *reach.Overlap) []chart {
	var cs []chart
	if len(dose) > 0 {
		c := chart{Title: "dose: people reached by at least k authors"}
		for _, x := range dose {
			c.Labels = append(c.Labels, "≥"+itoa(x.K))
			c.Values = append(c.Values, float64(x.People))
		}
		cs = append(cs, c)
	}
	if o != nil {
		cs = append(cs, chart{Title: "overlap", Labels: []string{"authors", "other", "both", "either"},
			Values: []float64{float64(o.A), float64(o.B), float64(o.Both), float64(o.Either)}})
	}
	return cs
}

// ---- the per-person report

type personKind struct {
	Kind        string // accounts, apps, networks
	Identities  int    // distinct identities of the kind served the subject's contact details
	WithoutKind int    // Accesses' rows without this facet (anonymous, no app)
	First, Last time.Time
	Days        []dayCount
}

type dayCount struct {
	Day string
	N   int // identities first served that day
}

type whoTook struct {
	Rows []struct {
		Value string    `json:"value"`
		Count int       `json:"count"`
		First time.Time `json:"first"`
		Last  time.Time `json:"last"`
	} `json:"rows"`
}

// person answers, for one subject, how many distinct identities of each
// kind were served their contact details, and when: counts and dates,
// never the identities. ?format=json, or Accept: application/json, asks
// for it as JSON (personJSON), for a platform's "download your data" flow.
func (d *Dashboard) person(w http.ResponseWriter, r *http.Request) {
	if wantsJSON(r) {
		d.personJSON(w, r)
		return
	}
	subject := strings.TrimSpace(r.URL.Query().Get("subject"))
	class := orDefault(r.URL.Query().Get("class"), "contact")
	v := view{Title: "Per-person report", Nav: "person"}
	code := http.StatusOK
	var kinds []personKind
	if subject != "" {
		var err error
		if kinds, err = d.personReport(r.Context(), subject, class); err != nil {
			v.Error, code = errText(err), statusOf(err)
		}
	}
	v.Data = struct {
		Subject, Class string
		Kinds          []personKind
	}{subject, class, kinds}
	d.render(w, r, code, "person", v)
}

// personReport counts, per kind (accounts, apps, networks), the distinct
// identities the ledger's who-took names for subject and class.
func (d *Dashboard) personReport(ctx context.Context, subject, class string) ([]personKind, error) {
	var kinds []personKind
	for _, k := range []struct {
		f    identify.Facet
		name string
	}{{identify.FacetAccount, "accounts"}, {identify.FacetApp, "apps"}, {identify.FacetNet, "networks"}} {
		var wt whoTook
		args := url.Values{"subject": {subject}, "class": {class}, "by": {k.f.String()}}
		if err := d.call(ctx, http.MethodGet, "/v1/ledger/who-took?"+args.Encode(), nil, &wt); err != nil {
			return nil, err
		}
		pk := personKind{Kind: k.name}
		days := map[string]int{}
		for _, row := range wt.Rows {
			if row.Value == "" {
				pk.WithoutKind++
				continue
			}
			pk.Identities++
			if pk.First.IsZero() || row.First.Before(pk.First) {
				pk.First = row.First
			}
			if row.Last.After(pk.Last) {
				pk.Last = row.Last
			}
			days[row.First.UTC().Format(time.DateOnly)]++
		}
		for day, n := range days {
			pk.Days = append(pk.Days, dayCount{day, n})
		}
		sort.Slice(pk.Days, func(i, j int) bool { return pk.Days[i].Day < pk.Days[j].Day })
		kinds = append(kinds, pk)
	}
	return kinds, nil
}

// The per-person report as JSON: its field names are a platform's
// contract (README), kept as they are.
type (
	personReportJSON struct {
		Subject string           `json:"subject"`
		Class   string           `json:"class"`
		Kinds   []personKindJSON `json:"kinds"` // accounts, apps, networks, in that order
	}
	personKindJSON struct {
		Kind       string `json:"kind"`
		Identities int    `json:"identities"` // distinct identities of the kind served the subject's class
		// Unidentified: also served to requests without an identity of
		// the kind (no verified account, no registered app key).
		Unidentified bool       `json:"unidentified"`
		First        *time.Time `json:"first"` // null when none
		Last         *time.Time `json:"last"`
		Days         []dayJSON  `json:"days"` // by the day each identity was first served, oldest first
	}
	dayJSON struct {
		Day        string `json:"day"` // YYYY-MM-DD, UTC
		Identities int    `json:"identities"`
	}
)

// personJSON serves the report as JSON: a session's ?format=json (or
// Accept: application/json) on /person, and the admin API's GET
// /v1/person behind its bearer token (Person). subject is required;
// errors are {"error"} with the ledger query's status, as the admin API's.
func (d *Dashboard) personJSON(w http.ResponseWriter, r *http.Request) {
	subject := strings.TrimSpace(r.URL.Query().Get("subject"))
	class := orDefault(r.URL.Query().Get("class"), "contact")
	if subject == "" {
		writeJSONError(w, http.StatusBadRequest, "subject is required (?subject=ID)")
		return
	}
	kinds, err := d.personReport(r.Context(), subject, class)
	if err != nil {
		writeJSONError(w, statusOf(err), errText(err))
		return
	}
	out := personReportJSON{Subject: subject, Class: class, Kinds: make([]personKindJSON, 0, len(kinds))}
	for _, k := range kinds {
		kj := personKindJSON{Kind: k.Kind, Identities: k.Identities, Unidentified: k.WithoutKind > 0, Days: make([]dayJSON, 0, len(k.Days))}
		if !k.First.IsZero() {
			first, last := k.First.UTC(), k.Last.UTC()
			kj.First, kj.Last = &first, &last
		}
		for _, dc := range k.Days {
			kj.Days = append(kj.Days, dayJSON{dc.Day, dc.N})
		}
		out.Kinds = append(out.Kinds, kj)
	}
	writeJSON(w, out)
}

// Person is the per-person report as JSON, for the admin API's GET
// /v1/person: the admin API checks its bearer token before it (this
// package never takes the token), so a platform's backend asks for it
// as it asks every other admin route.
func (d *Dashboard) Person() http.Handler { return http.HandlerFunc(d.personJSON) }

// wantsJSON reports whether a page's request asks for JSON: ?format=json,
// or application/json in Accept (a browser's Accept names HTML).
func wantsJSON(r *http.Request) bool {
	return r.URL.Query().Get("format") == "json" || strings.Contains(r.Header.Get("Accept"), "application/json")
}

func orDefault(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}
