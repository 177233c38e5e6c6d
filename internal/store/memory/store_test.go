package memory

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/store"
)

var (
	ctx = context.Background()
	t0  = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
)

func admit(t testing.TB, s *Store, now time.Time, key string, interval time.Duration) store.LimitResult {
	t.Helper()
	res, err := s.Admit(ctx, now, &store.AdmitRequest{Limits: []store.LimitRequest{{Key: key, Interval: interval, Burst: 1, Cost: 1}}})
	if err != nil {
		t.Fatalf("admit %s: %v", key, err)
	}
	return res.Limits[0]
}

// TestSweep checks that the sweeper removes exactly the idle entries and that
// byte accounting returns to zero.
func TestSweep(t *testing.T) {
	s := New(Options{Shards: 4, SweepEvery: -1})
	defer s.Close()
	admit(t, s, t0, "limit:idle", time.Second)
	admit(t, s, t0, "limit:busy", time.Hour)
	for _, b := range []struct {
		key    string
		window time.Duration
	}{{"budget:minute", time.Minute}, {"budget:hour", time.Hour}} {
		if _, err := s.Spend(ctx, t0, []store.SpendRequest{{Key: b.key, Window: b.window, Limit: 10, Subjects: []uint64{1, 2}}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, l := range []struct {
		key string
		ttl time.Duration
	}{{"link:short", time.Minute}, {"link:long", time.Hour}} {
		if err := s.Link(ctx, t0, l.key, []uint64{1, 2, 3}, store.List, 0, l.ttl); err != nil {
			t.Fatal(err)
		}
	}
	for _, b := range []store.Ban{
		{Facet: "ip", Value: "192.0.2.1", Until: t0.Add(time.Minute)},
		{Facet: "ip", Value: "192.0.2.2"},
	} {
		if err := s.PutBan(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name    string
		at      time.Duration
		removed int
		keys    int
		bans    int
	}{
		{"nothing idle yet", 0, 0, 6, 2},
		{"short-lived entries go", 2 * time.Minute, 4, 3, 1},
		{"the rest go, bans without expiry stay", 2 * time.Hour, 3, 0, 1},
	}
	for _, st := range steps {
		if got := s.sweep(t0.Add(st.at).UnixNano()); got != st.removed {
			t.Errorf("%s: swept %d, want %d", st.name, got, st.removed)
		}
		stats := s.Stats()
		if stats.Keys != st.keys || stats.Bans != st.bans {
			t.Errorf("%s: %d keys and %d bans, want %d and %d", st.name, stats.Keys, stats.Bans, st.keys, st.bans)
		}
		if (stats.Keys == 0) != (stats.Bytes == 0) || stats.Bytes < 0 {
			t.Errorf("%s: %d keys take %d bytes", st.name, stats.Keys, stats.Bytes)
		}
	}
}

func TestEviction(t *testing.T) {
	cases := []struct {
		name          string
		opts          Options
		fill          func(t *testing.T, s *Store)
		maxKeys       int
		maxBytes      int64
		wantEvictions bool
		check         func(t *testing.T, s *Store)
	}{
		{
			name: "a flood of limit keys leaves budgets alone",
			opts: Options{Shards: 1, MaxKeys: 50, SweepEvery: -1},
			fill: func(t *testing.T, s *Store) {
				for k := range 10 {
					if _, err := s.Spend(ctx, t0, []store.SpendRequest{{Key: "budget:" + strconv.Itoa(k), Window: time.Hour, Limit: 5, Subjects: []uint64{1, 2, 3}}}); err != nil {
						t.Fatal(err)
					}
				}
				for i := range 1000 {
					admit(t, s, t0, "limit:"+strconv.Itoa(i), time.Hour)
				}
			},
			maxKeys: 50, wantEvictions: true,
			check: func(t *testing.T, s *Store) {
				for k := range 10 {
					res, err := s.Spend(ctx, t0, []store.SpendRequest{{Key: "budget:" + strconv.Itoa(k), Window: time.Hour, Limit: 5}})
					if err != nil {
						t.Fatal(err)
					}
					if res[0].Count != 3 {
						t.Errorf("budget %d: count %d after the flood, want 3", k, res[0].Count)
					}
				}
			},
		},
		{
			name: "max keys holds under many limits",
			opts: Options{Shards: 1, MaxKeys: 100, SweepEvery: -1},
			fill: func(t *testing.T, s *Store) {
				for i := range 1000 {
					admit(t, s, t0, "limit:"+strconv.Itoa(i), time.Hour)
				}
			},
			maxKeys: 100, wantEvictions: true,
		},
		{
			name: "expired keys make room first",
			opts: Options{Shards: 1, MaxKeys: 10, SweepEvery: -1},
			fill: func(t *testing.T, s *Store) {
				for i := range 10 {
					admit(t, s, t0, "limit:old"+strconv.Itoa(i), time.Second)
				}
				// Every key is expired, so the sampled victim is too.
				admit(t, s, t0.Add(time.Hour), "limit:new", time.Hour)
			},
			maxKeys: 10, wantEvictions: false,
		},
		{
			name: "max bytes holds under large link filters",
			opts: Options{Shards: 1, MaxBytes: 100_000, SweepEvery: -1},
			fill: func(t *testing.T, s *Store) {
				ids := make([]uint64, 5000)
				for k := range 50 {
					for i := range ids {
						ids[i] = uint64(k*len(ids) + i)
					}
					key := "link:" + strconv.Itoa(k)
					if err := s.Link(ctx, t0, key, ids, store.Search, 0, time.Hour); err != nil {
						t.Fatal(err)
					}
					// The key being written is never the one evicted.
					got, err := s.Linked(ctx, t0, key, ids, nil, nil)
					if err != nil {
						t.Fatal(err)
					}
					for i, p := range got[:4096] {
						if p != store.Search {
							t.Fatalf("%s: id %d forgotten right after linking", key, ids[i])
						}
					}
				}
			},
			maxBytes: 100_000, wantEvictions: true,
		},
		{
			name: "max bytes holds under budgets past the exact set",
			opts: Options{Shards: 1, MaxBytes: 200_000, ExactMax: 64, SweepEvery: -1},
			fill: func(t *testing.T, s *Store) {
				subjects := make([]uint64, 200)
				for i := range subjects {
					subjects[i] = uint64(i)
				}
				for k := range 50 {
					if _, err := s.Spend(ctx, t0, []store.SpendRequest{{Key: "budget:" + strconv.Itoa(k), Window: time.Hour, Limit: 1000, Subjects: subjects}}); err != nil {
						t.Fatal(err)
					}
				}
			},
			maxBytes: 200_000, wantEvictions: true,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := New(c.opts)
			defer s.Close()
			c.fill(t, s)
			st := s.Stats()
			if c.maxKeys > 0 && st.Keys > c.maxKeys {
				t.Errorf("%d keys, want at most %d", st.Keys, c.maxKeys)
			}
			if c.maxBytes > 0 && st.Bytes > c.maxBytes {
				t.Errorf("%d bytes, want at most %d", st.Bytes, c.maxBytes)
			}
			if (st.Evictions > 0) != c.wantEvictions {
				t.Errorf("%d evictions, want some: %v", st.Evictions, c.wantEvictions)
			}
			if c.check != nil {
				c.check(t, s)
			}
		})
	}
}

func TestMaxBans(t *testing.T) {
	s := New(Options{MaxBans: 2, SweepEvery: -1})
	defer s.Close()
	steps := []struct {
		value   string
		wantErr bool
	}{{"a", false}, {"b", false}, {"c", true}, {"a", false}}
	for _, st := range steps {
		err := s.PutBan(ctx, store.Ban{Facet: "account", Value: st.value, Reason: "r"})
		if (err != nil) != st.wantErr {
			t.Errorf("put ban %s: %v, want error: %v", st.value, err, st.wantErr)
		}
	}
}

func TestCloseStopsSweeper(t *testing.T) {
	s := New(Options{SweepEvery: time.Millisecond})
	admit(t, s, t0, "limit:a", time.Second)
	for range 2 {
		if err := s.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
	}
	if r := admit(t, s, t0, "limit:a", time.Second); r.Allowed {
		t.Errorf("after close: %+v, want the store still working (refused)", r)
	}
}

// TestHotPathAllocations pins the allocations of the per-request calls: the
// result slices the interface returns, nothing else (Linked none into a
// buffer of the caller's, as rationing passes).
func TestHotPathAllocations(t *testing.T) {
	s := New(Options{SweepEvery: -1})
	defer s.Close()
	adm := &store.AdmitRequest{
		Bans:   []store.BanKey{{Facet: "ip", Value: "192.0.2.1"}, {Facet: "account", Value: "acc"}},
		Limits: []store.LimitRequest{{Key: "ip:192.0.2.1", Interval: time.Millisecond, Burst: 10, Cost: 1}, {Key: "account:acc", Interval: time.Millisecond, Burst: 10, Cost: 1}},
	}
	if err := s.PutBan(ctx, store.Ban{Facet: "ip", Value: "198.51.100.1"}); err != nil {
		t.Fatal(err)
	}
	subjects := make([]uint64, 50)
	for i := range subjects {
		subjects[i] = uint64(i)
	}
	spend := []store.SpendRequest{{Key: "budget:acc", Window: time.Hour, Limit: 200, Subjects: subjects}}
	prov := make([]store.Provenance, len(subjects))
	now := t0
	cases := []struct {
		name string
		want float64
		f    func()
	}{
		{"admit with two bans and two limits", 1, func() {
			now = now.Add(time.Millisecond)
			if _, err := s.Admit(ctx, now, adm); err != nil {
				t.Fatal(err)
			}
		}},
		{"spend 50 subjects", 2, func() {
			if _, err := s.Spend(ctx, now, spend); err != nil {
				t.Fatal(err)
			}
		}},
		{"linked 50 ids", 1, func() {
			if _, err := s.Linked(ctx, now, "link:acc", subjects, nil, nil); err != nil {
				t.Fatal(err)
			}
		}},
		{"linked 50 ids into the caller's buffer", 0, func() {
			if _, err := s.Linked(ctx, now, "link:acc", subjects, nil, prov[:0]); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, c := range cases {
		c.f() // create the keys
		if got := testing.AllocsPerRun(100, c.f); got > c.want {
			t.Errorf("%s: %.1f allocations per call, want at most %.0f", c.name, got, c.want)
		}
	}
}

// TestLinkSaturation checks the link memory's bound: no false positives at
// any load, at most LinkCapacity ids a generation, its bytes bounded, and
// an identity past its capacity saturated (later ids unreferenced).
func TestLinkSaturation(t *testing.T) {
	cases := []struct {
		name     string
		n        int
		kept     int
		maxBytes int64
	}{
		{"under capacity", 600, 600, 14_000}, // 13 bytes an id: id, provenance, answer tag
		{"at capacity", 4096, 4096, 53_500},
		{"twice capacity", 8192, 4096, 53_500},
		{"four times capacity", 16384, 4096, 53_500},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := New(Options{Shards: 1, SweepEvery: -1})
			defer s.Close()
			ids := make([]uint64, c.n)
			for i := range ids {
				ids[i] = uint64(i) * 7
			}
			for from := 0; from < len(ids); from += 50 {
				if err := s.Link(ctx, t0, "link:k", ids[from:min(from+50, len(ids))], store.List, 0, time.Hour); err != nil {
					t.Fatal(err)
				}
			}
			probe := make([]uint64, 100_000)
			for i := range probe {
				probe[i] = uint64(i)*7 + 3 // never linked
			}
			got, err := s.Linked(ctx, t0, "link:k", probe, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range got {
				if p != store.Unreferenced {
					t.Fatalf("never-linked id %d is %v", probe[i], p)
				}
			}
			got, err = s.Linked(ctx, t0, "link:k", ids, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			kept := 0
			for i, p := range got {
				if p == store.List {
					if i >= c.kept {
						t.Fatalf("id %d linked past capacity was remembered", ids[i])
					}
					kept++
				}
			}
			if kept != c.kept {
				t.Errorf("%d ids remembered, want %d (the first ones)", kept, c.kept)
			}
			if b := s.Stats().Bytes; b > c.maxBytes {
				t.Errorf("%d bytes for one key, want at most %d", b, c.maxBytes)
			}
		})
	}
}

// TestExtremeValues feeds out-of-range numbers: no panic, no negative
// Remaining, nothing admitted that could never be.
func TestExtremeValues(t *testing.T) {
	s := New(Options{SweepEvery: -1})
	defer s.Close()
	const maxDur = time.Duration(1<<63 - 1)
	maxInt := int(^uint(0) >> 1)
	limits := []struct {
		name string
		l    store.LimitRequest
	}{
		{"huge interval", store.LimitRequest{Interval: maxDur, Burst: 2, Cost: 1}},
		{"huge burst", store.LimitRequest{Interval: time.Hour, Burst: maxInt, Cost: 1}},
		{"huge burst and cost", store.LimitRequest{Interval: time.Hour, Burst: maxInt, Cost: maxInt}},
		{"huge cost", store.LimitRequest{Interval: time.Nanosecond, Burst: 1, Cost: maxInt}},
	}
	for _, c := range limits {
		t.Run(c.name, func(t *testing.T) {
			c.l.Key = "limit:" + c.name
			for i := range 3 {
				res, err := s.Admit(ctx, t0, &store.AdmitRequest{Limits: []store.LimitRequest{c.l}})
				if err != nil {
					t.Fatalf("admit %d: %v", i, err)
				}
				if r := res.Limits[0]; r.Remaining < 0 || r.ResetAfter < 0 {
					t.Fatalf("admit %d: %+v", i, r)
				}
			}
		})
	}
	spends := []store.SpendRequest{
		{Key: "budget:huge window", Window: maxDur, Limit: maxInt, Subjects: []uint64{1, 2}},
		{Key: "budget:1ns window", Window: time.Nanosecond, Limit: 1, Subjects: []uint64{1, 2}},
	}
	for _, now := range []time.Time{t0, time.Unix(0, 0), time.Unix(-1, 0)} {
		res, err := s.Spend(ctx, now, spends)
		if err != nil {
			t.Fatalf("spend at %v: %v", now, err)
		}
		if res[1].Count != 1 {
			t.Errorf("1ns window at %v: count %d, want 1", now, res[1].Count)
		}
	}
	if err := s.Link(ctx, t0, "link:huge ttl", []uint64{1}, store.Social, 0, maxDur); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Linked(ctx, t0.Add(100*365*24*time.Hour), "link:huge ttl", []uint64{1}, nil, nil); err != nil || got[0] != store.Social {
		t.Errorf("huge ttl: %v, %v; want linked", got, err)
	}
}
