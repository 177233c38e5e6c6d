package reach

import (
	"errors"
	"fmt"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/privacy"
)

func privateLedger(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	l, err := ledger.Open(ledger.Options{Dir: dir, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	served(l, t0, "u1", "a", "b")
	served(l, t0.Add(time.Minute), "u2", "a")
	served(l, t0.Add(2*time.Minute), "u3", "c")
	served(l, t0.Add(20*time.Minute), "u2", "b", "b")
	served(l, t0.Add(21*time.Minute), "u4", "a")
	l.Close()
	return dir
}

// With epsilon (or rho) at its largest the noise is zero in any run
// (the chance of a non-zero draw is about 2e^-100), so the figures
// summed from the cells must be the exact ones: this checks the
// histogram's layout against Run's exact answers.
func TestPrivateFiguresFromCells(t *testing.T) {
	dir := privateLedger(t)
	after := t0.Add(10 * time.Minute)
	cases := []struct {
		name string
		q    Query
	}{
		{"one author", Query{Authors: []string{"a"}}},
		{"dose", Query{Authors: []string{"a", "b", "c"}, Dose: true}},
		{"overlap", Query{Authors: []string{"a"}, Overlap: []string{"b", "c"}}},
		{"after", Query{Authors: []string{"a", "b"}, After: after}},
		{"all", Query{Authors: []string{"a", "b"}, Dose: true, Overlap: []string{"c"}, After: after}},
	}
	for _, m := range []string{"epsilon", "rho"} {
		for i, c := range cases {
			t.Run(m+"/"+c.name, func(t *testing.T) {
				mech, _ := privacy.ParseMechanism("100", "")
				if m == "rho" {
					mech, _ = privacy.ParseMechanism("", "100")
				}
				want, err := Run(dir, c.q)
				if err != nil {
					t.Fatal(err)
				}
				got, err := RunPrivate(dir, c.q, Private{Mechanism: mech, Researcher: "r",
					Budgets: privacy.NewBudgets(t.TempDir(), func(string) *big.Rat { return big.NewRat(1e6, 1) }), Query: fmt.Sprint(i)})
				if err != nil {
					t.Fatal(err)
				}
				if got.Exact || got.Reach != int64(want.Reach) || got.Interval.Low > got.Reach || got.Interval.High < got.Reach {
					t.Fatalf("reach %d %+v, want %d", got.Reach, got.Interval, want.Reach)
				}
				var dose []Dose
				for _, d := range got.Dose {
					dose = append(dose, Dose{d.K, int(d.People)})
				}
				if !slices.Equal(dose, want.Dose) {
					t.Errorf("dose %v, want %v", dose, want.Dose)
				}
				if o := got.Overlap; o != nil && (o.A != int64(want.Overlap.A) || o.B != int64(want.Overlap.B) ||
					o.Both != int64(want.Overlap.Both) || o.Either != int64(want.Overlap.Either)) {
					t.Errorf("overlap %+v, want %+v", o, want.Overlap)
				}
				if a := got.After; a != nil && (a.Reach != int64(want.After.Reach) || a.New != int64(want.After.New)) {
					t.Errorf("after %+v, want %+v", a, want.After)
				}
				if got.Privacy.Guarantee == "" || got.Budget.Remaining == "" || got.RemainingBudget != got.Budget.Remaining {
					t.Errorf("no guarantee or budget: %+v %+v", got.Privacy, got.Budget)
				}
			})
		}
	}
}

func TestPrivateRepeatAndBudget(t *testing.T) {
	dir := privateLedger(t)
	budgets := privacy.NewBudgets(dir, nil)
	mech, _ := privacy.ParseMechanism("1", "") // rho 1/2 of 1 a time
	q := Query{Authors: []string{"a", "b", "c"}, Dose: true}
	p := Private{Mechanism: mech, Researcher: "alice", Budgets: budgets, Query: "reach a,b,c dose"}
	first, err := RunPrivate(dir, q, p)
	if err != nil {
		t.Fatal(err)
	}
	if first.Budget.Remaining != "0.5" || first.Budget.Repeat {
		t.Fatalf("first: %+v", first.Budget)
	}
	again, err := RunPrivate(dir, q, p)
	if err != nil {
		t.Fatal(err)
	}
	if again.Reach != first.Reach || !slices.Equal(again.Dose, first.Dose) || !again.Budget.Repeat || again.Budget.Remaining != "0.5" {
		t.Fatalf("repeat: %+v %+v, first %+v", again.Reach, again.Budget, first.Reach)
	}
	p.Query = "another"
	if _, err := RunPrivate(dir, q, p); err != nil {
		t.Fatal(err)
	}
	p.Query = "a third"
	var ex *privacy.ExhaustedError
	if _, err := RunPrivate(dir, q, p); !errors.As(err, &ex) {
		t.Fatalf("third answer at epsilon 1 on a budget of rho 1: %v", err)
	}
	// The dose's layout is the question's: K = 3 figures whatever the data.
	if len(first.Dose) != 3 || first.Privacy.Cells != 3 {
		t.Errorf("dose rows %d, cells %d; want 3 and 3 (k = 1, 2, 3)", len(first.Dose), first.Privacy.Cells)
	}
}
