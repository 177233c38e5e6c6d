package detect

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/warden-gw/warden/internal/shadow"
	"github.com/warden-gw/warden/internal/store"
	"github.com/warden-gw/warden/internal/store/memory"
	"github.com/warden-gw/warden/internal/store/redis"
	"github.com/warden-gw/warden/internal/store/redis/redistest"
)

// sharedStore is a store the detector can share: bans and its state.
type sharedStore interface {
	Store
	Shared
	ListBans(ctx context.Context, now time.Time) ([]store.Ban, error)
}

var redisPrefixes atomic.Int64

// stores are the backends the fleet tests run on, each a fresh one.
var stores = []struct {
	name string
	open func(t *testing.T) sharedStore
}{
	{"memory", func(t *testing.T) sharedStore {
		st := memory.New(memory.Options{SweepEvery: -1})
		t.Cleanup(func() { st.Close() })
		return st
	}},
	{"redis", func(t *testing.T) sharedStore { return openRedis(t, redistest.Start(t)) }},
}

func openRedis(t *testing.T, srv *redistest.Server) *redis.Store {
	t.Helper()
	cfg := redis.Config{Addrs: []string{srv.Addr()}, KeyPrefix: fmt.Sprintf("d%d:", redisPrefixes.Add(1))}
	cfg.SetDefaults()
	st, err := redis.New(context.Background(), cfg, redis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// gateway is one detector of a fleet on st, flushed by the test.
func gateway(t *testing.T, st sharedStore, cfg Config) (*Detector, *Metrics) {
	t.Helper()
	m := NewMetrics(nil)
	d, err := New(cfg, nil, st, shadow.New(prometheus.NewRegistry()), m, slog.New(slog.DiscardHandler),
		WithShared(st), func(d *Detector) { d.fleet.manual = true })
	if err != nil {
		t.Fatal(err)
	}
	return d, m
}

func bansOn(t *testing.T, st sharedStore, at time.Time) map[string]store.Ban {
	t.Helper()
	bs, err := st.ListBans(context.Background(), at)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]store.Ban{}
	for _, b := range bs {
		m[b.Facet+":"+b.Value] = b
	}
	return m
}

// A harvester alternating between two gateways stays under the limit on
// each: the store's count bans it, once, on both.
func TestFleetVelocity(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			st := s.open(t)
			cfg := Config{Enabled: true, Rules: []Rule{{Name: "velocity", Kind: Velocity, Limit: 5, Window: 10 * time.Second}}}
			a, _ := gateway(t, st, cfg)
			b, _ := gateway(t, st, cfg)
			id := who("42", "10.0.0.1")
			gw := []*Detector{a, b}
			for i := range 5 {
				gw[i%2].Record(profile(id, t0.Add(time.Duration(i)*time.Second), fmt.Sprint(100+i)))
			}
			a.fleet.flush(a)
			b.fleet.flush(b)
			if bs := bansOn(t, st, t0); len(bs) != 0 {
				t.Fatalf("banned at the fleet's limit: %v", bs)
			}
			// The sixth person, on a gateway that has seen three: far under
			// its own limit.
			b.Record(profile(id, t0.Add(5*time.Second), "105"))
			if bs := bansOn(t, st, t0); len(bs) != 0 {
				t.Fatalf("banned before the flush, on local counts of 3: %v", bs)
			}
			b.fleet.flush(b)
			ban, ok := bansOn(t, st, t0.Add(5*time.Second))["account:42"]
			if !ok {
				t.Fatal("6 distinct people on the fleet within 10s: no ban")
			}
			if !strings.Contains(ban.Reason, "contact of 6 distinct people within 10s (limit 5), counted on every gateway; offence 1, banned 10m0s") ||
				!ban.Until.Equal(t0.Add(5*time.Second+10*time.Minute)) {
				t.Fatalf("ban %+v", ban)
			}
			// The other gateway, past the limit on its own count later,
			// finds the fleet's ban and writes none.
			for i := range 6 {
				a.Record(profile(id, t0.Add(6*time.Second), fmt.Sprint(200+i)))
			}
			a.fleet.flush(a)
			if again := bansOn(t, st, t0)["account:42"]; !again.Until.Equal(ban.Until) || again.Reason != ban.Reason {
				t.Fatalf("banned again while banned: %+v", again)
			}
		})
	}
}

