package storetest

import (
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/store"
)

// detections is the store's detector state, which every backend keeps.
func detections(t *testing.T, s store.Store) store.Detections {
	t.Helper()
	d, ok := s.(store.Detections)
	if !ok {
		t.Fatalf("%T does not implement store.Detections", s)
	}
	return d
}

// obsStep is one Observe of one member at t0+at, and the count it must
// return.
type obsStep struct {
	key    string
	member uint64
	at     time.Duration
	want   int
}

func testObserve(t *testing.T, open opener) {
	const window, limit = 10 * time.Second, 3
	cases := []struct {
		name  string
		steps []obsStep
	}{
		{"distinct members, capped at limit+1", []obsStep{
			{"a", 1, 0, 1}, {"a", 2, s1, 2}, {"a", 3, 2 * s1, 3},
			{"a", 2, 3 * s1, 3}, // seen again: still three people
			{"a", 4, 4 * s1, 4}, // past the limit
			{"a", 5, 5 * s1, 4}, // never more than limit+1
		}},
		{"the window's edge is inside", []obsStep{
			{"b", 1, 0, 1},
			{"b", 2, window, 2},                    // exactly a window later: 1 still counts
			{"b", 3, window + time.Millisecond, 2}, // 1 is out
		}},
		{"a member seen again moves to its later time", []obsStep{
			{"c", 1, 0, 1}, {"c", 2, 5 * s1, 2}, {"c", 1, 9 * s1, 2},
			{"c", 3, 12 * s1, 3}, // 1 lives from 9 s
			{"c", 4, 16 * s1, 3}, // 2 (5 s) is out
		}},
		{"an earlier time never shortens a member's life", []obsStep{
			{"d", 1, 5 * s1, 1}, {"d", 1, 0, 1},
			{"d", 2, 14 * s1, 2}, // 1 still lives from 5 s
		}},
		{"keys are independent", []obsStep{
			{"e", 1, 0, 1}, {"f", 1, 0, 1}, {"e", 2, 0, 2}, {"f", 2, 0, 2}, {"g", 2, 0, 1},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := detections(t, open(t))
			for i, st := range c.steps {
				got, err := d.Observe(ctx, []store.Observation{{Key: "obs:" + st.key, Member: st.member, At: t0.Add(st.at), Window: window, Limit: limit}})
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if len(got) != 1 || got[0] != st.want {
					t.Errorf("step %d (key %s, member %d at %v): count %v, want %d", i, st.key, st.member, st.at, got, st.want)
				}
			}
		})
	}
	t.Run("one call, many keys, in order", func(t *testing.T) {
		d := detections(t, open(t))
		var obs []store.Observation
		var want []int
		for i := range 40 {
			key := "obs:k" + string(rune('a'+i%8))
			obs = append(obs, store.Observation{Key: key, Member: uint64(i), At: t0.Add(time.Duration(i) * time.Millisecond), Window: window, Limit: limit})
			want = append(want, min(i/8+1, limit+1))
		}
		got, err := d.Observe(ctx, obs)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%d counts for %d observations", len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("observation %d (%s): count %d, want %d", i, obs[i].Key, got[i], want[i])
			}
		}
	})
	t.Run("tally", func(t *testing.T) { testTally(t, open) })
	t.Run("invalid", func(t *testing.T) {
		d := detections(t, open(t))
		for _, o := range []store.Observation{
			{Key: "obs:bad", Member: 1, At: t0, Window: 0, Limit: 1},
			{Key: "obs:bad", Member: 1, At: t0, Window: window, Limit: 0},
		} {
			ok := store.Observation{Key: "obs:ok", Member: 1, At: t0, Window: window, Limit: 1}
			if _, err := d.Observe(ctx, []store.Observation{ok, o}); err == nil {
				t.Errorf("window %v, limit %d: no error", o.Window, o.Limit)
			}
		}
		// A call refused as invalid counted nothing.
		got, err := d.Observe(ctx, []store.Observation{{Key: "obs:ok", Member: 2, At: t0, Window: window, Limit: 1}})
		if err != nil || len(got) != 1 || got[0] != 1 {
			t.Errorf("after invalid calls: %v, %v; want [1]", got, err)
		}
	})
}

