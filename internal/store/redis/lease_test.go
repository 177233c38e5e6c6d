package redis_test

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/store"
	"github.com/warden-gw/warden/internal/store/redis"
	"github.com/warden-gw/warden/internal/store/redis/redistest"
)

var evalshaCalls = regexp.MustCompile(`cmdstat_evalsha:calls=(\d+)`)

// scriptCalls is how many EVALSHA the servers have run.
func scriptCalls(t *testing.T, srvs ...*redistest.Server) int {
	t.Helper()
	total := 0
	for _, srv := range srvs {
		info, err := srv.Do("INFO", "commandstats")
		if err != nil {
			t.Fatalf("info: %v", err)
		}
		if m := evalshaCalls.FindStringSubmatch(info); m != nil {
			n, _ := strconv.Atoi(m[1])
			total += n
		}
	}
	return total
}

// TestLeaseSavesRoundTrips: far from its limit, a key's requests are
// decided from leases (a few calls for many requests), on a standalone
// server and on a cluster (whose ban notices come from any node); with
// lease.tokens 1 each request is one call, as before leases.
func TestLeaseSavesRoundTrips(t *testing.T) {
	srv := redistest.Start(t)
	cluster := redistest.StartCluster(t)
	const n = 2000
	for _, c := range []struct {
		name     string
		addrs    []string
		nodes    []*redistest.Server
		tokens   int
		min, max int
	}{
		{"leases", []string{srv.Addr()}, []*redistest.Server{srv}, 0, 1, n / 20},
		{"cluster", cluster.Addrs(), cluster.Nodes, 0, 1, n / 20},
		{"exact", []string{srv.Addr()}, []*redistest.Server{srv}, 1, n, n},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := openWith(t, redis.Config{Addrs: c.addrs, Lease: redis.LeaseConfig{Tokens: c.tokens}})
			before := scriptCalls(t, c.nodes...)
			now := t0
			for i := range n {
				now = now.Add(100 * time.Microsecond)
				res, err := s.Admit(context.Background(), now, &store.AdmitRequest{
					Bans:   []store.BanKey{{Facet: "ip", Value: "192.0.2.1"}},
					Limits: []store.LimitRequest{{Key: "ip:192.0.2.1", Interval: time.Millisecond, Burst: 100000, Cost: 1}},
				})
				if err != nil || res.Ban != nil || !res.Limits[0].Allowed {
					t.Fatalf("request %d: %+v, %v; want admitted", i, res, err)
				}
			}
			if got := scriptCalls(t, c.nodes...) - before; got < c.min || got > c.max {
				t.Errorf("%d requests took %d script calls, want %d..%d", n, got, c.min, c.max)
			}
		})
	}
}

// TestLeaseBound: two gateways (Stores) holding leases on one key, with a
// harvester alternating between them at twice the limit's rate for 2 s.
// Leases move when cells are charged, never how many: the requests
// admitted are the exact GCRA's count within lease×holders (the largest
// lease is a sixteenth of the burst), and never more than the burst plus
// the refill plus that.
func TestLeaseBound(t *testing.T) {
	srv := redistest.Start(t)
	const burst, holders = 512, 2
	const lease = burst / 16
	prefix := fmt.Sprintf("bound%d:", prefixes.Add(1))
	var gw [holders]*redis.Store
	for i := range gw {
		gw[i] = openWith(t, redis.Config{Addrs: []string{srv.Addr()}, KeyPrefix: prefix})
	}
	ref := exactGCRA{t: time.Millisecond, burst: burst}
	admitted, exact := 0, 0
	now := t0
	for i := range 4000 {
		now = now.Add(500 * time.Microsecond)
		res, err := gw[i%holders].Admit(context.Background(), now, &store.AdmitRequest{Limits: []store.LimitRequest{
			{Key: "harvester", Interval: time.Millisecond, Burst: burst, Cost: 1},
		}})
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if res.Limits[0].Allowed {
			admitted++
		}
		if ref.admit(now) {
			exact++
		}
	}
	if d := admitted - exact; d > lease*holders || d < -lease*holders {
		t.Errorf("admitted %d, the exact GCRA %d: differ by %d, want at most lease×holders = %d", admitted, exact, d, lease*holders)
	}
	if most := burst + 2000 + lease*holders; admitted > most {
		t.Errorf("admitted %d in 2 s, more than burst + refill + lease×holders = %d", admitted, most)
	}
	t.Logf("admitted %d, exact %d", admitted, exact)
}