// Escalation is the fleet's: a gateway started afresh gives the second
// offence the second duration.
func TestFleetEscalationSurvivesRestart(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			st := s.open(t)
			cfg := Config{Enabled: true, Rules: []Rule{{Name: "velocity", Kind: Velocity, Limit: 2, Window: 10 * time.Second}}}
			id := who("7", "10.0.0.2")
			harvest := func(d *Detector, at time.Time) store.Ban {
				for i := range 3 {
					d.Record(profile(id, at, fmt.Sprintf("%v-%d", at.Unix(), i)))
				}
				d.fleet.flush(d)
				return bansOn(t, st, at)["account:7"]
			}
			first, _ := gateway(t, st, cfg)
			b := harvest(first, t0)
			if !b.Until.Equal(t0.Add(10*time.Minute)) || !strings.Contains(b.Reason, "offence 1,") {
				t.Fatalf("first offence: %+v", b)
			}
			restarted, m := gateway(t, st, cfg)
			at := t0.Add(11 * time.Minute)
			b = harvest(restarted, at)
			if !b.Until.Equal(at.Add(time.Hour)) || !strings.Contains(b.Reason, "offence 2, banned 1h0m0s") {
				t.Fatalf("second offence after a restart: %+v", b)
			}
			if n := counter(t, m.storeErrs.WithLabelValues("offend")); n != 0 {
				t.Fatalf("%v offend errors", n)
			}
		})
	}
}

// With the store down, the detector still bans on its own counts and
// counts the failures.
func TestFleetStoreDown(t *testing.T) {
	srv := redistest.Start(t)
	st := openRedis(t, srv)
	srv.Kill()
	d, m := gateway(t, st, Config{Enabled: true, Rules: []Rule{{Name: "velocity", Kind: Velocity, Limit: 2, Window: 10 * time.Second}}})
	mem := memory.New(memory.Options{SweepEvery: -1})
	defer mem.Close()
	d.st = mem // bans go where they can be read
	id := who("9", "10.0.0.3")
	for i := range 3 {
		d.Record(profile(id, t0, fmt.Sprint(i)))
	}
	d.fleet.flush(d)
	bs, _ := mem.ListBans(context.Background(), t0)
	if len(bs) != 1 || bs[0].Value != "9" || !strings.Contains(bs[0].Reason, "offence 1, banned 10m0s") {
		t.Fatalf("store down: bans %+v", bs)
	}
	if n := counter(t, m.storeErrs.WithLabelValues("observe")); n != 1 {
		t.Errorf("observe errors %v, want 1", n)
	}
	if n := counter(t, m.storeErrs.WithLabelValues("offend")); n != 1 {
		t.Errorf("offend errors %v, want 1", n)
	}
}

// Observations wait at most maxWaiting while the store lags; the rest are
// counted as dropped.
func TestFleetBounded(t *testing.T) {
	st := memory.New(memory.Options{SweepEvery: -1})
	defer st.Close()
	d, m := gateway(t, st, Config{Enabled: true, Rules: []Rule{{Name: "velocity", Kind: Velocity, Limit: 10_000, Window: time.Minute}}})
	id := who("h3", "10.0.0.4")
	for i := range maxWaiting + 100 {
		d.Record(profile(id, t0, fmt.Sprint(i)))
	}
	if n := len(d.fleet.waiting); n != maxWaiting {
		t.Fatalf("%d waiting, want %d", n, maxWaiting)
	}
	if n := counter(t, m.dropped); n != 100 {
		t.Fatalf("%v dropped, want 100", n)
	}
	d.fleet.flush(d)
	if n := counter(t, m.calls.WithLabelValues("observe")); n != maxWaiting/flushMax {
		t.Fatalf("%v observe calls for %d observations, want %d", n, maxWaiting, maxWaiting/flushMax)
	}
}

func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// The flushing goroutine: whatever its ticks did, once both gateways are
// closed every observation reached the store and the fleet's count banned.
func TestFleetCloseFlushes(t *testing.T) {
	st := memory.New(memory.Options{SweepEvery: -1})
	defer st.Close()
	cfg := Config{Enabled: true, Rules: []Rule{{Name: "velocity", Kind: Velocity, Limit: 5, Window: time.Minute}}}
	var gws []*Detector
	for range 2 {
		d, err := New(cfg, nil, st, shadow.New(prometheus.NewRegistry()), nil, slog.New(slog.DiscardHandler), WithShared(st))
		if err != nil {
			t.Fatal(err)
		}
		gws = append(gws, d)
	}
	id := who("21", "10.0.0.9")
	for i := range 6 {
		gws[i%2].Record(profile(id, t0, fmt.Sprint(i)))
	}
	for _, d := range gws {
		d.Close()
		d.Close() // twice is harmless
	}
	if b, ok := bansOn(t, st, t0)["account:21"]; !ok || !strings.Contains(b.Reason, "counted on every gateway") {
		t.Fatalf("after Close: %+v", bansOn(t, st, t0))
	}
}

