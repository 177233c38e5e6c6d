package storetest

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/store"
)

// t0 is aligned to the hour and to the UTC day, so window boundaries sit at
// known offsets from it.
var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// Tolerances for what a backend may approximate.
const (
	// countTolerance bounds, as a fraction of the true count, a budget's
	// estimate and the distinct subjects it admits past its exact set
	// (HyperLogLog at precision 14: 0.81% standard error, so 3% is > 3σ).
	countTolerance = 0.03
	// leakTolerance bounds the fraction of refused subjects a backend may
	// admit when offered again past its exact set (the memory store: none).
	leakTolerance = 0.01
	// saturateIDs is how many distinct ids testLinkSaturation shows one
	// key: four times the default link capacity (4096 per generation).
	saturateIDs = 4 * 4096
	// minExact is the exact-set size every backend must have at least.
	minExact = 100
)

// Run runs the conformance suite against stores made by newStore, one per
// sub-test.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	open := func(t *testing.T) store.Store {
		t.Helper()
		s := newStore(t)
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
		return s
	}
	t.Run("Limit", func(t *testing.T) { testLimit(t, open) })
	t.Run("IndependentLimits", func(t *testing.T) { testIndependentLimits(t, open) })
	t.Run("LoweredBurst", func(t *testing.T) { testLoweredBurst(t, open) })
	t.Run("Admit", func(t *testing.T) { testAdmitBans(t, open) })
	t.Run("Bans", func(t *testing.T) { testBans(t, open) })
	t.Run("Spend", func(t *testing.T) { testSpend(t, open) })
	t.Run("SpendSeveralBudgets", func(t *testing.T) { testSpendSeveral(t, open) })
	t.Run("SpendBeyondExact", func(t *testing.T) { testSpendBeyondExact(t, open) })
	t.Run("Link", func(t *testing.T) { testLink(t, open) })
	t.Run("LinkRotation", func(t *testing.T) { testLinkRotation(t, open) })
	t.Run("LinkProvenance", func(t *testing.T) { testLinkProvenance(t, open) })
	t.Run("LinkSaturation", func(t *testing.T) { testLinkSaturation(t, open) })
	t.Run("Observe", func(t *testing.T) { testObserve(t, open) })
	t.Run("Offend", func(t *testing.T) { testOffend(t, open) })
	t.Run("LinkFanout", func(t *testing.T) { testLinkFanout(t, open) })
	t.Run("Invalid", func(t *testing.T) { testInvalid(t, open) })
	t.Run("ConcurrentSpend", func(t *testing.T) { testConcurrentSpend(t, open) })
	t.Run("ConcurrentAdmit", func(t *testing.T) { testConcurrentAdmit(t, open) })
	t.Run("LimitModel", func(t *testing.T) { testLimitModel(t, open) })
}

type opener func(t *testing.T) store.Store

var ctx = context.Background()

// limitStep is one Admit of a single limit at t0+at. never: want a refusal
// that can never pass (RetryAfter < 0) instead of want.RetryAfter.
type limitStep struct {
	at    time.Duration
	cost  int
	want  store.LimitResult
	never bool
}

func allow(remaining int, reset time.Duration) store.LimitResult {
	return store.LimitResult{Allowed: true, Remaining: remaining, ResetAfter: reset}
}

func refuse(remaining int, retry, reset time.Duration) store.LimitResult {
	return store.LimitResult{Remaining: remaining, RetryAfter: retry, ResetAfter: reset}
}

const (
	ms = time.Millisecond
	s1 = time.Second
)

