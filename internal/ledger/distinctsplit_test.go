package ledger

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/identify"
)

// DistinctSplit's two counts, over a sealed hour and the open one, are
// Distinct's up to just before the cut and up to it: one pass where
// warden explain's shadow budget asked twice. Accesses at the cut itself
// (the request's, and another of the same microsecond) count only in the
// second; one after the cut in neither.
func TestDistinctSplitIsTwoDistincts(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: t0}
	l := openAt(t, dir, c, Options{})
	cut := t0.Add(time.Hour + 30*time.Minute)
	n := 0
	add := func(at time.Time, account, subject string, masked bool) {
		e := profile(at, account, "10.9.0.1", subject, masked)
		e.RequestID = fmt.Sprintf("split-%d", n)
		n++
		c.set(at)
		l.Add(e)
	}
	add(t0, "a", "1", false)
	add(t0.Add(time.Minute), "a", "2", false)
	add(t0.Add(time.Hour), "a", "2", false) // hour 0 sealed
	add(cut.Add(-time.Microsecond), "a", "3", false)
	add(cut.Add(-time.Second), "a", "9", true) // masked: not counted
	add(cut, "a", "4", false)                  // the request
	add(cut, "a", "1", false)                  // the same microsecond
	add(cut, "b", "5", false)                  // another account
	add(cut.Add(time.Microsecond), "a", "6", false)
	waitSealed(t, dir, partName(t0.Unix()))
	l.Sync()
	ctx := context.Background()
	src := Dir(dir).(dirSource)
	for _, from := range []time.Time{{}, t0, t0.Add(30 * time.Second), t0.Add(time.Hour)} {
		for _, who := range []string{"a", "b", "c"} {
			also := []FacetValue{{By: identify.FacetAccount, Value: who}}
			wantBefore := must(src.Distinct(ctx, Window{From: from, To: cut.Add(-time.Microsecond)}, identify.FacetIP, "10.9.0.1", "contact", also...))(t)
			wantAll := must(src.Distinct(ctx, Window{From: from, To: cut}, identify.FacetIP, "10.9.0.1", "contact", also...))(t)
			before, all, err := src.DistinctSplit(ctx, Window{From: from, To: cut}, cut, identify.FacetIP, "10.9.0.1", "contact", also...)
			if err != nil || before != wantBefore || all != wantAll {
				t.Errorf("from %v, account %s: split %d, %d (%v); two passes %d, %d", from, who, before, all, err, wantBefore, wantAll)
			}
		}
	}
	// The figures themselves, for account a from the start: 1, 2, 3
	// before; 4 joins at the cut (1 again does not); 6 is after it.
	if before, all, _ := src.DistinctSplit(ctx, Window{To: cut}, cut, identify.FacetIP, "10.9.0.1", "contact", FacetValue{By: identify.FacetAccount, Value: "a"}); before != 3 || all != 4 {
		t.Errorf("account a: %d before, %d with the cut; want 3, 4", before, all)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}
