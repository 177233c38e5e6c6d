package main

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/canary"
	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/gateway"
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
