package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/canary"
	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/gateway"
	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
)

// labGate is the canary gate on examples/lab.yaml's route map and canary
// section, with a fixed key.
func labGate(tb testing.TB) (canaryGate, *inspect.Map) {
	tb.Helper()
	tb.Setenv("LAB_JWT_SECRET", "lab-secret")
	tb.Setenv("LAB_PARTNER_KEY", "pk-0123456789abcdef")
	cfg, err := config.Load("../../examples/lab.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	m, err := inspect.Compile(cfg.Inspect)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := canary.NewWithKeys(cfg.Canary, "bench-key-0123456789abcdef")
	if err != nil {
		tb.Fatal(err)
	}
	return canaryGate{c}, m
}

// BenchmarkCanaryGateProfile: what canaries add to row (e)'s request, a
// lab profile by id: the responder asked and answering nothing. Row (e)
// spends about 30 us of CPU a request (warden bench, cpu s/1k), so a few
// tens of ns here are a few thousandths of a percent of it.
func BenchmarkCanaryGateProfile(b *testing.B) {
	g, m := labGate(b)
	exs := make([]gateway.Exchange, 4096)
	for i := range exs {
		p := "/v1/users/" + strconv.Itoa(1+i*24%100000)
		exs[i] = gateway.Exchange{Method: "GET", Path: p, Start: time.Now()}
		exs[i].Route, _ = m.Match("GET", p)
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if g.Respond(ctx, &exs[i%len(exs)]) != nil {
			b.Fatal("a lab profile answered as a canary")
		}
		i++
	}
}

// TestCanaryGateAnonymous: a request about a canary without a verified
// account goes to the upstream (canary.anonymous: upstream, the default),
// which answers it as any id without an account; with answer, warden
// answers it from the key.
func TestCanaryGateAnonymous(t *testing.T) {
	g, m := labGate(t)
	p := g.c.Canary(0, 7)
	ex := gateway.Exchange{Method: "GET", Path: "/v1/users/" + strconv.FormatInt(p.ID, 10), Start: time.Now()}
	ex.Route, _ = m.Match("GET", ex.Path)
	ctx := context.Background()
	if l := g.Respond(ctx, &ex); l != nil {
		t.Fatalf("anonymous: answered %d %s", l.Status, l.Body)
	}
	ex.Identity.Account = "11"
	if l := g.Respond(ctx, &ex); l == nil || l.Status != 200 {
		t.Fatalf("with an account: %+v", l)
	}
	cfg := g.c.Config()
	cfg.Anonymous = canary.AnonymousAnswer
	c, err := canary.NewWithKeys(cfg, "bench-key-0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	ex.Identity.Account = ""
	if l := (canaryGate{c}).Respond(ctx, &ex); l == nil || l.Status != 200 {
		t.Fatalf("anonymous: answer: %+v", l)
	}
}

// BenchmarkCanaryGateSeed: the seeder on a followers page asked at limit
// 50, 1,000 accounts and 1,000 lists round robin: "room", 30 records
// (room for 2: the plan runs, the canaries shown are rendered and
// inserted); "full", 50 records (no room: nothing inserted). Before pages
// were kept to their limit both ran the plan.
func BenchmarkCanaryGateSeed(b *testing.B) {
	g, m := labGate(b)
	for _, n := range []int{30, 50} {
		b.Run(map[int]string{30: "room", 50: "full"}[n], func(b *testing.B) {
			body := []byte(`{"users":[`)
			for i := range n {
				if i > 0 {
					body = append(body, ',')
				}
				body = fmt.Appendf(body, `{"id":"%d","username":"user_%d","full_name":"User %d","follower_count":3,"is_business":false}`, 100+i, 100+i, 100+i)
			}
			body = append(body, `],"next_cursor":null}`...)
			exs := make([]gateway.Exchange, 1000)
			for i := range exs {
				p := "/v1/users/" + strconv.Itoa(5000+i) + "/followers"
				exs[i] = gateway.Exchange{Method: "GET", Path: p, RawQuery: "limit=50", Start: time.Now(), Identity: identify.Identity{Account: strconv.Itoa(1 + i*7%1000)}}
				exs[i].Route, _ = m.Match("GET", p)
			}
			var res inspect.Result
			var plain []byte
			var acc inspect.Access
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				ex := &exs[i%len(exs)]
				res.Reset()
				if _, u, err := m.ReadAnswer(ex.Route.Route, 200, "application/json", "", body, &plain, &res, nil); u != inspect.Read {
					b.Fatal(u, err)
				}
				g.Seed(ex, &res, &acc)
				i++
			}
		})
	}
}

// TestOpenCanariesWarnsUninspectedSeed: a seeded route the inspect stage
// does not read gets no canary; serve says so at start, once per route.
// Before, a config with a canary section and no inspect routes logged
// "canaries on" and seeded nothing.
func TestOpenCanariesWarnsUninspectedSeed(t *testing.T) {
	t.Setenv("WARDEN_CANARY_KEY", "test-key-0123456789abcdef")
	for _, tc := range []struct {
		inspect []string
		want    int
	}{
		{nil, 3},
		{[]string{"GET /v1/users/{id}/followers", "GET /v1/users/{id}/following", "GET /v1/search"}, 0},
	} {
		var cfg config.Config
		cfg.Canary.KeyEnv = "WARDEN_CANARY_KEY"
		for _, r := range tc.inspect {
			cfg.Inspect.Routes = append(cfg.Inspect.Routes, inspect.RouteConfig{Route: r})
		}
		var buf bytes.Buffer
		if _, _, err := openCanaries(&cfg, slog.New(slog.NewTextHandler(&buf, nil))); err != nil {
			t.Fatal(err)
		}
		if got := strings.Count(buf.String(), "seeded route has no inspect route"); got != tc.want {
			t.Errorf("inspect routes %q: %d warnings, want %d:\n%s", tc.inspect, got, tc.want, buf.String())
		}
	}
}
