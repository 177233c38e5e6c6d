package sim

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Report is a scored run.
type Report struct {
	Target        string       `json:"target"`
	Profiles      int          `json:"profiles"`
	Seed          uint64       `json:"seed"`
	Scenarios     []string     `json:"scenarios"`
	Seconds       float64      `json:"seconds"`
	DurationBound string       `json:"duration_bound"`
	MaxRequests   int64        `json:"max_requests_per_population"`
	Populations   []Population `json:"populations"`
	// RefusedAddrs counts refusals per source address, most first (at
	// most 1,000): what an operator reading the logs would put on a ban
	// list.
	RefusedAddrs []AddrCount `json:"refused_addrs,omitempty"`
	// Served is what the clients were served: the named authors' reach,
	// contact details per account (served.go).
	Served *Served `json:"served,omitempty"`
	// Taken is what the harvesters kept, when Options.Take was set.
	Taken *Taken `json:"taken,omitempty"`
	// TruthMismatch counts full profiles of real ids that came with a
	// username the ground truth does not give them: not 0 when the target
	// is another platform than the truth's (--profiles, --seed), and then
	// every harvest is wrongly 0 (Warnings).
	TruthMismatch int64 `json:"truth_mismatch"`
	// TruthMissing counts look-ups of real ids that the target does not
	// hold: answered 404 (GET /v1/users/ID), or a profile with email and
	// phone both empty and unmasked (an account signed up past the
	// platform's last profile). Not 0 when it holds fewer profiles than
	// the truth (lab-sim's --profiles above the platform's), and then
	// every percentage is of the wrong N (Warnings).
	TruthMissing int64 `json:"truth_missing"`
}

// Warnings say why scores cannot be read: the target's profiles are not
// the truth's, or every request of a population failed (a wrong
// --jwt-secret: all 401), so its 0% says nothing.
func (r *Report) Warnings() []string {
	var out []string
	if r.TruthMismatch > 0 {
		out = append(out, fmt.Sprintf("warning: %d profiles came with another username than the ground truth gives their id: "+
			"the target is not a lab platform with --profiles %d --seed %d (pass its flags, or --truth), so no harvest can be scored",
			r.TruthMismatch, r.Profiles, r.Seed))
	}
	if r.TruthMissing > 0 {
		out = append(out, fmt.Sprintf("warning: %d look-ups of profiles the ground truth holds found none on the target (404, or a sign-up without contact): "+
			"it holds fewer than --profiles %d (pass its flags, or --truth), so every harvest is a share of the wrong number of profiles",
			r.TruthMissing, r.Profiles))
	}
	for _, p := range r.Populations {
		if p.Requests == 0 || p.Errors < p.Requests {
			continue
		}
		hint := ""
		switch {
		case p.Status["401"] > 0 && p.Name == "partner": // the gateway refuses an app key it does not register
			hint = ": is -p partner.key the key the gateway registers for the partner app?"
		case p.Status["401"] > 0:
			// The platform refuses a token of another secret, and one of
			// an account past its last profile (--profiles above its own).
			hint = ": is --jwt-secret the platform's, and --profiles at most its own?"
		case p.FirstError != "":
			hint = ": " + p.FirstError
		}
		out = append(out, fmt.Sprintf("warning: every request of %s failed (%s)%s", p.Name, statusList(p.Status), hint))
	}
	return out
}

// Void reports whether the run measured nothing: the truth is another
// platform's, or every request of every population failed.
func (r *Report) Void() bool {
	if r.TruthMismatch > 0 || r.TruthMissing > 0 {
		return true
	}
	for _, p := range r.Populations {
		if p.Errors < p.Requests || p.Requests == 0 {
			return false
		}
	}
	return len(r.Populations) > 0
}