func testOffend(t *testing.T, open opener) {
	durations := []time.Duration{10 * time.Minute, time.Hour, 24 * time.Hour}
	d := detections(t, open(t))
	k := store.BanKey{Facet: "account", Value: "a1"}
	steps := []struct {
		name string
		key  store.BanKey
		at   time.Duration
		want store.Offence
	}{
		{"first offence", k, 0, store.Offence{N: 1, Until: t0.Add(10 * time.Minute), New: true}},
		{"while banned: no new offence", k, 5 * time.Minute, store.Offence{N: 1, Until: t0.Add(10 * time.Minute)}},
		{"just before the end", k, 10*time.Minute - time.Millisecond, store.Offence{N: 1, Until: t0.Add(10 * time.Minute)}},
		{"at the end: second offence", k, 10 * time.Minute, store.Offence{N: 2, Until: t0.Add(70 * time.Minute), New: true}},
		{"another value starts afresh", store.BanKey{Facet: "ip", Value: "a1"}, 11 * time.Minute, store.Offence{N: 1, Until: t0.Add(21 * time.Minute), New: true}},
		{"third", k, 2 * time.Hour, store.Offence{N: 3, Until: t0.Add(26 * time.Hour), New: true}},
		{"the last duration repeats", k, 26 * time.Hour, store.Offence{N: 4, Until: t0.Add(50 * time.Hour), New: true}},
		{"kept until the longest duration past the end", k, 74*time.Hour - time.Millisecond, store.Offence{N: 5, Until: t0.Add(98*time.Hour - time.Millisecond), New: true}},
		{"then forgotten", k, 122 * time.Hour, store.Offence{N: 1, Until: t0.Add(122*time.Hour + 10*time.Minute), New: true}},
	}
	for _, st := range steps {
		got, err := d.Offend(ctx, t0.Add(st.at), st.key, durations)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got.N != st.want.N || got.New != st.want.New || !got.Until.Equal(st.want.Until) {
			t.Errorf("%s: %+v, want %+v", st.name, got, st.want)
		}
	}
	t.Run("a removed ban ends the hold, the count stays", func(t *testing.T) {
		s := open(t)
		d := detections(t, s)
		k := store.BanKey{Facet: "account", Value: "lifted"}
		if _, err := d.Offend(ctx, t0, k, durations); err != nil {
			t.Fatal(err)
		}
		if err := s.PutBan(ctx, store.Ban{Facet: k.Facet, Value: k.Value, Created: t0, Until: t0.Add(10 * time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RemoveBan(ctx, k); err != nil { // warden ban rm
			t.Fatal(err)
		}
		got, err := d.Offend(ctx, t0.Add(time.Minute), k, durations)
		if err != nil {
			t.Fatal(err)
		}
		if want := (store.Offence{N: 2, Until: t0.Add(61 * time.Minute), New: true}); got.N != want.N || got.New != want.New || !got.Until.Equal(want.Until) {
			t.Errorf("offence after the ban was removed: %+v, want %+v", got, want)
		}
		// Removing a ban of a value without history creates none.
		other := store.BanKey{Facet: "ip", Value: "192.0.2.9"}
		if _, err := s.RemoveBan(ctx, other); err != nil {
			t.Fatal(err)
		}
		if got, err := d.Offend(ctx, t0.Add(time.Minute), other, durations); err != nil || got.N != 1 || !got.New {
			t.Errorf("first offence after removing a ban never held: %+v, %v", got, err)
		}
	})
	for _, bad := range [][]time.Duration{nil, {time.Minute, 0}} {
		if _, err := d.Offend(ctx, t0, k, bad); err == nil {
			t.Errorf("durations %v: no error", bad)
		}
	}
}

// testTally checks windowed tallies (Observation.Tally): every event
// counts, however many, in 16 buckets of a 16 s window (1 s each, t0 on a
// bucket's edge): an event leaves the count when the 16th bucket after its
// own begins, a late one older than the window is not counted.
func testTally(t *testing.T, open opener) {
	const window = 16 * time.Second
	ms := time.Millisecond
	steps := []obsStep{
		{"a", 0, 0, 1}, {"a", 0, 0, 2}, {"a", 0, 0, 3}, // events, not members: 7 twice is two
		{"a", 0, 15*s1 + 999*ms, 4}, // t0's bucket is still the window's oldest
		{"a", 0, 16 * s1, 2},        // now it is out: 15.999 s and 16 s
		{"a", 0, 0, 2},              // late and older than the window: not counted
		{"a", 0, 10 * s1, 3},        // late within the window: counted
		{"b", 0, 0, 1},              // keys are independent
		{"a", 0, 60 * s1, 1},        // a long gap empties the window
		{"a", 0, 75*s1 + 999*ms, 2},
		{"a", 0, 76 * s1, 2},
		{"a", 0, 92 * s1, 1},
	}
	d := detections(t, open(t))
	for i, st := range steps {
		got, err := d.Observe(ctx, []store.Observation{{Key: "tally:" + st.key, Member: 7, At: t0.Add(st.at), Window: window, Tally: true}})
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if len(got) != 1 || got[0] != st.want {
			t.Errorf("step %d (key %s at %v): count %v, want %d", i, st.key, st.at, got, st.want)
		}
	}
	// Many in one call, beside a set: a tally has no limit.
	var obs []store.Observation
	for i := range 100 {
		obs = append(obs, store.Observation{Key: "tally:c", At: t0.Add(time.Duration(i) * ms), Window: window, Tally: true},
			store.Observation{Key: "tally:set", Member: uint64(i), At: t0.Add(time.Duration(i) * ms), Window: window, Limit: 3})
	}
	got, err := d.Observe(ctx, obs)
	if err != nil {
		t.Fatal(err)
	}
	if got[198] != 100 || got[199] != 4 {
		t.Errorf("100 events beside a set of limit 3: %d and %d, want 100 and 4", got[198], got[199])
	}
}
