package replay

import (
	"container/heap"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/warden-gw/warden/internal/admit"
	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/ration"
	"github.com/warden-gw/warden/internal/refusal"
	"github.com/warden-gw/warden/internal/store"
	"github.com/warden-gw/warden/internal/store/memory"
)

// Report is what a replay found.
type Report struct {
	Window Window `json:"window"`
	// Accesses is how many the window held; Replayed how many were
	// decided again (the rest are counted in NotReplayed by reason: every
	// one of Reasons, 0 included).
	Accesses    int            `json:"accesses"`
	Replayed    int            `json:"replayed"`
	NotReplayed map[string]int `json:"not_replayed"`
	// Each list holds one row per rule and identity: refusals count
	// answers, masks count answers and the records in them.
	NewlyRefused    []Row `json:"newly_refused"`
	NoLongerRefused []Row `json:"no_longer_refused"`
	NewlyMasked     []Row `json:"newly_masked"`
	NoLongerMasked  []Row `json:"no_longer_masked"`
	// Caveats are the approximations this config's rules made (see the
	// package doc).
	Caveats []string `json:"caveats"`
}

// Window is the span replayed; nil ends are open.
type Window struct {
	From *time.Time `json:"from"`
	To   *time.Time `json:"to"`
}

// Row is one rule's change for one identity: the facet the rule counts by
// and the identity's value of it.
type Row struct {
	Facet   string `json:"facet"`
	Value   string `json:"value"`
	Rule    string `json:"rule"`
	Count   int    `json:"count"`             // answers
	Records int    `json:"records,omitempty"` // masks: records in them
}

// Changed reports whether anything differs.
func (r *Report) Changed() bool {
	return len(r.NewlyRefused)+len(r.NoLongerRefused)+len(r.NewlyMasked)+len(r.NoLongerMasked) > 0
}

// Reasons an Access is not replayed.
const (
	skipBanned   = "banned"            // a ban refused it: bans are not configuration
	skipIdentity = "identity"          // refused before admission (credentials)
	skipRequest  = "request"           // refused at the edge, before any rule (CONNECT, an ambiguous path, a bound)
	skipBlocked  = "blocked_by_budget" // a budget refused it: the ledger kept no records
	// skipSuperseded: the second Access of a request that panicked after
	// its first was recorded (refusal.InternalAnswering): the request is
	// replayed once, as its first Access.
	skipSuperseded = "superseded"
	// skipStoreAdmit: the state store failed at admission (failure mode
	// closed): no rate limit was decided or spent, so none counts it
	// again (ledger.LimitsSaw).
	skipStoreAdmit = "store_admit"
)

// Reasons are the reasons an Access is not replayed, in the order
// reports give them.
var Reasons = []string{skipBanned, skipIdentity, skipBlocked, skipRequest, skipSuperseded, skipStoreAdmit}

// reorder is how many Accesses wait to be put in time order: the ledger
// holds them in the order they were recorded (a request's refusal as it
// was refused, an answer once it was rationed), each with the time its
// request was admitted at, so within a recorder queue and the longest
// wait for an upstream's answer of time order.
const reorder = 1 << 14

// pending is an Access read from the ledger: its admission is decided
// in time order (the order the gateway admitted requests in), and its
// answer rationed in the ledger's order (the order the gateway rationed
// answers in: concurrent answers of one identity come back in any order,
// and a budget's last subjects are those rationed last). Rate limits and
// budgets count apart, so the two orders need not agree.
type pending struct {
	e       *ledger.Entry
	seq     int  // the ledger's order: ties of time are decided in it
	decided bool // admission decided
	ration  bool // admitted and served: its answer is rationed again
}

