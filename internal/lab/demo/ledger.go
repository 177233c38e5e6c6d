package demo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/lab/platform"
	"github.com/warden-gw/warden/internal/lab/sim"
	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/privacy"
	"github.com/warden-gw/warden/internal/reach"
)

// DemoResearcher is the researcher the demo's private answer is charged to.
const DemoResearcher = "demo-researcher"

// demoEpsilon is the demo's DP answer: epsilon 0.5 (discrete Laplace),
// rho 0.125 of the researcher's default budget of 1.
const demoEpsilon = "0.5"

// NamedAuthors are the demo's named set: the n most-followed profiles of
// the lab platform of that size and seed (ties by id), the accounts whose
// posts reach the most feeds.
func NamedAuthors(profiles int, seed int64, n int) ([]string, error) {
	p, err := platform.New(platform.Options{Profiles: profiles, Seed: seed, JWTSecret: "only-the-graph-is-read"})
	if err != nil {
		return nil, err
	}
	type fc struct{ id, n int }
	var all []fc
	for id := 1; id <= p.Profiles(); id++ {
		all = append(all, fc{id, len(p.Followers(id))})
	}
	slices.SortFunc(all, func(a, b fc) int {
		if a.n != b.n {
			return b.n - a.n
		}
		return a.id - b.id
	})
	var out []string
	for _, a := range all[:min(n, len(all))] {
		out = append(out, strconv.Itoa(a.id))
	}
	return out, nil
}

// Figures are the demo's last lines: answers from the ledger warden wrote,
// each beside the figure the simulator counted from what its clients
// received.
type Figures struct {
	Authors []string `json:"authors"`
	// Reach: distinct accounts served posts by the authors; impressions.
	Reach          int                  `json:"reach"`
	SimReach       int                  `json:"sim_reach"`
	Impressions    uint64               `json:"impressions"`
	SimImpressions int64                `json:"sim_impressions"`
	Private        *reach.PrivateResult `json:"private"`
	Takers         []Taker              `json:"takers"` // the ledger's top takers of contact details
	SimTop         sim.AccountCount     `json:"sim_top"`
	Dropped        int64                `json:"dropped"` // Accesses warden dropped (full queue); -1: unknown
	SimAnonymous   int64                `json:"sim_anonymous_answers"`
	SimCutOff      int64                `json:"sim_cut_off"` // requests whose answer the clock left unread
	// Contact is the ledger's count per account: distinct real profiles
	// whose contact details it was served unmasked.
	Contact map[string]int `json:"-"`
}

// Taker is an account that took contact details: the ledger's count
// (distinct real profiles served it contact unmasked) and the
// simulator's.
type Taker struct {
	Account string `json:"account"`
	Ledger  int    `json:"ledger"`
	Sim     int    `json:"sim"`
}

// LedgerFigures asks the ledger in dir what the simulator counted in s:
// the exact reach of s.Authors (and a DP answer of it charged to
// DemoResearcher, whose budget lives in dir), and who took the most
// contact details. Who took the most is the ledger's own ranking: who-took
// of every real profile id 1..profiles (class contact, by account),
// counted per account (a gateway's canaries are not real profiles). dropped is
// warden_recorder_dropped_total{recorder="ledger"} (-1: unknown).
func LedgerFigures(dir string, profiles int, s *sim.Served, dropped int64) (*Figures, error) {
	if s == nil {
		return nil, errors.New("demo: the simulator counted nothing")
	}
	f := &Figures{Authors: s.Authors, SimReach: s.Reach, SimImpressions: s.Impressions, Dropped: dropped, SimAnonymous: s.Anonymous, SimCutOff: s.CutOff}
	q := reach.Query{Authors: s.Authors, By: identify.FacetAccount}
	res, err := reach.Run(dir, q)
	if err != nil {
		return nil, err
	}
	f.Reach, f.Impressions = res.Reach, res.Impressions
	m, err := privacy.ParseMechanism(demoEpsilon, "")
	if err != nil {
		return nil, err
	}
	ids := slices.Clone(s.Authors)
	slices.Sort(ids)
	// The question `warden reach --authors ... --dp-epsilon 0.5
	// --researcher demo-researcher` asks: asked again there, it is
	// answered again, free, with the same figures.
	f.Private, err = reach.RunPrivate(dir, q, reach.Private{Mechanism: m, Researcher: DemoResearcher,
		Budgets: privacy.NewBudgets(dir, nil), Query: privacy.QueryText("reach", map[string]string{"authors": strings.Join(ids, ",")}, m)})
	if err != nil {
		return nil, err
	}

	r, err := ledger.OpenReader(dir, ledger.Window{})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	took := map[string]int{}
	for id := 1; id <= profiles; id++ {
		res, err := r.WhoTook(strconv.Itoa(id), "contact", identify.FacetAccount)
		if err != nil {
			return nil, err
		}
		for _, row := range res.Rows {
			took[row.Value]++
		}
	}
	var accts []string
	for a := range took {
		accts = append(accts, a)
	}
	slices.SortFunc(accts, func(a, b string) int {
		if took[a] != took[b] {
			return took[b] - took[a]
		}
		return strings.Compare(a, b)
	})
	for _, a := range accts[:min(3, len(accts))] {
		f.Takers = append(f.Takers, Taker{Account: a, Ledger: took[a], Sim: s.Contact(a)})
	}
	f.Contact = took
	if len(s.Top) > 0 {
		f.SimTop = s.Top[0]
	}
	return f, nil
}