// exactGCRA is one limit of cost-1 requests decided exactly.
type exactGCRA struct {
	t     time.Duration
	burst int
	tat   time.Time
}

func (g *exactGCRA) admit(now time.Time) bool {
	tat := g.tat
	if tat.Before(now) {
		tat = now
	}
	nt := tat.Add(g.t)
	if nt.Sub(now) > g.t*time.Duration(g.burst) {
		return false
	}
	g.tat = nt
	return true
}

// TestLeaseStopsAtBan: a gateway deciding a key from its lease stops when
// another gateway bans the request's account: its mirror takes the ban
// from the notice (standalone and cluster), and lifts it the same way.
func TestLeaseStopsAtBan(t *testing.T) {
	standalone := redistest.Start(t)
	cluster := redistest.StartCluster(t)
	for _, tg := range []struct {
		name  string
		addrs []string
	}{{"standalone", []string{standalone.Addr()}}, {"cluster", cluster.Addrs()}} {
		t.Run(tg.name, func(t *testing.T) {
			gw := pair(t, tg.addrs)
			ctx := context.Background()
			acct := store.BanKey{Facet: "account", Value: "acc-7"}
			req := func(s *redis.Store) store.AdmitResult {
				res, err := s.Admit(ctx, t0, &store.AdmitRequest{Bans: []store.BanKey{acct},
					Limits: []store.LimitRequest{{Key: "acc-7", Interval: time.Millisecond, Burst: 100000, Cost: 1}}})
				if err != nil {
					t.Fatalf("admit: %v", err)
				}
				return res
			}
			for range 100 { // the key's requests now come from a lease
				if res := req(gw[1]); res.Ban != nil || !res.Limits[0].Allowed {
					t.Fatalf("before the ban: %+v", res)
				}
			}
			b := store.Ban{Facet: acct.Facet, Value: acct.Value, Reason: "harvesting", By: "test", Created: t0, Until: t0.Add(time.Hour)}
			if err := gw[0].PutBan(ctx, b); err != nil {
				t.Fatalf("put ban: %v", err)
			}
			for deadline := time.Now().Add(time.Second); req(gw[1]).Ban == nil; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the other gateway still admits a second after the ban")
				}
			}
			if _, err := gw[0].RemoveBan(ctx, acct); err != nil {
				t.Fatalf("remove ban: %v", err)
			}
			for deadline := time.Now().Add(time.Second); req(gw[1]).Ban != nil; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the other gateway still refuses a second after the ban was removed")
				}
			}
		})
	}
}

// TestBanMirrorReadsOneBan: a ban's notice makes the other gateways read
// that ban alone (HMGET), not every ban (HVALS): a detector banning many
// values must not make each gateway reload them all each time.
func TestBanMirrorReadsOneBan(t *testing.T) {
	srv := redistest.Start(t)
	gw := pair(t, []string{srv.Addr()})
	ctx := context.Background()
	calls := func(cmd string) int {
		info, err := srv.Do("INFO", "commandstats")
		if err != nil {
			t.Fatalf("info: %v", err)
		}
		m := regexp.MustCompile(`cmdstat_` + cmd + `:calls=(\d+)`).FindStringSubmatch(info)
		if m == nil {
			return 0
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	hvals, hmget := calls("hvals"), calls("hmget")
	var keys []store.BanKey
	for i := range 20 {
		b := store.Ban{Facet: "ip", Value: fmt.Sprintf("192.0.2.%d", i), Reason: "test", Created: t0, Until: t0.Add(time.Hour)}
		if err := gw[0].PutBan(ctx, b); err != nil {
			t.Fatalf("put ban: %v", err)
		}
		keys = append(keys, b.Key())
	}
	for _, k := range keys {
		untilBan(t, gw[1], k, true)
	}
	if got := calls("hvals") - hvals; got != 0 {
		t.Errorf("20 bans made %d HVALS, want 0 (each notice reads its ban)", got)
	}
	if got := calls("hmget") - hmget; got == 0 {
		t.Errorf("20 bans made no HMGET: the mirrors did not read them")
	}
}
