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
// Linked is the store's, the fan-out cap counting opens.
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
	// Linked is the store's: an id linked there is shown, one never
	// linked unreferenced, and the fan-out cap counts opens.
	if err := st.Link(ctx, now, "link:account:acct", []uint64{100, 101}, store.List, 7, time.Hour); err != nil {
		t.Fatal(err)
	}
	fan := &store.Fanout{Limit: 1, Window: time.Hour, Provenances: 1 << store.List}
	for i, want := range []bool{false, true} {
		p, err := u.Linked(ctx, now, "link:account:acct", []uint64{100 + uint64(i), 102}, fan, nil)
		if err != nil || len(p) != 2 || p[0] != store.List || p[1] != store.Unreferenced || len(fan.Capped) != 2 || fan.Capped[0] != want {
			t.Fatalf("uncounted Linked, open %d: %v %v, capped %v", i+1, p, err, fan.Capped)
		}
	}
}

// TestLinkCanaries: ids linked after an answer (its canaries) are
// remembered with the answer's provenance and tag: opening one counts
// against that answer's fan-out cap, so the next real record opened from
// it is past a cap of 1; without the unreferenced rule nothing is linked.
func TestLinkCanaries(t *testing.T) {
	l := loadLab(t)
	e := newEnv(t, fanCfg(1, 0), l.Inspect)
	id := account("7")
	const list = "/v1/users/9/followers"
	e.get(t0, id, list, followers(400, 401))
	rt, _ := e.r.Match("GET", list)
	req := Request{Method: "GET", Path: list, ID: "req-" + list}
	if err := e.r.LinkCanaries(context.Background(), t0, id, req, rt, [][]byte{[]byte("900"), []byte("user_900")}); err != nil {
		t.Fatal(err)
	}
	if out := e.get(t0, id, "/v1/users/by-username/user_900", profile(900)); !served(t, out, profile(900)) || out.Access.Provenance != "list" {
		t.Fatalf("an inserted id, the first open: served %v, provenance %q", served(t, out, profile(900)), out.Access.Provenance)
	}
	if out := e.get(t0, id, "/v1/users/400", profile(400)); served(t, out, profile(400)) {
		t.Fatal("a real record opened after an inserted one, past a cap of 1: served")
	}
	bare := newEnv(t, Config{Budgets: fanCfg(1, 0).Budgets}, l.Inspect)
	if err := bare.r.LinkCanaries(context.Background(), t0, id, req, rt, [][]byte{[]byte("900")}); err != nil {
		t.Fatal(err)
	}
}
