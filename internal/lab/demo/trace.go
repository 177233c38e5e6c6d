package demo

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/warden-gw/warden/internal/canary"
	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/lab/sim"
	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/trace"
)

// Traced is the demo's leak: the harvesters' take, as they kept it, traced
// as `warden trace` does, beside the accounts that really took it.
type Traced struct {
	Take       string        `json:"take"` // the file traced
	Report     *trace.Report `json:"report"`
	Harvesters []sim.TakenBy `json:"harvesters"` // the simulator's: who really took it, most first
}

// TraceTake traces the take file at path against the ledger in dir with
// canaries c (nil: coverage only), at the default false-accusation bound.
func TraceTake(path, dir string, c *canary.Canaries, taken *sim.Taken) (*Traced, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("trace the take: %w", err)
	}
	defer f.Close()
	led, err := ledger.OpenReader(dir, ledger.Window{})
	if err != nil {
		return nil, fmt.Errorf("trace the take: %w", err)
	}
	defer led.Close()
	t := trace.New(c, 0)
	if _, err := t.Read(f, nil); err != nil {
		return nil, fmt.Errorf("trace the take: %s: %w", path, err)
	}
	out := &Traced{Take: path, Report: t.Report(led, trace.DefaultFalseAccusation)}
	if err := led.Err(); err != nil {
		return nil, fmt.Errorf("trace the take: %w", err)
	}
	if taken != nil {
		out.Harvesters = taken.Accounts
	}
	return out, nil
}

// Innocent are the accused accounts the simulator does not know as
// harvesters (and accused identities of any other facet).
func (t *Traced) Innocent() []trace.Accused {
	took := map[string]bool{}
	for _, h := range t.Harvesters {
		took[h.Account] = true
	}
	var out []trace.Accused
	for _, a := range t.Report.Accused {
		if a.Facet != identify.FacetAccount.String() || !took[a.Value] {
			out = append(out, a)
		}
	}
	return out
}

// Missed are the harvesters that took at least the report's NamedMin
// distinct real profiles and that it does not name (recall: it should be
// none), and how many took that many.
func (t *Traced) Missed() (missed []sim.TakenBy, of int) {
	named := map[string]bool{}
	for _, n := range t.Report.Named {
		if n.Facet == identify.FacetAccount.String() {
			named[n.Value] = true
		}
	}
	for _, h := range t.Harvesters {
		if h.Account == "" || h.Distinct < int64(t.Report.NamedMin) {
			continue
		}
		of++
		if !named[h.Account] {
			missed = append(missed, h)
		}
	}
	return missed, of
}

// shownHarvesters bounds the harvesters listed.
const shownHarvesters = 8

// Write prints the accused beside the accounts that really harvested, and
// the ledger's coverage of the take.
func (t *Traced) Write(w io.Writer) {
	r := t.Report
	var recs int64
	for _, h := range t.Harvesters {
		recs += h.Records
	}
	fmt.Fprintf(w, "\nthe harvesters' take, kept as they received it (%s: %d records by %d accounts), traced as `warden trace` does:\n",
		t.Take, recs, len(t.Harvesters))
	fmt.Fprintf(w, "%d records, %d distinct real profiles, %d canaries found (verified by the key), %d canary-shaped rejected\n",
		r.Records, r.Subjects, r.CanariesFound, r.CanariesForged)
	accused := map[string]trace.Accused{}
	for _, a := range r.Accused {
		if a.Facet == identify.FacetAccount.String() {
			accused[a.Value] = a
		}
	}
	named := map[string]trace.Named{}
	for _, n := range r.Named {
		if n.Facet == identify.FacetAccount.String() {
			named[n.Value] = n
		}
	}
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "HARVESTER (simulator)\tSCENARIO\tRECORDS TAKEN\tDISTINCT\tNAMED (ledger)\tACCUSED (trace)\tSCORE\tCANARIES\t")
	for i, h := range t.Harvesters {
		if i == shownHarvesters {
			fmt.Fprintf(tw, "  and %d more\t\t\t\t\t\t\t\t\n", len(t.Harvesters)-i)
			break
		}
		nm, acc, score, can := "no", "no", "", ""
		if n, ok := named[h.Account]; ok {
			nm = fmt.Sprintf("yes, %d served", n.Subjects)
		}
		if a, ok := accused[h.Account]; ok {
			acc, score, can = "yes", fmt.Sprintf("%.1f > %.1f", a.Score, a.Threshold), fmt.Sprint(a.Canaries)
		}
		fmt.Fprintf(tw, "account %s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t\n", h.Account, h.Scenario, h.Records, h.Distinct, nm, acc, score, can)
	}
	tw.Flush()
	missed, of := t.Missed()
	fmt.Fprintf(w, "named by the ledger (served at least %d of the take's profiles): %d identities; %d of the %d harvesters that took that many\n",
		r.NamedMin, r.NamedTotal, of-len(missed), of)
	for _, h := range missed {
		fmt.Fprintf(w, "HARVESTER NOT NAMED: account %s (%s, %d distinct profiles)\n", h.Account, h.Scenario, h.Distinct)
	}
	for _, a := range t.Innocent() {
		fmt.Fprintf(w, "ACCUSED BUT NOT A HARVESTER: %s %s (score %.1f, threshold %.1f)\n", a.Facet, a.Value, a.Score, a.Threshold)
	}
	switch {
	case len(r.Accused) == 0 && r.CanariesFound == 0:
		fmt.Fprintln(w, "accused: nobody; the take holds no canary (canaries are in followers and following lists, which these harvesters read little of)")
	case len(r.Accused) == 0:
		fmt.Fprintf(w, "accused: nobody at false-accusation probability %g: %d canaries are too few evidence for any one account "+
			"(an accusation needs thousands of list records per identity); the ledger's coverage below says who could have\n", r.FalseAccusation, r.CanariesFound)
	default:
		fmt.Fprintf(w, "accused: %d identities at false-accusation probability %g over %d scored; colluders tolerated: %d\n",
			len(r.Accused), r.FalseAccusation, r.Candidates, r.Colluders)
	}
	fmt.Fprintf(w, "ledger coverage: %.1f%% of the take's profiles were served through warden; %d identities explain %.1f%%",
		100*r.Served, len(r.Coverage), 100*r.Covered)
	var names []string
	for _, c := range r.Coverage[:min(5, len(r.Coverage))] {
		names = append(names, fmt.Sprintf("%s %s %.1f%%", c.Facet, c.Value, 100*c.Share))
	}
	if len(names) > 0 {
		fmt.Fprintf(w, " (%s", strings.Join(names, ", "))
		if len(r.Coverage) > len(names) {
			fmt.Fprint(w, ", ...")
		}
		fmt.Fprint(w, ")")
	}
	fmt.Fprintln(w)
}

// demoCanaries are the canaries of the gateway the demo started: its
// config's canary section, the key from the environment the demo gave it
// (env, then the demo's own). nil when canaries are off.
func demoCanaries(cfgPath string, env []string) (*canary.Canaries, error) {
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return nil, err
	}
	if !cfg.Canary.Enabled() {
		return nil, nil
	}
	return canary.New(cfg.Canary, func(k string) (string, bool) {
		for _, kv := range slices.Backward(env) {
			if v, ok := strings.CutPrefix(kv, k+"="); ok {
				return v, true
			}
		}
		return os.LookupEnv(k)
	})
}

// takeFile is where a demo run in dir keeps the harvesters' take.
func takeFile(dir string) string { return filepath.Join(dir, "take.ndjson") }