// Run replays the Accesses of win in dir under cfg, its reader opened with
// opts (WithWarnings: a damaged day rollup passed over is said).
func Run(ctx context.Context, dir string, win ledger.Window, cfg *config.Config, opts ...ledger.ReaderOption) (*Report, error) {
	rp, err := newReplayer(cfg)
	if err != nil {
		return nil, err
	}
	defer rp.st.Close()
	r, err := ledger.OpenReader(dir, win, opts...)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	rep := &Report{NotReplayed: map[string]int{}, Caveats: caveats(cfg)}
	for _, r := range Reasons {
		rep.NotReplayed[r] = 0
	}
	if !win.From.IsZero() {
		rep.Window.From = &win.From
	}
	if !win.To.IsZero() {
		rep.Window.To = &win.To
	}
	var q queue         // by time: admission
	var fifo []*pending // in the ledger's order: rationing
	seq := 0
	admitOne := func() error {
		p := heap.Pop(&q).(*pending)
		var err error
		if p.ration, err = rp.admit(ctx, p.e, rep); err != nil {
			return err
		}
		p.decided = true
		for len(fifo) > 0 && fifo[0].decided {
			p, fifo = fifo[0], fifo[1:]
			if p.ration {
				if err := rp.ration(ctx, p.e); err != nil {
					return err
				}
			}
		}
		return nil
	}
	r.Each(func(e *ledger.Entry) bool {
		p := &pending{e: e, seq: seq}
		seq++
		heap.Push(&q, p)
		fifo = append(fifo, p)
		for q.Len() > reorder && err == nil {
			err = admitOne()
		}
		return err == nil && ctx.Err() == nil
	})
	if err == nil {
		err = r.Err() // a partition that does not decode: no report from part of the window
	}
	for q.Len() > 0 && err == nil {
		err = admitOne()
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	routes := make([]string, 0, len(rp.unmapped))
	for r := range rp.unmapped {
		routes = append(routes, r)
	}
	sort.Strings(routes)
	for _, r := range routes {
		rep.Caveats = append(rep.Caveats, fmt.Sprintf("route %s: not in the new config's route map: its %d answers would go out uninspected, so none is masked and no budget counts them", r, rp.unmapped[r]))
	}
	if f := cfg.Ration.FanoutCap; f != nil && rp.canaries > 0 {
		// The gateway counts a canary's open against the answer that
		// showed it, as a real record's (ration.Uncounted): which answer
		// is not in the ledger, so the replay counts none.
		n := fmt.Sprintf("%d look-ups of canaries", rp.canaries)
		if rp.canaries == 1 {
			n = "1 look-up of a canary"
		}
		rep.Caveats = append(rep.Caveats, fmt.Sprintf("%s: %s in the window: the gateway counted each as one person opened from the answer that showed it, as a real record's look-up; the ledger names no canary, so the replay counts none: a look-up the gateway capped after one may show as no longer masked", f.Name, n))
	}
	for _, d := range rp.diffs {
		rows := make([]Row, 0, len(d.m))
		for _, row := range d.m {
			rows = append(rows, *row)
		}
		sort.Slice(rows, func(i, j int) bool {
			a, b := rows[i], rows[j]
			if a.Rule != b.Rule {
				return a.Rule < b.Rule
			}
			if a.Facet != b.Facet {
				return a.Facet < b.Facet
			}
			return a.Value < b.Value
		})
		*d.out(rep) = rows
	}
	return rep, nil
}

// caveats names the rules of cfg that a replay can only approximate.
func caveats(cfg *config.Config) []string {
	var out []string
	for _, b := range cfg.Ration.Budgets {
		if len(b.AccountAge) > 0 {
			out = append(out, fmt.Sprintf("budget %s: account_age tiers not applied (the ledger keeps no account age): replayed at its limit %d", b.Name, b.Limit))
		}
	}
	for _, s := range cfg.Ration.Scopes {
		out = append(out, fmt.Sprintf("scope %s: taken as the gateway decided it (the ledger keeps no scopes)", s.Name))
	}
	if cfg.Ration.Unreferenced != nil {
		out = append(out, fmt.Sprintf("unreferenced %s: whether a look-up's id had been shown is the gateway's verdict, not decided again", cfg.Ration.Unreferenced.Name))
	}
	for _, l := range cfg.Limits {
		out = append(out, fmt.Sprintf("rate limit %s: counts only requests the ledger holds (inspected routes and refusals), not requests on other routes", l.Name))
	}
	return out
}

// diff accumulates one list of the report.
type diff struct {
	m   map[[3]string]*Row
	out func(*Report) *[]Row
}

func (d *diff) add(facet, value, rule string, records int) {
	k := [3]string{facet, value, rule}
	row := d.m[k]
	if row == nil {
		row = &Row{Facet: facet, Value: value, Rule: rule}
		d.m[k] = row
	}
	row.Count++
	row.Records += records
}

const (
	newlyRefused = iota
	noLongerRefused
	newlyMasked
	noLongerMasked
)

type replayer struct {
	st    *memory.Store
	adm   *admit.Admitter
	rat   *ration.Rationer
	imap  *inspect.Map
	links *verdicts
	// facets of the config's rules by name; scopes by name.
	facets map[string]string
	scopes map[string]string // scope rule -> class
	budget map[string]bool   // budgets and the unreferenced rule
	diffs  [4]*diff
	res    inspect.Result
	recs   []inspect.Record
	rules  []string
	// canaries counts the look-ups of canaries rationed again: the
	// gateway records one with no id (the ledger names no canary).
	canaries int
	// unmapped counts, by route, the answers served on routes the new
	// config's route map does not inspect.
	unmapped map[string]int
}

func newReplayer(cfg *config.Config) (*replayer, error) {
	st := memory.New(memory.Options{SweepEvery: -1})
	imap, err := inspect.Compile(cfg.Inspect)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("replay: %w", err)
	}
	m := ration.NewMetrics(nil)
	adm, err := admit.New(cfg.Limits, cfg.Allow, st, m.Shadow(), nil)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("replay: %w", err)
	}
	rp := &replayer{st: st, adm: adm, imap: imap, links: &verdicts{Store: st},
		facets: map[string]string{}, scopes: map[string]string{}, budget: map[string]bool{}, unmapped: map[string]int{}}
	// Scopes are taken as decided (identities' scopes are not kept): the
	// rationer is built without them, and their masks are put back.
	rc := cfg.Ration
	for _, s := range rc.Scopes {
		rp.scopes[s.Name] = s.Class
	}
	rc.Scopes = nil
	if rp.rat, err = ration.New(rc, imap, rp.links, m, nil); err != nil {
		st.Close()
		return nil, fmt.Errorf("replay: %w", err)
	}
	for _, l := range cfg.Limits {
		rp.facets[l.Name] = l.Facet
	}
	for _, b := range rc.Budgets {
		rp.facets[b.Name] = b.Facet
		rp.budget[b.Name] = true
	}
	if u := rc.Unreferenced; u != nil {
		rp.facets[u.Name] = u.Facet
		rp.budget[u.Name] = true
	}
	outs := [4]func(*Report) *[]Row{
		func(r *Report) *[]Row { return &r.NewlyRefused },
		func(r *Report) *[]Row { return &r.NoLongerRefused },
		func(r *Report) *[]Row { return &r.NewlyMasked },
		func(r *Report) *[]Row { return &r.NoLongerMasked },
	}
	for i := range rp.diffs {
		rp.diffs[i] = &diff{m: map[[3]string]*Row{}, out: outs[i]}
	}
	return rp, nil
}

