package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/warden-gw/warden/internal/admin"
	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/privacy"
)

// addPrivateFlags adds the flags of a differentially private answer.
func addPrivateFlags(fs *flag.FlagSet) {
	fs.String("dp-epsilon", "", "answer with epsilon-DP (discrete Laplace noise), charged epsilon^2/2 of the researcher's zCDP budget; needs --researcher")
	fs.String("dp-rho", "", "answer with rho-zCDP (discrete Gaussian noise), charged rho; needs --researcher")
	fs.String("researcher", "", "whose privacy budget the answer is charged to (kept in the ledger directory, or in ClickHouse when the query runs against it)")
}

// privateQuery reads the DP flags of a query named name: nil when none
// was given. Its Query is the question's canonical text: the flags as
// written, lists sorted (privacy.QueryText), so the same question is
// recognised however its ids are ordered.
func privateQuery(dir string, cfg *config.Config, name string, v url.Values) (*privacy.Request, error) {
	eps, rho, who := v.Get("dp-epsilon"), v.Get("dp-rho"), v.Get("researcher")
	if eps == "" && rho == "" && who == "" {
		return nil, nil
	}
	if who == "" {
		return nil, badQuery("researcher: a DP answer is charged to a researcher's budget; give --researcher NAME")
	}
	if err := privacy.ValidResearcher(who); err != nil {
		return nil, badQuery("%v", err)
	}
	m, err := privacy.ParseMechanism(eps, rho)
	if err != nil {
		return nil, badQuery("%v", err)
	}
	if v.Get("approx") == "true" {
		return nil, badQuery("approx: a DP answer is drawn from the exact count; leave out --approx")
	}
	params := map[string]string{}
	for k := range v {
		switch k {
		case "dp-epsilon", "dp-rho", "researcher", "json", "ledger", "config":
			continue
		}
		val := v.Get(k)
		if isDefault(k, val) {
			// --by account, --dose=false: the question without them,
			// answered again for free rather than charged anew.
			continue
		}
		switch k {
		case "authors", "overlap", "accounts":
			ids, err := idList(k, val)
			if err != nil {
				return nil, err
			}
			slices.Sort(ids)
			val = strings.Join(ids, ",")
		}
		params[k] = val
	}
	return &privacy.Request{Mechanism: m, Researcher: who, Budgets: privacy.NewBudgets(dir, researcherLimit(cfg)), Query: privacy.QueryText(name, params, m)}, nil
}

// isDefault reports whether parameter k at value val asks what leaving
// it out asks: a question's canonical text names neither.
func isDefault(k, val string) bool {
	switch k {
	case "by":
		return val == "account"
	case "dose", "approx":
		return val == "false"
	}
	return false
}

// researcherLimit is each researcher's budget: the config's, else
// privacy.DefaultLimit.
func researcherLimit(cfg *config.Config) func(string) *big.Rat {
	if cfg != nil {
		return cfg.Ledger.Privacy.Limit
	}
	return func(string) *big.Rat { return privacy.DefaultLimit }
}

// printPrivacy writes the lines every DP answer ends with: the
// guarantee, the intervals' level and the researcher's budget.
func printPrivacy(w io.Writer, n privacy.Note, a privacy.Account) {
	fmt.Fprintf(w, "\nprivacy: %s, %s, %d cells; intervals at %.0f%% confidence\n", n.Mechanism, n.Parameter, n.Cells, 100*n.Confidence)
	fmt.Fprintf(w, "guarantee: %s\n", n.Guarantee)
	fmt.Fprintf(w, "sensitivity: %s\n", n.Sensitivity)
	state := fmt.Sprintf("charged rho %s", a.Charged)
	if a.Repeat {
		state = fmt.Sprintf("the answer given at %s to the same query, charged nothing", a.AnsweredAt.Format("2006-01-02T15:04:05Z"))
	}
	fmt.Fprintf(w, "budget of %s: %s; spent rho %s of %s, remaining rho %s (one more answer at epsilon <= %g); all answers so far together are (%.3g, %g)-DP\n",
		a.Researcher, state, a.Spent, a.Limit, a.Remaining, a.RemainingEpsilon, a.TotalEpsilon, a.Delta)
}

func fmtInterval(iv privacy.Interval) string { return fmt.Sprintf("[%d, %d]", iv.Low, iv.High) }

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 2, 2, ' ', 0) }

// printRefused prints, for --json, a DP answer refused past the budget:
// the refusal, the researcher's budget and what remains of it (the error
// itself goes to stderr as any other).
func printRefused(w io.Writer, err error) {
	var ex *privacy.ExhaustedError
	if errors.As(err, &ex) {
		printJSON(w, map[string]any{"error": ex.Error(), "refused": true, "budget": ex.Account, "remaining_budget": ex.Account.Remaining})
	}
}

// refusedBudget marks a refusal past the budget as the asker's (the admin
// API answers it 400, with the budget in the message).
func refusedBudget(err error) error {
	var ex *privacy.ExhaustedError
	if errors.As(err, &ex) {
		return fmt.Errorf("%w: %w", admin.ErrBadRequest, err)
	}
	return err
}
