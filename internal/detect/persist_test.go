package detect

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/store"
)

// restart is a new detector of cfg (on a fresh store: the bans themselves
// are the ban log's business) restored at at from what f's exported at at.
func (f *fixture) restart(t *testing.T, cfg Config, at time.Time) (*fixture, Persisted) {
	t.Helper()
	var st store.DetectState
	f.d.ExportDetect(at, &st)
	g := newFixture(t, cfg)
	return g, g.d.Restore(at, &st)
}

// A repeat offender's next ban after a restart is the escalated one: its
// ban history is saved and restored (before, it started again at 10 min).
func TestRestoreKeepsEscalation(t *testing.T) {
	cfg := Config{Enabled: true, Rules: []Rule{{Name: "velocity", Kind: Velocity, Limit: 2, Window: 10 * time.Second}}}
	f := newFixture(t, cfg)
	id := who("9", "10.0.0.3")
	for i := range 3 {
		f.d.Record(profile(id, t0, fmt.Sprint("a", i)))
	}
	if b := f.bans(t, t0)["account:9"]; !strings.Contains(b.Reason, "offence 1, banned 10m0s") {
		t.Fatalf("first ban: %+v", b)
	}
	g, p := f.restart(t, cfg, t0.Add(time.Minute))
	if p.Offences != 1 {
		t.Fatalf("restored %+v, want the ban history", p)
	}
	at := t0.Add(11 * time.Minute) // the first ban over
	for i := range 3 {
		g.d.Record(profile(id, at, fmt.Sprint("b", i)))
	}
	b, ok := g.bans(t, at)["account:9"]
	if !ok || !strings.Contains(b.Reason, "offence 2, banned 1h0m0s") || !b.Until.Equal(at.Add(time.Hour)) {
		t.Fatalf("after a restart, misbehaving again: ban %+v (%v), want offence 2 for 1h", b, ok)
	}
}

// The windows and tallies that decide the next ban come back: a count
// under the limit before the restart goes past it after; what expired by
// the restore is dropped.
func TestRestoreKeepsWindows(t *testing.T) {
	cfg := Config{Enabled: true, Rules: []Rule{
		{Name: "velocity", Kind: Velocity, Limit: 5, Window: 10 * time.Second},
		{Name: "refusals", Kind: Persistence, Facet: "ip", Limit: 2, Window: time.Minute},
		{Name: "enum", Kind: Enumeration, Limit: 2, Ratio: 0.5, Window: time.Hour},
		{Name: "cohort", Kind: Cohort, Facet: "net", Limit: 2, Window: 10 * time.Minute},
	}}
	f := newFixture(t, cfg)
	id := who("42", "10.0.0.1")
	for i := range 4 {
		f.d.Record(profile(id, t0, fmt.Sprint("v", i)))
	}
	enum := who("5", "10.0.0.4")
	lookups(f.d, enum, t0, true, "u0", "u1") // 2 never shown of 2: at the limit
	young := func(acct string) identify.Identity {
		y := who(acct, "10.9.9.1")
		y.AccountCreated = t0.Add(-time.Hour)
		return y
	}
	f.d.Record(profile(young("1000"), t0, "1"))
	f.d.Record(profile(young("1001"), t0, "2"))
	if b := f.bans(t, t0); len(b) != 0 {
		t.Fatalf("banned before the restart: %v", b)
	}

	at := t0.Add(2 * time.Second)
	g, p := f.restart(t, cfg, at)
	if p.Tracks != 5 || p.Dropped != 0 {
		t.Fatalf("restored %+v, want 5 tracks (accounts 42, 5, 1000, 1001 and the cohort)", p)
	}
	for i := range 2 {
		g.d.Record(profile(id, at, fmt.Sprint("w", i)))
	}
	lookups(g.d, enum, at, true, "u2")
	g.d.Record(profile(young("1002"), at, "3"))
	bs := g.bans(t, at)
	for _, want := range []string{"account:42", "account:5", "account:1000", "account:1001", "account:1002"} {
		if _, ok := bs[want]; !ok {
			t.Errorf("after the restart: %s not banned (its count before it lost): %v", want, bs)
		}
	}
	if !strings.Contains(bs["account:42"].Reason, "contact of 6 distinct people") || !strings.Contains(bs["account:5"].Reason, "3 of 3 look-ups") {
		t.Errorf("evidence: %q, %q", bs["account:42"].Reason, bs["account:5"].Reason)
	}

	// Restored past every window: nothing of the tracks comes back, and
	// the count starts afresh.
	late := t0.Add(2 * time.Hour)
	h, p := f.restart(t, cfg, late)
	if p.Tracks != 0 {
		t.Fatalf("restored after every window: %+v, want no track", p)
	}
	for i := range 2 {
		h.d.Record(profile(id, late, fmt.Sprint("x", i)))
	}
	if b := h.bans(t, late); len(b) != 0 {
		t.Fatalf("expired counts restored: %v", b)
	}
}