// statusList is "401: 30, network_error: 2", by status.
func statusList(m map[string]int64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// AddrCount is a source address and how many of its requests were refused.
type AddrCount struct {
	Addr    string `json:"addr"`
	Refused int64  `json:"refused"`
}

// Offenders are the addresses refused at least min times, most first.
func (r *Report) Offenders(min int64) []string {
	var out []string
	for _, a := range r.RefusedAddrs {
		if a.Refused >= min {
			out = append(out, a.Addr)
		}
	}
	return out
}

// Population is one population's score.
type Population struct {
	Name string `json:"name"`
	// Kind is "harvester" or "legitimate".
	Kind     string           `json:"kind"`
	Requests int64            `json:"requests"`
	OK       int64            `json:"ok"`
	Refused  int64            `json:"refused"`
	Masked   int64            `json:"masked"`
	NotFound int64            `json:"not_found"`
	Errors   int64            `json:"errors"`
	Status   map[string]int64 `json:"status"`
	// FirstRefusal and FirstMask are seconds from the start; null if none.
	FirstRefusal *float64 `json:"first_refusal_s"`
	FirstMask    *float64 `json:"first_mask_s"`
	// FirstError is the first request that got no answer: why (a refused
	// connection, a certificate not trusted, a timeout).
	FirstError string `json:"first_error,omitempty"`

	// Group is a legitimate population's harm group: alone (on an address
	// of its own or shared with users only), shared address (with
	// harvesters), searchers, partner.
	Group string `json:"group,omitempty"`

	// Harvesters (in the JSON only for them: MarshalJSON).
	Harvested  int64   `json:"-"`
	HarvestPct float64 `json:"-"`
	// Accounts is how many accounts the harvester used (0: not counted);
	// PerAccount the profiles it took per account.
	Accounts   int64   `json:"-"`
	PerAccount float64 `json:"-"`

	// Legitimate populations (in the JSON only for them).
	Users           int     `json:"-"`
	ActiveUsers     int     `json:"-"`
	HarmedUsers     int     `json:"-"`
	HarmedRequests  int64   `json:"-"`
	HarmUsersPct    float64 `json:"-"`
	HarmRequestsPct float64 `json:"-"`
}

// MarshalJSON writes a harvester's harvest fields, or a legitimate
// population's harm fields, always, zeros included: a harvester that took
// nothing scores "harvest_pct": 0, not a missing field a reader would take
// for "not measured". The other kind's fields are left out.
func (p Population) MarshalJSON() ([]byte, error) {
	type plain Population // the fields every population has, as tagged
	type harvest struct {
		Harvested  int64   `json:"harvested"`
		HarvestPct float64 `json:"harvest_pct"`
		Accounts   int64   `json:"accounts,omitempty"`
		// harvest_per_account is there whenever accounts is.
		PerAccount *float64 `json:"harvest_per_account,omitempty"`
	}
	type harm struct {
		Users           int     `json:"users"`
		ActiveUsers     int     `json:"active_users"`
		HarmedUsers     int     `json:"harmed_users"`
		HarmedRequests  int64   `json:"harmed_requests"`
		HarmUsersPct    float64 `json:"harm_users_pct"`
		HarmRequestsPct float64 `json:"harm_requests_pct"`
	}
	c := struct {
		plain
		*harvest
		*harm
	}{plain: plain(p)}
	if p.Kind == "harvester" {
		c.harvest = &harvest{p.Harvested, p.HarvestPct, p.Accounts, nil}
		if p.Accounts > 0 {
			c.harvest.PerAccount = &p.PerAccount
		}
	} else {
		c.harm = &harm{p.Users, p.ActiveUsers, p.HarmedUsers, p.HarmedRequests, p.HarmUsersPct, p.HarmRequestsPct}
	}
	return json.Marshal(c)
}

func (p *pop) result(profiles int) Population {
	r := Population{Name: p.name, Kind: "legitimate", Requests: p.sent.Load(), OK: p.ok.Load(),
		Refused: p.refused.Load(), Masked: p.masked.Load(), NotFound: p.notFound.Load(),
		Errors: p.errs.Load(), Status: map[string]int64{}}
	p.mu.Lock()
	for c, n := range p.status {
		k := strconv.Itoa(c)
		if c == 0 {
			k = "network_error"
		}
		r.Status[k] = n
	}
	p.mu.Unlock()
	secs := func(ns int64) *float64 {
		if ns == 0 {
			return nil
		}
		f := round(float64(ns)/1e9, 2)
		return &f
	}
	r.FirstRefusal, r.FirstMask = secs(p.firstRefusal.Load()), secs(p.firstMask.Load())
	if e := p.firstErr.Load(); e != nil {
		r.FirstError = *e
	}
	if p.harvester {
		r.Kind = "harvester"
		r.Harvested = p.harvestedCount()
		r.HarvestPct = round(100*float64(r.Harvested)/float64(profiles), 3)
		if r.Accounts = p.accounts.Load(); r.Accounts > 0 {
			r.PerAccount = round(float64(r.Harvested)/float64(r.Accounts), 2)
		}
		return r
	}
	r.Group = groups[p.name]
	r.Users = len(p.harmed)
	for i := range p.harmed {
		if p.active[i].Load() {
			r.ActiveUsers++
		}
		if p.harmed[i].Load() {
			r.HarmedUsers++
		}
	}
	r.HarmedRequests = p.harmedReqs.Load()
	if r.ActiveUsers > 0 {
		r.HarmUsersPct = round(100*float64(r.HarmedUsers)/float64(r.ActiveUsers), 3)
	}
	if r.Requests > 0 {
		r.HarmRequestsPct = round(100*float64(r.HarmedRequests)/float64(r.Requests), 3)
	}
	return r
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func optSecs(f *float64) string {
	if f == nil {
		return "never"
	}
	return strconv.FormatFloat(*f, 'f', 1, 64) + "s"
}

// score is the headline figure of a population: harvest for harvesters,
// harm for legitimate ones.
func (p Population) score() string {
	if p.Kind == "harvester" {
		if p.Accounts > 0 {
			return fmt.Sprintf("%.2f%% (%d, %.1f per account)", p.HarvestPct, p.Harvested, p.PerAccount)
		}
		return fmt.Sprintf("%.2f%% (%d)", p.HarvestPct, p.Harvested)
	}
	return fmt.Sprintf("%.2f%% users, %.2f%% req (%s)", p.HarmUsersPct, p.HarmRequestsPct, p.Group)
}

// WriteTable writes the score as an aligned text table.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "population\tkind\trequests\trefused\tmasked\terrors\tfirst refusal\tharvest / harm\t\n")
	for _, p := range r.Populations {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t\n", p.Name, p.Kind, p.Requests, p.Refused, p.Masked,
			p.Errors, optSecs(p.FirstRefusal), p.score())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "%d profiles, %.1fs; harvest = distinct real profiles whose true email and phone were taken; harm = users (requests) refused or masked\n",
		r.Profiles, r.Seconds); err != nil {
		return err
	}
	for _, m := range r.Warnings() {
		if _, err := fmt.Fprintln(w, m); err != nil {
			return err
		}
	}
	return nil
}

