package ration

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

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

// BenchmarkFanoutCap: the ration stage's cost with the per-answer cap off
// and on, on one workload: 1000 accounts, each asking a search page of 20
// people and then opening some of them by id, through the lab's rules on
// the memory store. under: 3 opens a page, none past a cap of 3 (the cost
// of counting); past: 6 opens, the last 3 past it (and masked, so their
// answers are rewritten). An op is one answer (a page or a look-up);
// cpu-ns/op is the process's CPU time per answer. Compare off and on
// alternating single runs (see README, "the per-answer cap").
func BenchmarkFanoutCap(b *testing.B) {
	for _, opens := range []int{3, 6} {
		for _, on := range []bool{false, true} {
			name := map[int]string{3: "under", 6: "past"}[opens] + map[bool]string{false: "/off", true: "/on"}[on]
			b.Run(name, func(b *testing.B) { benchFanout(b, opens, on) })
		}
	}
}

func benchFanout(b *testing.B, opens int, on bool) {
	l := loadLab(b)
	pages := make([][]byte, 64)
	hits := make([][]int, len(pages))
	bodies := map[int][]byte{}
	paths := map[int]string{}
	for p := range pages {
		hits[p] = make([]int, 20)
		for j := range hits[p] {
			hits[p][j] = 1 + p*20 + j
		}
		pages[p] = followers(hits[p]...)
		for _, id := range hits[p][:opens] {
			bodies[id], paths[id] = profile(id), fmt.Sprintf("/v1/users/%d", id)
		}
	}
	cfg := l.Ration
	if on {
		cfg.FanoutCap = &FanoutCap{Limit: 3, Window: 10 * time.Minute, Classes: []string{"contact"}}
	}
	e := newEnv(b, cfg, l.Inspect)
	ids := make([]*identify.Identity, 1000)
	for i := range ids {
		ids[i] = account(fmt.Sprintf("acct-%d", i))
	}
	search, _ := e.r.Match("GET", "/v1/search")
	look, _ := e.r.Match("GET", "/v1/users/1")
	reqIDs := make([]string, 4096)
	for i := range reqIDs {
		reqIDs[i] = fmt.Sprintf("%016x", i)
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	cpu0 := cpuTime(b)
	for b.Loop() {
		// Step s of a round: 0 the page, then the opens.
		round, s := i/(opens+1), i%(opens+1)
		id := ids[round%len(ids)]
		p := round % len(pages)
		now := t0.Add(time.Duration(i) * time.Millisecond)
		req, rt, body := Request{Method: "GET", Path: "/v1/search", RawQuery: "q=ab", ID: reqIDs[i%len(reqIDs)]}, search, pages[p]
		if s > 0 {
			h := hits[p][s-1]
			req, rt, body = Request{Method: "GET", Path: paths[h], ID: reqIDs[i%len(reqIDs)]}, look, bodies[h]
		}
		if _, err := e.r.Apply(ctx, now, id, req, rt, Response{Status: 200, ContentType: "application/json", Body: body}); err != nil {
			b.Fatal(err)
		}
		i++
	}
	// CPU time (the process's, user and system) per answer: on a shared
	// machine wall time counts other processes' turns too.
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(i), "cpu-ns/op")
}

// cpuTime is the CPU time (user and system) the process has spent.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
