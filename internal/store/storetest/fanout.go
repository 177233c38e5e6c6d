package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/store"
)

// testLinkFanout checks the fan-out cap Linked counts in the same call: at
// most Limit distinct ids opened per answer within Window, an id opened
// again free, each answer its own count, only the capped provenances
// counted, the latest answer of an id's provenance the one it counts
// against, the hold, and expiry.
func testLinkFanout(t *testing.T, open opener) {
	const a, b = 11, 22 // answer tags
	fan := func(limit int, hold time.Duration, provs ...store.Provenance) *store.Fanout {
		f := &store.Fanout{Limit: limit, Window: 10 * time.Minute, Hold: hold}
		for _, p := range provs {
			f.Provenances |= 1 << p
		}
		return f
	}
	type link struct {
		at  time.Duration
		ids []uint64
		p   store.Provenance
		tag uint32
	}
	type open1 struct {
		at     time.Duration
		id     uint64
		capped bool
		p      store.Provenance // want
	}
	cases := []struct {
		name  string
		fan   *store.Fanout
		links []link
		opens []open1
	}{
		{"limit per answer", fan(3, 0, pS, pL), []link{{0, seq(1, 10), pS, a}}, []open1{
			{1 * time.Second, 1, false, pS}, {2 * time.Second, 2, false, pS}, {3 * time.Second, 3, false, pS},
			{4 * time.Second, 4, true, pS}, {5 * time.Second, 5, true, pS},
			// An id opened again costs nothing, before and after the cap.
			{6 * time.Second, 2, false, pS},
		}},
		{"each answer its own", fan(2, 0, pS, pL), []link{{0, seq(1, 5), pS, a}, {0, seq(100, 5), pL, b}}, []open1{
			{time.Second, 1, false, pS}, {time.Second, 2, false, pS}, {time.Second, 3, true, pS},
			{time.Second, 100, false, pL}, {time.Second, 101, false, pL}, {time.Second, 102, true, pL},
		}},
		{"social and unreferenced never counted", fan(1, 0, pS, pL), []link{{0, seq(1, 5), pO, a}}, []open1{
			{time.Second, 1, false, pO}, {time.Second, 2, false, pO}, {time.Second, 3, false, pO},
			{time.Second, 900, false, pU}, {time.Second, 901, false, pU},
		}},
		{"only the named provenances", fan(1, 0, pS), []link{{0, seq(1, 3), pL, a}, {0, seq(10, 3), pS, b}}, []open1{
			{time.Second, 1, false, pL}, {time.Second, 2, false, pL}, {time.Second, 3, false, pL},
			{time.Second, 10, false, pS}, {time.Second, 11, true, pS},
		}},
		{"no answer tag, no count", fan(1, 0, pS), []link{{0, seq(1, 3), pS, 0}}, []open1{
			{time.Second, 1, false, pS}, {time.Second, 2, false, pS}, {time.Second, 3, false, pS},
		}},
		{"the latest answer counts", fan(1, 0, pS), []link{{0, seq(1, 3), pS, a}, {time.Second, []uint64{2, 3}, pS, b}}, []open1{
			{2 * time.Second, 1, false, pS}, // from a
			{2 * time.Second, 2, false, pS}, // from b: shown again there
			{2 * time.Second, 3, true, pS},  // from b, its second
		}},
		{"a better provenance's answer stays", fan(1, 0, pS, pL), []link{{0, seq(1, 2), pS, a}, {time.Second, seq(1, 2), pL, b}}, []open1{
			{2 * time.Second, 1, false, pS}, {2 * time.Second, 2, true, pS}, // both from a
		}},
		{"window from the first open", fan(1, 0, pS), []link{{0, seq(1, 3), pS, a}}, []open1{
			{time.Second, 1, false, pS}, {10*time.Minute + time.Second - time.Millisecond, 2, true, pS},
			{10*time.Minute + time.Second, 2, false, pS}, {10*time.Minute + 2*time.Second, 3, true, pS},
		}},
		{"hold caps every answer", fan(1, 30*time.Minute, pS, pL), []link{{0, seq(1, 3), pS, a}, {0, seq(10, 3), pL, b}}, []open1{
			{time.Second, 1, false, pS}, {time.Second, 2, true, pS},
			{2 * time.Second, 10, true, pL},                // another answer, held
			{2 * time.Second, 1, true, pS},                 // even one opened before
			{30*time.Minute + time.Second, 10, false, pL},  // hold over
			{30*time.Minute + 2*time.Second, 11, true, pL}, // past the cap again
			{60*time.Minute + 2*time.Second - time.Millisecond, 12, true, pL},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := open(t)
			key := "link:fan:" + c.name
			for _, l := range c.links {
				if err := s.Link(ctx, t0.Add(l.at), key, l.ids, l.p, l.tag, 2*time.Hour); err != nil {
					t.Fatalf("link: %v", err)
				}
			}
			for i, o := range c.opens {
				got, err := s.Linked(ctx, t0.Add(o.at), key, []uint64{o.id}, c.fan, nil)
				if err != nil {
					t.Fatalf("open %d: linked: %v", i, err)
				}
				if got[0] != o.p || len(c.fan.Capped) != 1 || c.fan.Capped[0] != o.capped {
					t.Errorf("open %d (t0+%v id %d): %v capped %v, want %v capped %v", i, o.at, o.id, got[0], c.fan.Capped, o.p, o.capped)
				}
			}
			// Without a Fanout nothing is counted or capped.
			got, err := s.Linked(ctx, t0.Add(c.opens[len(c.opens)-1].at), key, []uint64{c.opens[0].id}, nil, nil)
			if err != nil || got[0] != c.opens[0].p {
				t.Errorf("without fanout: %v, %v", got, err)
			}
		})
	}
	t.Run("several ids in one call", func(t *testing.T) {
		s := open(t)
		if err := s.Link(ctx, t0, "link:fan:many", seq(1, 10), pS, a, time.Hour); err != nil {
			t.Fatal(err)
		}
		f := fan(3, 0, pS)
		got, err := s.Linked(ctx, t0.Add(time.Second), "link:fan:many", []uint64{1, 2, 1, 3, 4, 500}, f, nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := []bool{false, false, false, false, true, false}; !slices.Equal(f.Capped, want) {
			t.Errorf("capped %v, want %v", f.Capped, want)
		}
		if want := []store.Provenance{pS, pS, pS, pS, pS, pU}; !slices.Equal(got, want) {
			t.Errorf("provenance %v, want %v", got, want)
		}
	})
	// More answers than a key keeps: the soonest to expire go first, and
	// the newest answers are still counted exactly.
	t.Run("answers bounded", func(t *testing.T) {
		s := open(t)
		key := "link:fan:bounded"
		n := store.MaxFanoutAnswers + 20
		for i := range n {
			if err := s.Link(ctx, t0, key, []uint64{uint64(1000 + 2*i), uint64(1001 + 2*i)}, pS, uint32(1+i), time.Hour); err != nil {
				t.Fatal(err)
			}
		}
		f := fan(1, 0, pS)
		for i := range n {
			if _, err := s.Linked(ctx, t0.Add(time.Duration(i)*time.Millisecond), key, []uint64{uint64(1000 + 2*i)}, f, nil); err != nil || f.Capped[0] {
				t.Fatalf("answer %d first open: capped %v, %v", i, f.Capped, err)
			}
		}
		for i := n - store.MaxFanoutAnswers; i < n; i++ {
			if _, err := s.Linked(ctx, t0.Add(time.Second), key, []uint64{uint64(1001 + 2*i)}, f, nil); err != nil || !f.Capped[0] {
				t.Fatalf("answer %d second open: capped %v, %v; want capped (the answer is among the newest %d)", i, f.Capped, err, store.MaxFanoutAnswers)
			}
		}
	})
	t.Run("invalid", func(t *testing.T) {
		s := open(t)
		for _, f := range []*store.Fanout{
			{Limit: 0, Window: time.Minute, Provenances: 1 << pS},
			{Limit: store.MaxFanoutLimit + 1, Window: time.Minute, Provenances: 1 << pS},
			{Limit: 1, Window: 0, Provenances: 1 << pS},
			{Limit: 1, Window: time.Minute, Hold: -1, Provenances: 1 << pS},
			{Limit: 1, Window: time.Minute, Provenances: 1 << pU},
		} {
			if _, err := s.Linked(ctx, t0, "link:fan:bad", []uint64{1}, f, nil); err == nil {
				t.Errorf("%s: no error", fmt.Sprintf("%+v", *f))
			}
		}
	})
}