func testLimit(t *testing.T, open opener) {
	cases := []struct {
		name     string
		interval time.Duration
		burst    int
		steps    []limitStep
	}{
		{"burst passes at once, then refused", s1, 5, []limitStep{
			{0, 1, allow(4, 1*s1), false},
			{0, 1, allow(3, 2*s1), false},
			{0, 1, allow(2, 3*s1), false},
			{0, 1, allow(1, 4*s1), false},
			{0, 1, allow(0, 5*s1), false},
			{0, 1, refuse(0, s1, 5*s1), false},
			{0, 1, refuse(0, s1, 5*s1), false},
		}},
		{"one per interval after the burst", s1, 2, []limitStep{
			{0, 1, allow(1, s1), false},
			{0, 1, allow(0, 2*s1), false},
			{0, 1, refuse(0, s1, 2*s1), false},
			{999 * ms, 1, refuse(0, ms, 1001*ms), false},
			{s1, 1, allow(0, 2*s1), false},
			{s1, 1, refuse(0, s1, 2*s1), false},
			{3 * s1, 1, allow(1, s1), false},
		}},
		{"full burst again once idle", s1, 3, []limitStep{
			{0, 1, allow(2, s1), false},
			{0, 1, allow(1, 2*s1), false},
			{0, 1, allow(0, 3*s1), false},
			{3 * s1, 1, allow(2, s1), false},
			{3 * s1, 1, allow(1, 2*s1), false},
		}},
		{"burst of one", 500 * ms, 1, []limitStep{
			{0, 1, allow(0, 500*ms), false},
			{0, 1, refuse(0, 500*ms, 500*ms), false},
			{250 * ms, 1, refuse(0, 250*ms, 250*ms), false},
			{500 * ms, 1, allow(0, 500*ms), false},
		}},
		{"cost takes several cells", s1, 5, []limitStep{
			{0, 2, allow(3, 2*s1), false},
			{0, 2, allow(1, 4*s1), false},
			{0, 2, refuse(1, s1, 4*s1), false},
			{0, 1, allow(0, 5*s1), false},
		}},
		{"cost 0 peeks without charging", s1, 2, []limitStep{
			{0, 0, allow(2, 0), false},
			{0, 0, allow(2, 0), false},
			{0, 1, allow(1, s1), false},
			{0, 1, allow(0, 2*s1), false},
			{0, 0, refuse(0, s1, 2*s1), false},
			{500 * ms, 0, refuse(0, 500*ms, 1500*ms), false},
			{s1, 0, allow(1, s1), false},
			{s1, 1, allow(0, 2*s1), false},
		}},
		{"cost above burst never passes and charges nothing", s1, 2, []limitStep{
			{0, 3, refuse(2, 0, 0), true},
			{0, 1, allow(1, s1), false},
			{0, 3, refuse(1, 0, s1), true},
			{0, 1, allow(0, 2*s1), false},
		}},
		{"sub-second interval", 100 * ms, 3, []limitStep{
			{0, 1, allow(2, 100*ms), false},
			{0, 1, allow(1, 200*ms), false},
			{0, 1, allow(0, 300*ms), false},
			{0, 1, refuse(0, 100*ms, 300*ms), false},
			{40 * ms, 1, refuse(0, 60*ms, 260*ms), false},
			{100 * ms, 1, allow(0, 300*ms), false},
			{250 * ms, 1, allow(0, 250*ms), false},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			for i, st := range c.steps {
				req := &store.AdmitRequest{Limits: []store.LimitRequest{{Key: "limit:" + c.name, Interval: c.interval, Burst: c.burst, Cost: st.cost}}}
				res, err := s.Admit(ctx, t0.Add(st.at), req)
				if err != nil {
					t.Fatalf("step %d: admit: %v", i, err)
				}
				if res.Ban != nil || len(res.Limits) != 1 {
					t.Fatalf("step %d: got ban %v and %d limit results, want no ban and 1", i, res.Ban, len(res.Limits))
				}
				got := res.Limits[0]
				if st.never {
					if got.RetryAfter >= 0 {
						t.Errorf("step %d (t0+%v cost %d): RetryAfter %v, want < 0 (never)", i, st.at, st.cost, got.RetryAfter)
					}
					got.RetryAfter = 0
				}
				if got != st.want {
					t.Errorf("step %d (t0+%v cost %d): got %+v, want %+v", i, st.at, st.cost, got, st.want)
				}
			}
		})
	}
}

func testIndependentLimits(t *testing.T, open opener) {
	s := open(t)
	a := store.LimitRequest{Key: "limit:a", Interval: s1, Burst: 1, Cost: 1}
	b := store.LimitRequest{Key: "limit:b", Interval: s1, Burst: 3, Cost: 1}
	c := store.LimitRequest{Key: "limit:c", Interval: s1, Burst: 3, Cost: 1}
	steps := []struct {
		name   string
		limits []store.LimitRequest
		want   []store.LimitResult
	}{
		{"both admit", []store.LimitRequest{a, b}, []store.LimitResult{allow(0, s1), allow(2, s1)}},
		{"a refuses, b still charged", []store.LimitRequest{a, b}, []store.LimitResult{refuse(0, s1, s1), allow(1, 2*s1)}},
		{"b alone sees the charge", []store.LimitRequest{b}, []store.LimitResult{allow(0, 3*s1)}},
		{"same settings, other key is fresh", []store.LimitRequest{c, a}, []store.LimitResult{allow(2, s1), refuse(0, s1, s1)}},
	}
	for _, st := range steps {
		res, err := s.Admit(ctx, t0, &store.AdmitRequest{Limits: st.limits})
		if err != nil {
			t.Fatalf("%s: admit: %v", st.name, err)
		}
		if !slices.Equal(res.Limits, st.want) {
			t.Errorf("%s: got %+v, want %+v", st.name, res.Limits, st.want)
		}
	}
}

// testLoweredBurst changes a key's burst between calls, as a config reload
// does: Remaining never goes negative and the key drains at the new rate.
func testLoweredBurst(t *testing.T, open opener) {
	s := open(t)
	steps := []struct {
		at    time.Duration
		burst int
		want  store.LimitResult
	}{
		{0, 10, allow(9, s1)},
		{0, 10, allow(8, 2*s1)},
		{0, 10, allow(7, 3*s1)},
		{0, 1, refuse(0, 3*s1, 3*s1)},
		{3 * s1, 1, allow(0, s1)},
	}
	for i, st := range steps {
		res, err := s.Admit(ctx, t0.Add(st.at), &store.AdmitRequest{Limits: []store.LimitRequest{{Key: "limit:lowered", Interval: s1, Burst: st.burst, Cost: 1}}})
		if err != nil {
			t.Fatalf("step %d: admit: %v", i, err)
		}
		if res.Limits[0] != st.want {
			t.Errorf("step %d (t0+%v burst %d): got %+v, want %+v", i, st.at, st.burst, res.Limits[0], st.want)
		}
	}
}

func ban(facet, value string, until time.Time) store.Ban {
	return store.Ban{Facet: facet, Value: value, Reason: "test " + facet, By: "storetest", Created: t0.Add(-time.Hour), Until: until}
}