// value is the identity's value of facet, "" when absent or unknown.
func value(e *ledger.Entry, facet string) string {
	f, ok := identify.ParseFacet(facet)
	if !ok {
		return ""
	}
	return e.Identity[f-1]
}

// owner is the facet and value a change of rule is reported under: the
// rule's facet when cfg has the rule, else the account (the address when
// anonymous).
func (rp *replayer) owner(e *ledger.Entry, rule, facet string) (string, string) {
	if facet == "" {
		facet = rp.facets[rule]
	}
	if facet == "" {
		facet = "account"
		if value(e, facet) == "" {
			facet = "ip"
		}
	}
	return facet, value(e, facet)
}

// request rebuilds a request on the Access's route: the route's list and
// look-up parameters as the ledger keeps them (the look-up as its hash,
// consistent with the hashed links), any other parameter a placeholder.
func (rp *replayer) request(e *ledger.Entry) (method, path string) {
	method, pat, ok := strings.Cut(e.Route, " ")
	if !ok {
		return "", ""
	}
	var rc *inspect.RouteConfig
	for i, r := range rp.imap.Config().Routes {
		if r.Route == e.Route {
			rc = &rp.imap.Config().Routes[i]
			break
		}
	}
	segs := strings.Split(pat, "/")
	for i, s := range segs {
		name, isParam := strings.CutPrefix(s, "{")
		if !isParam {
			continue
		}
		name = strings.TrimSuffix(strings.TrimSuffix(name, "}"), "...")
		switch {
		case rc != nil && name == rc.List && e.List != "":
			segs[i] = e.List
		case rc != nil && name == rc.Lookup && e.Lookup != "":
			segs[i] = e.Lookup
		default:
			segs[i] = "_"
		}
	}
	return method, strings.Join(segs, "/")
}

