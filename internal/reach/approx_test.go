package reach

import (
	"fmt"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/ledger"
)

// The approximate reach is within its stated bound of the exact one, in
// the sparse range and past it, and people reached by several authors
// count once.
func TestApproxWithinItsBound(t *testing.T) {
	for _, c := range []struct {
		name   string
		people int
	}{{"sparse", 300}, {"dense", 40_000}} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			l, err := ledger.Open(ledger.Options{Dir: dir, Now: func() time.Time { return t0 }})
			if err != nil {
				t.Fatal(err)
			}
			for i := range c.people {
				// Everyone sees a; every third person also b.
				authors := []string{"a"}
				if i%3 == 0 {
					authors = append(authors, "b")
				}
				served(l, t0.Add(time.Duration(i)*time.Millisecond), fmt.Sprintf("u%d", i), authors...)
			}
			l.Close()
			q := Query{Authors: []string{"a", "b", "c"}}
			exact, err := Run(dir, q)
			if err != nil {
				t.Fatal(err)
			}
			got, err := RunApprox(dir, q)
			if err != nil {
				t.Fatal(err)
			}
			if got.Exact || got.Impressions != exact.Impressions || exact.Reach != c.people {
				t.Errorf("approx %+v, exact %+v", got, exact)
			}
			if b := got.ErrorBound; b.Low > exact.Reach || b.High < exact.Reach || b.Low > got.Reach || b.High < got.Reach {
				t.Errorf("exact %d outside the bound [%d, %d] of the estimate %d", exact.Reach, b.Low, b.High, got.Reach)
			}
			t.Logf("%d people: estimate %d, bound [%d, %d]", exact.Reach, got.Reach, got.ErrorBound.Low, got.ErrorBound.High)
		})
	}
	if _, err := RunApprox(t.TempDir(), Query{Authors: []string{"a"}, Dose: true}); err == nil {
		t.Error("--approx with --dose: no error")
	}
}