func sameBan(a, b store.Ban) bool {
	return a.Facet == b.Facet && a.Value == b.Value && a.Reason == b.Reason && a.By == b.By &&
		a.Created.Equal(b.Created) && a.Until.Equal(b.Until) && a.Anonymous == b.Anonymous
}

func testAdmitBans(t *testing.T, open opener) {
	s := open(t)
	bans := []store.Ban{
		ban("account", "acc-1", t0.Add(time.Minute)),
		ban("ip", "192.0.2.7", t0.Add(time.Minute)),
		ban("app", "forever", time.Time{}),
	}
	bans[1].Anonymous = true // kept and returned as it was put (admit decides on it)
	for _, b := range bans {
		if err := s.PutBan(ctx, b); err != nil {
			t.Fatalf("put ban: %v", err)
		}
	}
	limit := store.LimitRequest{Key: "limit:banned", Interval: time.Hour, Burst: 1, Cost: 1}
	cases := []struct {
		name string
		at   time.Duration
		keys []store.BanKey
		want *store.Ban // nil: no ban, the limit is evaluated
	}{
		{"unbanned values pass to the limits", 0, []store.BanKey{{Facet: "ip", Value: "192.0.2.8"}, {Facet: "account", Value: "acc-2"}}, nil},
		{"ban matches, limits not evaluated", 0, []store.BanKey{{Facet: "ip", Value: "192.0.2.8"}, {Facet: "account", Value: "acc-1"}}, &bans[0]},
		{"first matching ban in request order", 0, []store.BanKey{{Facet: "ip", Value: "192.0.2.7"}, {Facet: "account", Value: "acc-1"}}, &bans[1]},
		{"other order, other ban", 0, []store.BanKey{{Facet: "account", Value: "acc-1"}, {Facet: "ip", Value: "192.0.2.7"}}, &bans[0]},
		{"facet is part of the key", 0, []store.BanKey{{Facet: "account", Value: "192.0.2.7"}}, nil},
		{"still banned just before Until", time.Minute - ms, []store.BanKey{{Facet: "account", Value: "acc-1"}}, &bans[0]},
		{"expired at Until", time.Minute, []store.BanKey{{Facet: "account", Value: "acc-1"}, {Facet: "ip", Value: "192.0.2.7"}}, nil},
		{"zero Until never expires", 10 * 365 * 24 * time.Hour, []store.BanKey{{Facet: "app", Value: "forever"}}, &bans[2]},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := limit
			l.Key += string(rune('a' + i))
			res, err := s.Admit(ctx, t0.Add(c.at), &store.AdmitRequest{Bans: c.keys, Limits: []store.LimitRequest{l}})
			if err != nil {
				t.Fatalf("admit: %v", err)
			}
			if c.want == nil {
				if res.Ban != nil {
					t.Fatalf("got ban %+v, want none", *res.Ban)
				}
				if len(res.Limits) != 1 || !res.Limits[0].Allowed {
					t.Fatalf("limits %+v, want one admitted", res.Limits)
				}
				return
			}
			if res.Ban == nil || !sameBan(*res.Ban, *c.want) {
				t.Fatalf("got ban %+v, want %+v", res.Ban, *c.want)
			}
			if len(res.Limits) != 0 {
				t.Fatalf("got limit results %+v with a ban, want none", res.Limits)
			}
			// The limit was not charged: its whole burst is still there.
			res, err = s.Admit(ctx, t0.Add(c.at), &store.AdmitRequest{Limits: []store.LimitRequest{l}})
			if err != nil {
				t.Fatalf("admit: %v", err)
			}
			if len(res.Limits) != 1 || !res.Limits[0].Allowed {
				t.Fatalf("limit after a ban: %+v, want admitted (not charged by the banned request)", res.Limits)
			}
		})
	}
}

func testBans(t *testing.T, open opener) {
	t.Run("put replaces, remove reports", func(t *testing.T) {
		s := open(t)
		k := store.BanKey{Facet: "ip", Value: "198.51.100.1"}
		removed, err := s.RemoveBan(ctx, k)
		if err != nil || removed {
			t.Fatalf("remove unknown ban: %v, %v; want false, nil", removed, err)
		}
		first := ban("ip", "198.51.100.1", t0.Add(time.Hour))
		second := first
		second.Reason, second.By, second.Until = "replaced", "admin", t0.Add(2*time.Hour)
		for _, b := range []store.Ban{first, second} {
			if err := s.PutBan(ctx, b); err != nil {
				t.Fatalf("put ban: %v", err)
			}
		}
		got, err := s.ListBans(ctx, t0)
		if err != nil {
			t.Fatalf("list bans: %v", err)
		}
		if len(got) != 1 || !sameBan(got[0], second) {
			t.Fatalf("list after replacing: %+v, want only %+v", got, second)
		}
		if removed, err = s.RemoveBan(ctx, k); err != nil || !removed {
			t.Fatalf("remove existing ban: %v, %v; want true, nil", removed, err)
		}
		if removed, err = s.RemoveBan(ctx, k); err != nil || removed {
			t.Fatalf("remove it again: %v, %v; want false, nil", removed, err)
		}
		if got, err = s.ListBans(ctx, t0); err != nil || len(got) != 0 {
			t.Fatalf("list after remove: %+v, %v; want empty", got, err)
		}
	})
	t.Run("list excludes expired, sorted by facet then value", func(t *testing.T) {
		s := open(t)
		all := []store.Ban{
			ban("net", "203.0.113.0/24", t0.Add(time.Minute)),
			ban("account", "b", t0.Add(time.Hour)),
			ban("ip", "192.0.2.1", time.Time{}),
			ban("account", "a", t0.Add(time.Minute)),
			ban("account", "c", t0.Add(-time.Second)),
		}
		for _, b := range all {
			if err := s.PutBan(ctx, b); err != nil {
				t.Fatalf("put ban: %v", err)
			}
		}
		cases := []struct {
			at   time.Duration
			want []store.Ban
		}{
			{0, []store.Ban{all[3], all[1], all[2], all[0]}},
			{time.Minute, []store.Ban{all[1], all[2]}},
			{time.Hour, []store.Ban{all[2]}},
		}
		for _, c := range cases {
			got, err := s.ListBans(ctx, t0.Add(c.at))
			if err != nil {
				t.Fatalf("list bans at t0+%v: %v", c.at, err)
			}
			if !slices.EqualFunc(got, c.want, sameBan) {
				t.Errorf("list bans at t0+%v:\n got %+v\nwant %+v", c.at, got, c.want)
			}
		}
	})
}