// Enumeration on the fleet, in steady state: each gateway sees three of
// the never-shown ids (under the limit of 5 on its own), the fleet six;
// the ratio is of the fleet's every look-up in the window, however many
// (issue 22: the store's look-up count was capped at 13, so the rule never
// fired past an identity's 13th look-up).
func TestFleetEnumeration(t *testing.T) {
	cfg := Config{Enabled: true, Rules: []Rule{{Name: "enum", Kind: Enumeration, Limit: 5, Ratio: 0.5, Window: time.Hour}}}
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Run("fires when the ratio holds", func(t *testing.T) {
				st := s.open(t)
				a, _ := gateway(t, st, cfg)
				b, _ := gateway(t, st, cfg)
				gw := []*Detector{a, b}
				id := who("h1", "10.0.2.1")
				for i, k := range seq("k", 0, 40) {
					lookups(gw[i%2], id, t0, false, k)
				}
				a.fleet.flush(a)
				b.fleet.flush(b)
				// Never-shown ids cycled per gateway: a sees u0-u2, b u3-u5.
				for i := range 40 {
					d := gw[i%2]
					lookups(d, id, t0.Add(time.Minute), true, fmt.Sprint("u", 3*(i%2)+i/2%3))
					d.fleet.flush(d)
					_, banned := bansOn(t, st, t0.Add(time.Minute))["account:h1"]
					if banned != (i == 39) {
						t.Fatalf("%d never shown of %d look-ups on the fleet: banned %v", i+1, 41+i, banned)
					}
				}
				ban := bansOn(t, st, t0.Add(time.Minute))["account:h1"]
				if !strings.Contains(ban.Reason, "40 of 80 look-ups within 1h0m0s were of ids never shown, more than 5 distinct (limit 5, ratio 0.50), counted on every gateway") {
					t.Fatalf("ban %+v", ban)
				}
			})
			t.Run("not under the ratio", func(t *testing.T) {
				st := s.open(t)
				a, _ := gateway(t, st, cfg)
				b, _ := gateway(t, st, cfg)
				gw := []*Detector{a, b}
				id := who("p1", "10.0.2.2")
				// 100 look-ups, 10 distinct never shown: past the limit on
				// the fleet, far under the ratio.
				for i := range 100 {
					d := gw[i%2]
					lookups(d, id, t0.Add(time.Duration(i)*time.Second), i%10 == 9, fmt.Sprint("x", i))
					d.fleet.flush(d)
				}
				if bs := bansOn(t, st, t0); len(bs) != 0 {
					t.Fatalf("banned at 10 never shown of 100 look-ups: %v", bs)
				}
			})
			t.Run("window expiry", func(t *testing.T) {
				st := s.open(t)
				a, _ := gateway(t, st, cfg)
				b, _ := gateway(t, st, cfg)
				id := who("w1", "10.0.2.3")
				lookups(a, id, t0, false, seq("k", 0, 50)...)
				a.fleet.flush(a)
				// The 50 shown look-ups expired on the fleet: b's 6 never
				// shown (3 distinct on each gateway) are all its look-ups.
				at := t0.Add(time.Hour + time.Millisecond)
				lookups(a, id, at, true, "u0", "u1", "u2")
				a.fleet.flush(a)
				lookups(b, id, at, true, "u3", "u4", "u5")
				b.fleet.flush(b)
				if _, ok := bansOn(t, st, at)["account:w1"]; !ok {
					t.Fatal("6 never shown of 6 look-ups on the fleet within the window: no ban")
				}
			})
		})
	}
}

// A never-shown id's count past the limit whose tallies the flush never
// saw (dropped while the store lagged) judges nothing: an unknown ratio
// is not a ratio of 0 of 0.
func TestFleetEnumerationWithoutTallies(t *testing.T) {
	st := memory.New(memory.Options{SweepEvery: -1})
	defer st.Close()
	d, _ := gateway(t, st, Config{Enabled: true, Rules: []Rule{{Name: "enum", Kind: Enumeration, Limit: 2, Ratio: 0.5, Window: time.Hour}}})
	r := d.rules[0]
	batch := []observed{{Observation: store.Observation{Key: "u", Member: 1, At: t0, Window: time.Hour, Limit: 2}, r: r, acc: profile(who("z", "10.0.2.9"), t0, "1"),
		looksKey: "l", unrefKey: "n"}}
	if got := d.judge(batch, []int{3}, map[string]int{}); len(got) != 0 {
		t.Fatalf("fired without tallies: %+v", got)
	}
	if got := d.judge(batch, []int{3}, map[string]int{"l": 4, "n": 2}); len(got) != 1 || got[0].unref != 2 || got[0].looks != 4 {
		t.Fatalf("2 never shown of 4, 3 distinct (limit 2): %+v", got)
	}
}
