package reach

import (
	"slices"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/ledger"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// served writes that account saw posts by authors at.
func served(l *ledger.Ledger, at time.Time, account string, authors ...string) {
	e := &ledger.Entry{Time: at, Route: "GET /v1/feed", Status: 200}
	e.Identity[identify.FacetAccount-1] = account
	for _, a := range authors {
		e.Records = append(e.Records, ledger.Record{ID: "p" + a})
		e.Authors = append(e.Authors, a)
	}
	l.Add(e)
}

func TestReach(t *testing.T) {
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

	cases := []struct {
		name string
		q    Query
		want Result
	}{
		{"one author", Query{Authors: []string{"a"}}, Result{Reach: 3, Impressions: 3}},
		{"dose", Query{Authors: []string{"a", "b", "c"}, Dose: true},
			Result{Reach: 4, Impressions: 7, Dose: []Dose{{1, 4}, {2, 2}, {3, 0}}}},
		{"overlap", Query{Authors: []string{"a"}, Overlap: []string{"b", "c"}},
			Result{Reach: 3, Impressions: 3, Overlap: &Overlap{A: 3, B: 3, Both: 2, Either: 4}}},
		{"after", Query{Authors: []string{"a", "b"}, After: t0.Add(10 * time.Minute)},
			Result{Reach: 3, Impressions: 6, After: &After{Time: t0.Add(10 * time.Minute), Reach: 2, New: 1, Impressions: 3}}},
		{"window", Query{Authors: []string{"a", "b"}, Window: ledger.Window{From: t0.Add(10 * time.Minute)}},
			Result{Reach: 2, Impressions: 3}},
		// A time before the window's start: what was served from it on is
		// what the window holds (u2's "a" at 1m is before the window, not
		// an impression of it), as every other figure of the answer.
		{"after before the window", Query{Authors: []string{"a", "b"}, Window: ledger.Window{From: t0.Add(10 * time.Minute)}, After: t0.Add(30 * time.Second)},
			Result{Reach: 2, Impressions: 3, After: &After{Time: t0.Add(30 * time.Second), Reach: 2, New: 2, Impressions: 3}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Run(dir, c.q)
			if err != nil {
				t.Fatal(err)
			}
			if got.Reach != c.want.Reach || got.Impressions != c.want.Impressions || !got.Exact ||
				!slices.Equal(got.Dose, c.want.Dose) {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
			if (got.Overlap == nil) != (c.want.Overlap == nil) || got.Overlap != nil && *got.Overlap != *c.want.Overlap {
				t.Fatalf("overlap %+v, want %+v", got.Overlap, c.want.Overlap)
			}
			if (got.After == nil) != (c.want.After == nil) || got.After != nil && *got.After != *c.want.After {
				t.Fatalf("after %+v, want %+v", got.After, c.want.After)
			}
		})
	}
}