type spendStep struct {
	at       time.Duration
	subjects []uint64
	want     []bool
	count    int
}

const (
	T = true
	F = false
)

func testSpend(t *testing.T, open opener) {
	hour, day := time.Hour, 24*time.Hour
	cases := []struct {
		name   string
		window time.Duration
		limit  int
		steps  []spendStep
	}{
		{"exact at the limit", hour, 3, []spendStep{
			{0, []uint64{1, 2, 3, 4, 5}, []bool{T, T, T, F, F}, 3},
		}},
		{"one below the limit, then at it", hour, 3, []spendStep{
			{0, []uint64{1, 2}, []bool{T, T}, 2},
			{0, []uint64{3}, []bool{T}, 3},
			{0, []uint64{4}, []bool{F}, 3},
		}},
		{"re-views are free", hour, 3, []spendStep{
			{0, []uint64{1, 2, 3}, []bool{T, T, T}, 3},
			{time.Minute, []uint64{3, 2, 1}, []bool{T, T, T}, 3},
			{time.Minute, []uint64{1, 4}, []bool{T, F}, 3},
		}},
		{"refused subjects stay refused", hour, 2, []spendStep{
			{0, []uint64{1, 2, 3}, []bool{T, T, F}, 2},
			{0, []uint64{3}, []bool{F}, 2},
			{time.Minute, []uint64{3, 1}, []bool{F, T}, 2},
			{59 * time.Minute, []uint64{3}, []bool{F}, 2},
		}},
		{"duplicates in one call", hour, 1, []spendStep{
			{0, []uint64{7, 7, 8, 7}, []bool{T, T, F, T}, 1},
		}},
		{"zero limit refuses everyone", hour, 0, []spendStep{
			{0, []uint64{1, 2}, []bool{F, F}, 0},
		}},
		{"no subjects reads the count", hour, 5, []spendStep{
			{0, nil, []bool{}, 0},
			{0, []uint64{1, 2}, []bool{T, T}, 2},
			{0, nil, []bool{}, 2},
		}},
		{"large ids", hour, 2, []spendStep{
			{0, []uint64{0, 1<<64 - 1, 1 << 63}, []bool{T, T, F}, 2},
			{0, []uint64{1<<64 - 1, 0}, []bool{T, T}, 2},
		}},
		{"window rolls over", hour, 2, []spendStep{
			{0, []uint64{1, 2, 3}, []bool{T, T, F}, 2},
			{hour - ms, []uint64{3}, []bool{F}, 2},
			{hour, []uint64{3, 1}, []bool{T, T}, 2},
			{hour, []uint64{2}, []bool{F}, 2},
		}},
		{"windows align to the epoch, not the first spend", day, 2, []spendStep{
			{0, []uint64{1}, []bool{T}, 1},
			{12*hour - ms, []uint64{2, 3}, []bool{T, F}, 2},
			{12 * hour, []uint64{3}, []bool{T}, 1},
			{36*hour - ms, []uint64{1, 2}, []bool{T, F}, 2},
			{36 * hour, []uint64{4}, []bool{T}, 1},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			for i, st := range c.steps {
				res, err := s.Spend(ctx, t0.Add(st.at), []store.SpendRequest{{Key: "budget:" + c.name, Window: c.window, Limit: c.limit, Subjects: st.subjects}})
				if err != nil {
					t.Fatalf("step %d: spend: %v", i, err)
				}
				if len(res) != 1 {
					t.Fatalf("step %d: %d results, want 1", i, len(res))
				}
				if !slices.Equal(res[0].Allowed, st.want) || res[0].Count != st.count {
					t.Errorf("step %d (t0+%v %v): got %v count %d, want %v count %d", i, st.at, st.subjects, res[0].Allowed, res[0].Count, st.want, st.count)
				}
			}
		})
	}
}

