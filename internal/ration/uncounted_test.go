package ration

import (
	"context"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/store"
	"github.com/warden-gw/warden/internal/store/memory"
)

// TestUncounted: through Uncounted a budget is read, never spent: its
// subjects are allowed while the count is under the limit and refused at
// it, and the store's count never moves; Link remembers nothing and
// Linked calls every id shown in a list, capping none.
func TestUncounted(t *testing.T) {
	ctx, now := context.Background(), time.Unix(1_700_000_000, 0)
	st := memory.New(memory.Options{SweepEvery: -1})
	u := Uncounted(st)
	req := func(subjects ...uint64) []store.SpendRequest {
		return []store.SpendRequest{{Key: "budget:b:acct", Window: time.Hour, Limit: 2, Subjects: subjects}}
	}
	count := func() int {
		r, err := st.Spend(ctx, now, req())
		if err != nil {
			t.Fatal(err)
		}
		return r[0].Count
	}
	for want, spend := range [][]uint64{nil, {1}, {2}} {
		if len(spend) > 0 {
			if _, err := st.Spend(ctx, now, req(spend...)); err != nil {
				t.Fatal(err)
			}
		}
		got, err := u.Spend(ctx, now, req(100, 101, 1))
		if err != nil {
			t.Fatal(err)
		}
		allowed := want < 2
		for i, a := range got[0].Allowed {
			if a != allowed {
				t.Fatalf("count %d: subject %d allowed %v, want %v", want, i, a, allowed)
			}
		}
		if got[0].Count != want || count() != want {
			t.Fatalf("count %d: uncounted says %d, store %d", want, got[0].Count, count())
		}
	}
	if err := u.Link(ctx, now, "link:account:acct", []uint64{100}, store.Social, 7, time.Hour); err != nil {
		t.Fatal(err)
	}
	if p, err := st.Linked(ctx, now, "link:account:acct", []uint64{100}, nil, nil); err != nil || p[0] != store.Unreferenced {
		t.Fatalf("the store after an uncounted Link: %v %v", p, err)
	}
	fan := &store.Fanout{Limit: 1, Window: time.Hour, Provenances: 1 << store.List, Capped: []bool{true, true}}
	p, err := u.Linked(ctx, now, "link:account:acct", []uint64{100, 101}, fan, nil)
	if err != nil || len(p) != 2 || p[0] != store.List || p[1] != store.List || len(fan.Capped) != 2 || fan.Capped[0] || fan.Capped[1] {
		t.Fatalf("uncounted Linked: %v %v, capped %v", p, err, fan.Capped)
	}
}