// Write prints the figures, ledger beside simulator, and what explains a
// difference.
func (f *Figures) Write(w io.Writer) {
	fmt.Fprintf(w, "\nfrom the ledger warden wrote, beside what the simulator's clients received:\n")
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "\tLEDGER\tSIMULATOR\t")
	fmt.Fprintf(tw, "reach of the %d most-followed accounts (people, exact)\t%d\t%d\t\n", len(f.Authors), f.Reach, f.SimReach)
	fmt.Fprintf(tw, "  their posts served (impressions)\t%d\t%d\t\n", f.Impressions, f.SimImpressions)
	if p := f.Private; p != nil {
		// Beside the noisy figure, the count the noise was added to as the
		// simulator counted it: the reader sees what DP cost.
		fmt.Fprintf(tw, "  with DP for %s (%s %s, %.0f%% interval)\t%d %s\t%d\t\n", p.Budget.Researcher, p.Privacy.Mechanism, p.Privacy.Parameter,
			100*p.Privacy.Confidence, p.Reach, fmt.Sprintf("[%d, %d]", p.Interval.Low, p.Interval.High), f.SimReach)
	}
	for i, t := range f.Takers {
		label := "  next"
		if i == 0 {
			label = "most contact details taken (profiles)"
		}
		fmt.Fprintf(tw, "%s: account %s\t%d\t%d\t\n", label, t.Account, t.Ledger, t.Sim)
	}
	tw.Flush()
	fmt.Fprintf(w, "authors: %s\n", strings.Join(f.Authors, ","))
	if len(f.Takers) > 0 && f.SimTop.Account != "" && f.SimTop.Account != f.Takers[0].Account {
		fmt.Fprintf(w, "the simulator's own top taker is account %s (%d)\n", f.SimTop.Account, f.SimTop.Count)
	}
	if p := f.Private; p != nil {
		fmt.Fprintf(w, "DP: %s; %s's budget: remaining rho %s of %s\n", p.Privacy.Guarantee, p.Budget.Researcher, p.Budget.Remaining, p.Budget.Limit)
	}
	switch {
	case f.Dropped > 0:
		fmt.Fprintf(w, "warden dropped %d Accesses (recorder queue full, warden_recorder_dropped_total): the ledger may count less than the clients received\n", f.Dropped)
	case f.Dropped == 0:
		fmt.Fprintln(w, "warden dropped no Access (warden_recorder_dropped_total 0)")
	}
	fmt.Fprintf(w, "%d requests were cut off in flight by the end of the run: warden may have answered and recorded them, the clients read nothing of them, so a ledger figure may exceed the simulator's by what they served\n", f.SimCutOff)
}

// awaitLedger waits until warden's ledger has taken every Access it was
// handed (warden_ledger_accesses_total unchanged across two reads 300 ms
// apart, the run being over), then for the writer's flush (a query sees
// an Access within 1 s). It returns warden_recorder_dropped_total for the
// ledger (-1 when the metrics could not be read).
func awaitLedger(ctx context.Context, adminURL, token string) int64 {
	last := int64(-1)
	dropped := int64(-1)
	for range 30 {
		n, d, err := ledgerMetrics(ctx, adminURL, token)
		if err != nil {
			break
		}
		dropped = d
		if n == last {
			break
		}
		last = n
		if !sleepCtx(ctx, 300*time.Millisecond) {
			return dropped
		}
	}
	sleepCtx(ctx, time.Second)
	return dropped
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// ledgerMetrics reads warden_ledger_accesses_total and
// warden_recorder_dropped_total{recorder="ledger"} from warden's admin API.
func ledgerMetrics(ctx context.Context, adminURL, token string) (accesses, dropped int64, err error) {
	req, err := http.NewRequestWithContext(ctx, "GET", adminURL+"/metrics", nil)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, 0, fmt.Errorf("admin /metrics: %s", resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		val := func() int64 {
			fs := strings.Fields(l)
			v, _ := strconv.ParseFloat(fs[len(fs)-1], 64)
			return int64(v)
		}
		switch {
		case strings.HasPrefix(l, "warden_ledger_accesses_total "):
			accesses = val()
		case strings.HasPrefix(l, `warden_recorder_dropped_total{recorder="ledger"}`):
			dropped = val()
		}
	}
	return accesses, dropped, sc.Err()
}