func testSpendSeveral(t *testing.T, open opener) {
	s := open(t)
	reqs := []store.SpendRequest{
		{Key: "budget:a", Window: time.Hour, Limit: 1, Subjects: []uint64{1, 2}},
		{Key: "budget:b", Window: time.Hour, Limit: 2, Subjects: []uint64{1, 2, 3}},
		{Key: "budget:c", Window: time.Minute, Limit: 5, Subjects: nil},
	}
	res, err := s.Spend(ctx, t0, reqs)
	if err != nil {
		t.Fatalf("spend: %v", err)
	}
	want := []store.SpendResult{{Allowed: []bool{T, F}, Count: 1}, {Allowed: []bool{T, T, F}, Count: 2}, {Allowed: []bool{}, Count: 0}}
	if len(res) != len(want) {
		t.Fatalf("%d results, want %d", len(res), len(want))
	}
	for i := range want {
		if !slices.Equal(res[i].Allowed, want[i].Allowed) || res[i].Count != want[i].Count {
			t.Errorf("budget %d: got %+v, want %+v", i, res[i], want[i])
		}
	}
}

func within(got, want int, tol float64) bool {
	d := float64(got - want)
	return d <= tol*float64(want) && -d <= tol*float64(want)
}

// spendAll offers subjects in batches and returns which were allowed and the
// last count.
func spendAll(t *testing.T, s store.Store, key string, limit int, subjects []uint64) ([]bool, int) {
	t.Helper()
	allowed := make([]bool, 0, len(subjects))
	count := 0
	for b := range slices.Chunk(subjects, 250) {
		res, err := s.Spend(ctx, t0, []store.SpendRequest{{Key: key, Window: 24 * time.Hour, Limit: limit, Subjects: b}})
		if err != nil {
			t.Fatalf("spend: %v", err)
		}
		allowed = append(allowed, res[0].Allowed...)
		count = res[0].Count
	}
	return allowed, count
}

func seq(from, n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(from + i)
	}
	return out
}

func testSpendBeyondExact(t *testing.T, open opener) {
	limit, offered := 5000, 10000
	if testing.Short() {
		limit, offered = 3000, 6000
	}
	t.Run("budget closes near the limit", func(t *testing.T) {
		s := open(t)
		subjects := seq(1, offered)
		allowed, count := spendAll(t, s, "budget:beyond", limit, subjects)
		admitted := 0
		var refused []uint64
		for i, a := range allowed {
			if a {
				admitted++
			} else {
				refused = append(refused, subjects[i])
			}
		}
		if !within(admitted, limit, countTolerance) {
			t.Errorf("admitted %d distinct subjects, want %d ± %.0f%%", admitted, limit, 100*countTolerance)
		}
		if !within(count, admitted, countTolerance) {
			t.Errorf("count %d, want %d admitted ± %.0f%%", count, admitted, 100*countTolerance)
		}
		// The first subjects sit in every backend's exact set: re-views free.
		again, count2 := spendAll(t, s, "budget:beyond", limit, subjects[:minExact])
		for i, a := range again {
			if !a {
				t.Fatalf("re-view of subject %d (counted first) refused", subjects[i])
			}
		}
		if count2 != count {
			t.Errorf("count after re-views %d, want unchanged %d", count2, count)
		}
		again, count3 := spendAll(t, s, "budget:beyond", limit, refused)
		leaked := 0
		for _, a := range again {
			if a {
				leaked++
			}
		}
		if float64(leaked) > leakTolerance*float64(len(refused)) {
			t.Errorf("%d of %d refused subjects admitted when offered again, want at most %.0f%%", leaked, len(refused), 100*leakTolerance)
		}
		if !within(count3, limit, countTolerance) {
			t.Errorf("count after offering the refused again %d, want %d ± %.0f%%", count3, limit, 100*countTolerance)
		}
	})
	t.Run("room left admits everyone, re-views free", func(t *testing.T) {
		s := open(t)
		n := offered * 8 / 10
		subjects := seq(1_000_000, n)
		for round := range 2 {
			allowed, count := spendAll(t, s, "budget:room", 2*offered, subjects)
			for i, a := range allowed {
				if !a {
					t.Fatalf("round %d: subject %d refused with room left", round, subjects[i])
				}
			}
			if !within(count, n, countTolerance) {
				t.Errorf("round %d: count %d, want %d ± %.0f%%", round, count, n, 100*countTolerance)
			}
		}
	})
}

// Provenances in short, for the tables below.
const (
	pU = store.Unreferenced
	pL = store.List
	pS = store.Search
	pO = store.Social
)