// uninspected notes an answer on a route the new config's route map does
// not inspect: it would go out as the upstream made it, so each rule that
// masked its records (a scope's aside, as in ration) masks them no longer,
// and nothing of it counts against a budget.
func (rp *replayer) uninspected(e *ledger.Entry) {
	if e.Route == "" {
		return // matched no route of the live map either: nothing was inspected
	}
	rp.unmapped[e.Route]++
	gone := map[string]int{}
	for _, r := range e.Records {
		if r.Masked == 0 {
			continue
		}
		for _, rule := range e.MaskRules {
			if _, scope := rp.scopes[rule]; !scope {
				gone[rule]++
			}
		}
	}
	for rule, n := range gone {
		f, v := rp.owner(e, rule, "")
		rp.diffs[noLongerMasked].add(f, v, rule, n)
	}
}

// canaryLookup reports whether e, matched to rt, is a look-up of a
// canary: an answer on a route with a lookup whose id the ledger does not
// hold (a real look-up's is kept hashed) and no records.
func canaryLookup(e *ledger.Entry, rt *inspect.Route) bool {
	return e.Lookup == "" && len(e.Records) == 0 && rt.Config().Lookup != ""
}

// admit decides e's admission again and notes how the decision differs.
// It reports whether e's answer is to be rationed again (rp.ration): it
// was served, and would be.
func (rp *replayer) admit(ctx context.Context, e *ledger.Entry, rep *Report) (bool, error) {
	rep.Accesses++
	switch {
	case e.Rule == refusal.RuleBan:
		rep.NotReplayed[skipBanned]++
		return false, nil
	case e.Rule == refusal.RuleIdentity:
		rep.NotReplayed[skipIdentity]++
		return false, nil
	case e.Rule == refusal.RuleRequest:
		// No config decides it: any config refuses it the same way.
		rep.NotReplayed[skipRequest]++
		return false, nil
	case e.Rule == refusal.RuleInternal && e.Facet == refusal.InternalAnswering:
		rep.NotReplayed[skipSuperseded]++
		return false, nil
	case e.Rule == refusal.RuleStore && e.Facet == refusal.StoreAdmit:
		rep.NotReplayed[skipStoreAdmit]++
		return false, nil
	case e.Status == 429 && rp.budget[e.Rule]:
		// A budget blocked it: the ledger kept no records to count.
		rep.NotReplayed[skipBlocked]++
		return false, nil
	}
	rep.Replayed++
	id := e.Who()
	method, path := rp.request(e)
	origRefused := e.Rule != "" && (e.Status == 429 || e.Status == 403)
	d, err := rp.adm.Admit(ctx, e.Time, &id, method, path, e.RequestID)
	if err != nil {
		return false, err
	}
	if !d.Admitted() {
		if !origRefused {
			f, v := rp.owner(e, d.Rule, d.Facet)
			rp.diffs[newlyRefused].add(f, v, d.Rule, 0)
		}
		return false, nil
	}
	if origRefused {
		// The ledger holds no records of an answer refused before the
		// upstream answered: nothing to ration.
		f, v := rp.owner(e, e.Rule, e.Facet)
		rp.diffs[noLongerRefused].add(f, v, e.Rule, 0)
		return false, nil
	}
	if e.Rule != "" {
		return false, nil // refused for another reason (upstream, store, policy): not rationed
	}
	return true, nil
}

