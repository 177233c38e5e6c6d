package demo

import (
	"strings"
	"testing"

	"github.com/warden-gw/warden/internal/privacy"
	"github.com/warden-gw/warden/internal/reach"
)

// TestFiguresDPBesideTheSimulator: every figure line of the demo's ledger
// table carries the simulator's count in its column, the DP reach too
// (the exact reach the noise was added to), so the reader sees what the
// noise cost.
func TestFiguresDPBesideTheSimulator(t *testing.T) {
	f := &Figures{Authors: []string{"1", "2"}, Reach: 265, SimReach: 263, Impressions: 4147, SimImpressions: 4147,
		Private: &reach.PrivateResult{Reach: 270, Interval: privacy.Interval{Low: 264, High: 276},
			Privacy: privacy.Note{Mechanism: "discrete Laplace", Parameter: "epsilon=0.5", Confidence: 0.95},
			Budget:  privacy.Account{Researcher: DemoResearcher, Remaining: "0.875", Limit: "1"}},
		Takers: []Taker{{Account: "93829", Ledger: 10, Sim: 10}}, Dropped: 0}
	var out strings.Builder
	f.Write(&out)
	var line string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, "with DP for "+DemoResearcher) {
			line = l
		}
	}
	if fields := strings.Fields(line); len(fields) < 3 || fields[len(fields)-1] != "263" || !strings.Contains(line, "270 [264, 276]") {
		t.Errorf("DP line %q: want the noisy 270 [264, 276] and the simulator's 263 in the last column\n%s", line, out.String())
	}
}