func testLink(t *testing.T, open opener) {
	hour := time.Hour
	type check struct {
		at   time.Duration
		ids  []uint64
		want []store.Provenance
	}
	type link struct {
		at  time.Duration
		ids []uint64
		ttl time.Duration // 0: one hour
	}
	cases := []struct {
		name   string
		links  []link
		checks []check
	}{
		{"linked within ttl", []link{{0, []uint64{1, 2, 3}, 0}}, []check{
			{0, []uint64{1, 2, 3}, []store.Provenance{pL, pL, pL}},
			{hour - ms, []uint64{3, 2, 1}, []store.Provenance{pL, pL, pL}},
		}},
		{"forgotten at ttl", []link{{0, []uint64{1, 2, 3}, 0}}, []check{
			{hour, []uint64{1, 2, 3}, []store.Provenance{pU, pU, pU}},
		}},
		{"each id keeps its own ttl", []link{{0, []uint64{1}, 0}, {30 * time.Minute, []uint64{2}, 0}}, []check{
			{hour - ms, []uint64{1, 2}, []store.Provenance{pL, pL}},
			{90*time.Minute - ms, []uint64{2}, []store.Provenance{pL}},
			{3 * hour, []uint64{1, 2}, []store.Provenance{pU, pU}},
		}},
		{"relinking extends", []link{{0, []uint64{5}, 0}, {50 * time.Minute, []uint64{5}, 0}}, []check{
			{110*time.Minute - ms, []uint64{5}, []store.Provenance{pL}},
		}},
		{"a long ttl outlives later short ones", []link{
			{0, []uint64{1}, 3 * hour},
			{70 * time.Minute, []uint64{2}, 0},
			{100 * time.Minute, []uint64{5}, 0},
			{140 * time.Minute, []uint64{3}, 0},
		}, []check{
			{150 * time.Minute, []uint64{1, 3, 5}, []store.Provenance{pL, pL, pL}},
			{3*hour - ms, []uint64{1, 3}, []store.Provenance{pL, pL}},
			{3 * hour, []uint64{1}, []store.Provenance{pU}},
		}},
		{"unknown key knows nothing", nil, []check{
			{0, []uint64{1}, []store.Provenance{pU}},
			{0, nil, []store.Provenance{}},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			key := "link:" + c.name
			for _, l := range c.links {
				ttl := l.ttl
				if ttl == 0 {
					ttl = hour
				}
				if err := s.Link(ctx, t0.Add(l.at), key, l.ids, store.List, 0, ttl); err != nil {
					t.Fatalf("link: %v", err)
				}
			}
			for i, ch := range c.checks {
				got, err := s.Linked(ctx, t0.Add(ch.at), key, ch.ids, nil, nil)
				if err != nil {
					t.Fatalf("check %d: linked: %v", i, err)
				}
				if !slices.Equal(got, ch.want) {
					t.Errorf("check %d (t0+%v %v): got %v, want %v", i, ch.at, ch.ids, got, ch.want)
				}
			}
		})
	}
}

// testLinkProvenance: an id keeps the best provenance it was shown with
// while that showing lives; a worse one never replaces it; each key is
// its own.
func testLinkProvenance(t *testing.T, open opener) {
	type link struct {
		at  time.Duration
		ids []uint64
		p   store.Provenance
	}
	cases := []struct {
		name  string
		links []link
		at    time.Duration
		ids   []uint64
		want  []store.Provenance
	}{
		{"each as shown", []link{{0, []uint64{1}, pL}, {0, []uint64{2}, pS}, {0, []uint64{3}, pO}}, time.Minute,
			[]uint64{1, 2, 3, 4}, []store.Provenance{pL, pS, pO, pU}},
		{"a better one upgrades", []link{{0, []uint64{1, 2}, pL}, {time.Minute, []uint64{1}, pS}, {time.Minute, []uint64{2}, pO}}, 2 * time.Minute,
			[]uint64{1, 2}, []store.Provenance{pS, pO}},
		{"a worse one does not downgrade", []link{{0, []uint64{1, 2}, pO}, {time.Minute, []uint64{1}, pL}, {time.Minute, []uint64{2}, pS}}, 2 * time.Minute,
			[]uint64{1, 2}, []store.Provenance{pO, pO}},
		{"forgotten after its showings", []link{{0, []uint64{7}, pO}, {50 * time.Minute, []uint64{7}, pL}}, 4 * time.Hour,
			[]uint64{7}, []store.Provenance{pU}},
		{"repeated ids in one call", []link{{0, []uint64{9, 9, 9}, pS}}, time.Minute,
			[]uint64{9, 9}, []store.Provenance{pS, pS}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			for _, l := range c.links {
				if err := s.Link(ctx, t0.Add(l.at), "link:p", l.ids, l.p, 0, time.Hour); err != nil {
					t.Fatalf("link: %v", err)
				}
			}
			got, err := s.Linked(ctx, t0.Add(c.at), "link:p", c.ids, nil, nil)
			if err != nil {
				t.Fatalf("linked: %v", err)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
			// In a caller's buffer with room, whatever it held before; in
			// new memory past its room.
			for _, room := range []int{len(c.ids) + 1, len(c.ids) - 1} {
				dst := make([]store.Provenance, room)
				for i := range dst {
					dst[i] = pS
				}
				got, err := s.Linked(ctx, t0.Add(c.at), "link:p", c.ids, nil, dst[:min(room, 1)])
				if err != nil {
					t.Fatalf("linked into %d: %v", room, err)
				}
				shared := room > 0 && &got[0] == &dst[0]
				if !slices.Equal(got, c.want) || shared != (room >= len(c.ids)) {
					t.Errorf("into a buffer of %d: got %v (in its memory: %v), want %v", room, got, shared, c.want)
				}
			}
			other, err := s.Linked(ctx, t0.Add(c.at), "link:other", c.ids, nil, nil)
			if err != nil {
				t.Fatalf("linked: %v", err)
			}
			for i, p := range other {
				if p != pU {
					t.Errorf("other key: id %d is %v, want unreferenced", c.ids[i], p)
				}
			}
		})
	}
}