// A restore drops what the running detector would not hold: histories
// forgotten (the longest ban duration after the ban ended), windows of a
// rule gone or changed kind, a tally of a changed window, impossible
// values; and keeps at most max_tracked tracks and histories.
func TestRestoreDropsAndBounds(t *testing.T) {
	cfg := Config{Enabled: true, MaxTracked: 3, Rules: []Rule{
		{Name: "velocity", Kind: Velocity, Limit: 5, Window: 10 * time.Second},
		{Name: "enum", Kind: Enumeration, Limit: 2, Ratio: 0.5, Window: time.Hour},
	}}
	g := newFixture(t, cfg)
	ns := t0.UnixNano()
	week := int64(7 * 24 * time.Hour)
	st := &store.DetectState{
		Offences: []store.DetectOffence{
			{Facet: "account", Value: "old", N: 3, Until: ns - week - 1}, // forgotten
			{Facet: "nosuch", Value: "x", N: 1, Until: ns},
			{Facet: "account", Value: "zero", N: 0, Until: ns},
			{Facet: "account", Value: "far", N: 1, Until: ns + 2*week}, // past any ban's length
		},
		Tracks: []store.DetectTrack{
			{Facet: "account", Value: "gone", Windows: []store.DetectWindow{{Rule: "removed", Keys: []uint64{1}, At: []int64{ns}}}},
			{Facet: "account", Value: "odd", Windows: []store.DetectWindow{{Rule: "velocity", Keys: []uint64{1, 2}, At: []int64{ns}}}},
			{Facet: "account", Value: "tally", Windows: []store.DetectWindow{{Rule: "enum", Tally: true, Width: 1, Last: ns}}},
			{Facet: "ip", Value: "10.0.0.1", Windows: []store.DetectWindow{{Rule: "velocity", Keys: []uint64{1}, At: []int64{ns}}}}, // not the rule's facet
		},
	}
	for i := range 10 {
		st.Offences = append(st.Offences, store.DetectOffence{Facet: "account", Value: fmt.Sprint(i), N: 1, Until: ns, Seen: ns + int64(i)})
		st.Tracks = append(st.Tracks, store.DetectTrack{Facet: "account", Value: fmt.Sprint(i),
			Windows: []store.DetectWindow{{Rule: "velocity", Keys: []uint64{1, 2, 3, 4, 5, 6, 7, 8}, At: []int64{ns, ns, ns, ns, ns, ns, ns, ns}}}})
	}
	p := g.d.Restore(t0, st)
	if p.Offences != 10 || p.Tracks != 10 || p.Dropped != 8 {
		t.Fatalf("restore: %+v, want 10 histories and 10 tracks kept, 8 dropped", p)
	}
	if n := g.d.Tracked(); n != 3 {
		t.Fatalf("%d tracks held, max_tracked 3", n)
	}
	if n := len(g.d.offences); n > 3 {
		t.Fatalf("%d histories held, max_tracked 3", n)
	}
	// The tracks kept are the last restored (the most recently used), each
	// window at most limit+1 keys.
	for i := 7; i < 10; i++ {
		tr := g.d.tracks[trackKey{facet: identify.FacetAccount, value: fmt.Sprint(i)}]
		if tr == nil || tr.wins[0].n != 6 {
			t.Fatalf("track %d: %+v, want 6 keys (limit 5 + 1)", i, tr)
		}
	}
}

// A snapshot's copy runs beside the recording (go test -race): each
// track is copied whole, and the copy restores.
func TestExportWhileRecording(t *testing.T) {
	cfg := Config{Enabled: true, Rules: []Rule{
		{Name: "velocity", Kind: Velocity, Limit: 1000, Window: time.Hour},
		{Name: "enum", Kind: Enumeration, Limit: 1000, Ratio: 0.5, Window: time.Hour},
	}}
	f := newFixture(t, cfg)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 20_000 {
			a := profile(who(fmt.Sprint(i%3000), "10.0.0.1"), t0.Add(time.Duration(i)*time.Millisecond), fmt.Sprint(i))
			a.Unreferenced = i%2 == 0
			f.d.Record(a)
		}
	}()
	var st store.DetectState
	for exports := 0; ; exports++ {
		select {
		case <-done:
			if exports == 0 {
				t.Log("the recording ended before the first copy")
			}
			f.d.ExportDetect(t0.Add(time.Minute), &st)
			if len(st.Tracks) != 3000 {
				t.Fatalf("%d tracks copied, want 3000", len(st.Tracks))
			}
			g := newFixture(t, cfg)
			if p := g.d.Restore(t0.Add(time.Minute), &st); p.Tracks != 3000 || p.Dropped != 0 {
				t.Fatalf("restore of the copy: %+v", p)
			}
			return
		default:
		}
		f.d.ExportDetect(t0.Add(time.Minute), &st)
		for _, tr := range st.Tracks {
			for _, w := range tr.Windows {
				if len(w.Keys) != len(w.At) {
					t.Fatalf("track %s: %d keys, %d times", tr.Value, len(w.Keys), len(w.At))
				}
			}
		}
	}
}