// WriteComparison writes several reports of the same mix side by side,
// one column per report, as a Markdown table: per population its score
// (harvest or harm), then its requests and time to first refusal.
func WriteComparison(w io.Writer, labels []string, reps []*Report) error {
	var names []string
	kinds := map[string]string{}
	for _, r := range reps {
		for _, p := range r.Populations {
			if _, ok := kinds[p.Name]; !ok {
				kinds[p.Name] = p.Kind
				names = append(names, p.Name)
			}
		}
	}
	order := map[string]int{}
	for i, n := range Names() {
		order[n] = i
	}
	sort.SliceStable(names, func(i, j int) bool { return order[names[i]] < order[names[j]] })
	var b strings.Builder
	b.WriteString("| population | |")
	sep := "| --- | --- |"
	for _, l := range labels {
		fmt.Fprintf(&b, " %s |", l)
		sep += " ---: |"
	}
	b.WriteString("\n" + sep + "\n")
	for _, n := range names {
		what := "harm: users (requests)"
		if kinds[n] == "harvester" {
			what = "harvest (profiles)"
		}
		fmt.Fprintf(&b, "| **%s** | %s |", n, what)
		for _, r := range reps {
			cell := "-"
			if p, ok := r.population(n); ok {
				if p.Kind == "harvester" {
					cell = fmt.Sprintf("**%.2f%%** (%d)", p.HarvestPct, p.Harvested)
					if p.Accounts > 0 {
						cell = fmt.Sprintf("**%.2f%%** (%d, %.1f/account)", p.HarvestPct, p.Harvested, p.PerAccount)
					}
				} else {
					cell = fmt.Sprintf("**%.2f%%** (%.2f%%)", p.HarmUsersPct, p.HarmRequestsPct)
				}
			}
			fmt.Fprintf(&b, " %s |", cell)
		}
		b.WriteString("\n| | requests, first refusal |")
		for _, r := range reps {
			cell := "-"
			if p, ok := r.population(n); ok {
				cell = fmt.Sprintf("%d, %s", p.Requests, optSecs(p.FirstRefusal))
			}
			fmt.Fprintf(&b, " %s |", cell)
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Report) population(name string) (Population, bool) {
	for _, p := range r.Populations {
		if p.Name == name {
			return p, true
		}
	}
	return Population{}, false
}
