package ration

import (
	"context"
	"fmt"
	"testing"

	"github.com/warden-gw/warden/internal/identify"
)

// BenchmarkApplyProfile: one full-profile answer through the lab's rules
// (unreferenced look-up, three contact budgets), as row (e) of warden bench
// sends them: 1000 accounts, profiles spread over 100k ids, most of them
// past the budgets, so answers are masked and rewritten.
func BenchmarkApplyProfile(b *testing.B) {
	l := loadLab(b)
	e := newEnv(b, l.Ration, l.Inspect)
	ids := make([]*identify.Identity, 1000)
	for i := range ids {
		ids[i] = account(fmt.Sprintf("acct-%d", i))
	}
	bodies := make([][]byte, 512)
	paths := make([]string, len(bodies))
	for i := range bodies {
		bodies[i] = profile(1 + i*193)
		paths[i] = fmt.Sprintf("/v1/users/%d", 1+i*193)
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := i % len(bodies)
		rt, ok := e.r.Match("GET", paths[k])
		if !ok {
			b.Fatal("no route")
		}
		_, err := e.r.Apply(ctx, t0, ids[i%len(ids)], Request{Method: "GET", Path: paths[k], ID: "0123456789abcdef"}, rt,
			Response{Status: 200, ContentType: "application/json", Body: bodies[k]})
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
}