// ration decides a served answer's records again and compares the masks.
func (rp *replayer) ration(ctx context.Context, e *ledger.Entry) error {
	id := e.Who()
	method, path := rp.request(e)
	m, ok := rp.imap.Match(method, path)
	if !ok {
		rp.uninspected(e)
		return nil
	}
	rt := m.Route
	if canaryLookup(e, rt) {
		rp.canaries++
	}
	// The ledger's class bits index e.Classes; the Result's, rt's classes.
	remap := func(bits uint64) inspect.ClassSet {
		var s inspect.ClassSet
		for i, name := range e.Classes {
			if bits&(1<<uint(i)) != 0 {
				if c := rt.Class(name); c >= 0 {
					s |= 1 << uint(c)
				}
			}
		}
		return s
	}
	rp.recs = rp.recs[:0]
	for _, r := range e.Records {
		rp.recs = append(rp.recs, inspect.Record{ID: r.ID, Classes: remap(r.Classes)})
	}
	rp.res.Load(rt, rp.recs, e.Links)
	// Scope masks as the gateway made them.
	for _, rule := range e.MaskRules {
		class, ok := rp.scopes[rule]
		if !ok {
			continue
		}
		c := rt.Class(class)
		for i, r := range e.Records {
			if c >= 0 && remap(r.Masked).Has(c) {
				rp.res.Mask(i, c, rule)
			}
		}
	}
	rp.links.cur = e
	acc := inspect.Access{}
	ref, err := rp.rat.Decide(ctx, e.Time, &id, ration.Request{Method: method, Path: path, ID: e.RequestID}, m, &rp.res, &acc)
	if err != nil {
		return err
	}
	if ref != nil {
		f, v := rp.owner(e, ref.Rule, ref.Facet)
		rp.diffs[newlyRefused].add(f, v, ref.Rule, 0)
		return nil
	}
	// Records masked now and not then, and the reverse, by rule.
	newly, gone := map[string]int{}, map[string]int{}
	for i, r := range e.Records {
		was := remap(r.Masked)
		now := rp.res.Masked(i)
		if now&^was != 0 {
			rp.rules = rp.res.MaskedBy(i, rp.rules[:0])
			for _, rule := range rp.rules {
				if _, scope := rp.scopes[rule]; !scope {
					newly[rule]++
				}
			}
		}
		if was&^now != 0 {
			for _, rule := range e.MaskRules {
				if _, scope := rp.scopes[rule]; !scope && !slices.Contains(rp.res.MaskedBy(i, rp.rules[:0]), rule) {
					gone[rule]++
				}
			}
		}
	}
	for rule, n := range newly {
		f, v := rp.owner(e, rule, "")
		rp.diffs[newlyMasked].add(f, v, rule, n)
	}
	for rule, n := range gone {
		f, v := rp.owner(e, rule, "")
		rp.diffs[noLongerMasked].add(f, v, rule, n)
	}
	return nil
}

// verdicts is the rationer's store with the link memory's answer on a
// look-up replaced by the gateway's verdict (the ledger's Unreferenced):
// the memory starts empty at the window's start and a look-up of one's own
// id is kept hashed, so neither can be decided again. A look-up the
// gateway found shown takes the provenance the window's links gave it,
// social when they gave none.
type verdicts struct {
	*memory.Store
	cur *ledger.Entry
}

func (v *verdicts) Linked(ctx context.Context, now time.Time, key string, ids []uint64, fan *store.Fanout, dst []store.Provenance) ([]store.Provenance, error) {
	got, err := v.Store.Linked(ctx, now, key, ids, fan, dst)
	if err != nil || v.cur == nil {
		return got, err
	}
	for i := range got {
		switch {
		case v.cur.Unreferenced:
			got[i] = store.Unreferenced
		case got[i] == store.Unreferenced:
			got[i] = store.Social
		}
	}
	return got, nil
}

// queue orders Accesses by time.
type queue []*pending

func (q queue) Len() int { return len(q) }
func (q queue) Less(i, j int) bool {
	if !q[i].e.Time.Equal(q[j].e.Time) {
		return q[i].e.Time.Before(q[j].e.Time)
	}
	return q[i].seq < q[j].seq
}
func (q queue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)   { *q = append(*q, x.(*pending)) }
func (q *queue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}
