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
