package ledger

import (
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/identify"
)

// A reach with After and an open end, on a live ledger: an Access written
// while the query runs (after its first reader opened, before the after
// part's) is newer than the answer and counts nowhere, not in the after
// part's impressions alone.
func TestReachAfterPinsAnOpenEnd(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	now := time.Now().UTC()
	l.Add(posts(now.Add(-2*time.Minute), "1", "192.0.2.1", "a"))
	l.Add(posts(now.Add(-time.Minute), "2", "192.0.2.2", "a"))
	// seen waits until a reader sees n impressions of a (the writer
	// writes every 100 ms).
	seen := func(n uint64) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			r := reader(t, dir, Window{})
			_, impr, err := r.Viewers([]string{"a"}, identify.FacetAccount)
			r.Close()
			if err != nil {
				t.Fatal(err)
			}
			if impr[0] == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the ledger shows %d impressions, want %d", impr[0], n)
			}
		}
	}
	seen(2)
	opens := 0
	during := func(*readerOptions) {
		// The second reader Reach opens (the part before After): the
		// first, the main one, has read the ledger already.
		if opens++; opens == 2 {
			l.Add(posts(time.Now().UTC(), "3", "192.0.2.3", "a"))
			seen(3)
		}
	}
	rc, err := dirSource{dir, []ReaderOption{during}}.Reach(t.Context(), ReachQuery{Authors: []string{"a"}, By: identify.FacetAccount, After: now.Add(-90 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if opens != 3 {
		t.Fatalf("%d readers opened, want 3 (the main one, before and after)", opens)
	}
	want := []ReachCell{{K: 1, When: 1, People: 1}, {K: 1, When: 2, People: 1}}
	if rc.Impressions != 2 || rc.AfterImpressions != 1 || len(rc.Cells) != 2 || rc.Cells[0] != want[0] || rc.Cells[1] != want[1] {
		t.Errorf("reach %+v, want 2 impressions, 1 after, cells %+v: the Access written during the query counted", rc, want)
	}
}