// testLinkRotation links new ids every 10 minutes for hours (ttl 1h) and
// checks after each link that every id linked within the last hour is still
// known: no false negatives across a backend's rotations.
func testLinkRotation(t *testing.T, open opener) {
	s := open(t)
	const perStep, steps = 50, 36
	for step := range steps {
		now := t0.Add(time.Duration(step) * 10 * time.Minute)
		if err := s.Link(ctx, now, "link:rotation", seq(step*perStep, perStep), store.Search, 0, time.Hour); err != nil {
			t.Fatalf("link: %v", err)
		}
		from := max(0, step-5) // links at now-50m .. now
		ids := seq(from*perStep, (step-from+1)*perStep)
		got, err := s.Linked(ctx, now.Add(9*time.Minute), "link:rotation", ids, nil, nil)
		if err != nil {
			t.Fatalf("linked: %v", err)
		}
		for i, p := range got {
			if p != store.Search {
				t.Fatalf("step %d: id %d linked within ttl is %v, want search", step, ids[i], p)
			}
		}
	}
}

// testLinkSaturation shows one key far more ids than it holds (as an
// identity reading lists wholesale does), then checks that saturation never
// helps it: an id never shown is never reported shown, an id shown in a
// list never better, and what was remembered before the flood stays.
func testLinkSaturation(t *testing.T, open opener) {
	s := open(t)
	social := seq(1, 50)
	if err := s.Link(ctx, t0, "link:flood", social, store.Social, 0, time.Hour); err != nil {
		t.Fatalf("link: %v", err)
	}
	flood := seq(1_000, saturateIDs)
	for from := 0; from < len(flood); from += 100 {
		if err := s.Link(ctx, t0.Add(time.Second), "link:flood", flood[from:min(from+100, len(flood))], store.List, 0, time.Hour); err != nil {
			t.Fatalf("link: %v", err)
		}
	}
	// Social ids shown again as a list keep their provenance.
	if err := s.Link(ctx, t0.Add(2*time.Second), "link:flood", social, store.List, 0, time.Hour); err != nil {
		t.Fatalf("link: %v", err)
	}
	at := t0.Add(time.Minute)
	never, err := s.Linked(ctx, at, "link:flood", seq(10_000_000, 20_000), nil, nil)
	if err != nil {
		t.Fatalf("linked: %v", err)
	}
	for i, p := range never {
		if p != pU {
			t.Fatalf("never-shown id %d reported %v after %d ids: a saturated key must not grant a provenance", 10_000_000+i, p, saturateIDs)
		}
	}
	shown, err := s.Linked(ctx, at, "link:flood", flood, nil, nil)
	if err != nil {
		t.Fatalf("linked: %v", err)
	}
	kept := 0
	for i, p := range shown {
		switch p {
		case pL:
			kept++
		case pU:
		default:
			t.Fatalf("id %d shown in a list reported %v", flood[i], p)
		}
	}
	if kept < minExact {
		t.Errorf("only %d of %d ids shown in lists remembered, want at least %d", kept, len(flood), minExact)
	}
	before, err := s.Linked(ctx, at, "link:flood", social, nil, nil)
	if err != nil {
		t.Fatalf("linked: %v", err)
	}
	for i, p := range before {
		if p != pO {
			t.Errorf("id %d shown socially before the flood is %v, want social", social[i], p)
		}
	}
}

func testInvalid(t *testing.T, open opener) {
	s := open(t)
	lim := func(interval time.Duration, burst, cost int) error {
		_, err := s.Admit(ctx, t0, &store.AdmitRequest{Limits: []store.LimitRequest{
			{Key: "limit:ok", Interval: s1, Burst: 1, Cost: 1},
			{Key: "limit:bad", Interval: interval, Burst: burst, Cost: cost},
		}})
		return err
	}
	spend := func(window time.Duration, limit int) error {
		_, err := s.Spend(ctx, t0, []store.SpendRequest{{Key: "budget:bad", Window: window, Limit: limit, Subjects: []uint64{1}}})
		return err
	}
	cases := []struct {
		name string
		err  error
	}{
		{"zero interval", lim(0, 1, 1)},
		{"negative interval", lim(-s1, 1, 1)},
		{"zero burst", lim(s1, 0, 1)},
		{"negative cost", lim(s1, 1, -1)},
		{"zero window", spend(0, 1)},
		{"negative limit", spend(time.Hour, -1)},
		{"zero ttl", s.Link(ctx, t0, "link:bad", []uint64{1}, store.List, 0, 0)},
		{"unreferenced provenance", s.Link(ctx, t0, "link:bad", []uint64{1}, store.Unreferenced, 0, time.Hour)},
		{"unknown provenance", s.Link(ctx, t0, "link:bad", []uint64{1}, store.Provenance(9), 0, time.Hour)},
	}
	for _, c := range cases {
		if c.err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
	// A call refused as invalid charged nothing.
	res, err := s.Admit(ctx, t0, &store.AdmitRequest{Limits: []store.LimitRequest{{Key: "limit:ok", Interval: s1, Burst: 1, Cost: 1}}})
	if err != nil || len(res.Limits) != 1 || !res.Limits[0].Allowed {
		t.Errorf("valid limit after invalid calls: %+v, %v; want admitted", res.Limits, err)
	}
}

// testConcurrentSpend has many callers spend one budget at once, each offering
// overlapping subjects: exactly Limit distinct subjects are admitted in all.
func testConcurrentSpend(t *testing.T, open opener) {
	s := open(t)
	const limit, workers, calls, pool = 100, 8, 40, 400
	admitted := make([]map[uint64]bool, workers)
	var wg sync.WaitGroup
	for w := range workers {
		admitted[w] = map[uint64]bool{}
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for range calls {
				subjects := make([]uint64, 10)
				for i := range subjects {
					subjects[i] = rng.Uint64N(pool)
				}
				res, err := s.Spend(ctx, t0, []store.SpendRequest{{Key: "budget:shared", Window: time.Hour, Limit: limit, Subjects: subjects}})
				if err != nil {
					t.Errorf("spend: %v", err)
					return
				}
				if res[0].Count > limit {
					t.Errorf("count %d past the limit %d", res[0].Count, limit)
				}
				for i, a := range res[0].Allowed {
					if a {
						admitted[w][subjects[i]] = true
					}
				}
			}
		})
	}
	wg.Wait()
	union := map[uint64]bool{}
	for _, m := range admitted {
		for k := range m {
			union[k] = true
		}
	}
	if len(union) != limit {
		t.Errorf("%d distinct subjects admitted in all, want exactly %d", len(union), limit)
	}
	res, err := s.Spend(ctx, t0, []store.SpendRequest{{Key: "budget:shared", Window: time.Hour, Limit: limit}})
	if err != nil || res[0].Count != limit {
		t.Errorf("final count %+v, %v; want %d", res, err, limit)
	}
}

// testConcurrentAdmit hits one limit from many goroutines at the same
// instant: exactly Burst requests pass.
func testConcurrentAdmit(t *testing.T, open opener) {
	s := open(t)
	const burst, workers, calls = 50, 8, 20
	var mu sync.Mutex
	passed := 0
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			n := 0
			for range calls {
				res, err := s.Admit(ctx, t0, &store.AdmitRequest{Limits: []store.LimitRequest{{Key: "limit:shared", Interval: time.Hour, Burst: burst, Cost: 1}}})
				if err != nil {
					t.Errorf("admit: %v", err)
					return
				}
				if res.Limits[0].Allowed {
					n++
				}
			}
			mu.Lock()
			passed += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if passed != burst {
		t.Errorf("%d requests admitted, want exactly the burst %d", passed, burst)
	}
}

// gcra is the reference rate limit every backend must match exactly for a
// single caller: the memory store's GCRA, in the µs the Redis scripts use.
type gcra struct {
	t, bw int64 // µs: interval, interval·burst
	burst int
	tat   int64
}

func (g *gcra) admit(now int64, cost int) store.LimitResult {
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	tat := max(g.tat, now)
	r := store.LimitResult{}
	rtat := tat
	switch {
	case cost > g.burst:
		r.RetryAfter = -1
	case cost == 0:
		if at := tat + g.t - g.bw; now >= at {
			r.Allowed = true
		} else {
			r.RetryAfter = us(at - now)
		}
	default:
		nt := tat + min(int64(cost)*g.t, g.bw)
		if at := nt - g.bw; now >= at {
			r.Allowed, rtat, g.tat = true, nt, nt
		} else {
			r.RetryAfter = us(at - now)
		}
	}
	r.Remaining = int(max(0, now+g.bw-rtat) / g.t)
	r.ResetAfter = us(rtat - now)
	return r
}

// testLimitModel runs one caller's long sequence on a limit with a large
// burst (one a remote store may serve from a local lease while the bucket
// is far from empty): bursts that drain it past half and to empty, pauses
// that refill it partly and fully, peeks and costs of several cells. Every
// result must be the exact GCRA's, far from the limit and near it.
func testLimitModel(t *testing.T, open opener) {
	s := open(t)
	const burst = 1000
	g := gcra{t: 1000, bw: 1000 * burst, burst: burst}
	rng := rand.New(rand.NewPCG(7, 24))
	now := micros(t0)
	mismatches := 0
	for i := range 4000 {
		switch r := rng.IntN(100); {
		case r < 2:
			now += int64(rng.IntN(2000)) * 1000 // a pause: up to 2 s (a full refill)
		case r < 30:
			now += int64(rng.IntN(3000)) // up to 3 ms: a few cells back
		}
		cost := 1
		switch r := rng.IntN(100); {
		case r < 3:
			cost = 0
		case r < 8:
			cost = 1 + rng.IntN(5)
		}
		want := g.admit(now, cost)
		res, err := s.Admit(ctx, time.UnixMicro(now), &store.AdmitRequest{Limits: []store.LimitRequest{{Key: "limit:model", Interval: time.Millisecond, Burst: burst, Cost: cost}}})
		if err != nil {
			t.Fatalf("step %d: admit: %v", i, err)
		}
		if len(res.Limits) != 1 || res.Limits[0] != want {
			if mismatches++; mismatches <= 5 {
				t.Errorf("step %d (t0+%dµs, cost %d, model remaining before %d): got %+v, want %+v", i, now-micros(t0), cost, want.Remaining, res.Limits, want)
			}
		}
	}
	if mismatches > 0 {
		t.Errorf("%d of 4000 results differ from the exact GCRA", mismatches)
	}
}

func micros(t time.Time) int64 { return t.UnixMicro() }
