package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/lab/chserver"
	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/ledger/clickhouse"
	"github.com/warden-gw/warden/internal/trace"
)

// TestTraceOnClickHouse: the coverage step of warden trace reads the
// ledger in ClickHouse (--clickhouse ADDR, or the config's backend) and
// reports what it reports from the local ledger of the same traffic.
func TestTraceOnClickHouse(t *testing.T) {
	t.Setenv("WARDEN_CANARY_KEY", "") // coverage only: no canary evidence
	srv := chserver.ForTest(t)
	ctx := context.Background()
	var out, errb bytes.Buffer
	if err := runLedger(ctx, []string{"init", "--clickhouse", srv.Addr()}, &out, &errb); err != nil {
		t.Fatalf("init: %v %s", err, errb.String())
	}
	cc := clickhouse.Config{Addrs: []string{srv.Addr()}, BatchSize: 100, BatchInterval: 20 * time.Millisecond, Spool: clickhouse.SpoolConfig{Dir: t.TempDir()}}
	sink, err := clickhouse.NewSink(cc, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t0 := time.Now().Add(-time.Hour).UTC()
	l, err := ledger.Open(ledger.Options{Dir: dir, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	// Accounts 1..3 each take 40 profiles (ids 1000+40k..), overlapping
	// the next by 10; a refusal serves nothing.
	for i := range 120 {
		k := 1 + i%3
		a := &inspect.Access{RequestID: fmt.Sprintf("%024x", i+1), Route: "GET /v1/users/{id}", Status: 200, Time: t0.Add(time.Duration(i) * time.Second),
			Classes: []string{"contact"}, Identity: identify.Identity{Account: fmt.Sprint(k)}}
		a.Records = []inspect.Record{{ID: fmt.Sprint(1000 + 30*k + i/3), Classes: 1}}
		if i == 7 {
			a.Status, a.Rule, a.Facet = 429, "burst", "account"
		}
		l.Record(a)
		sink.Record(a)
	}
	l.Close()
	if err := sink.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// The copy: what account 2 took, and 10 profiles nobody was served.
	var b strings.Builder
	for id := 1060; id < 1100; id++ {
		fmt.Fprintf(&b, "{\"id\":\"%d\",\"username\":\"u%d\"}\n", id, id)
	}
	for id := 5000; id < 5010; id++ {
		fmt.Fprintf(&b, "{\"id\":\"%d\"}\n", id)
	}
	take := filepath.Join(t.TempDir(), "take.jsonl")
	if err := os.WriteFile(take, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "fleet.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("ledger:\n  backend: clickhouse\n  clickhouse: {addrs: [%q], spool: {dir: %q}}\n", srv.Addr(), t.TempDir())), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(where ...string) (*trace.Report, string) {
		var o, e bytes.Buffer
		if err := runTrace(ctx, append([]string{take, "--json"}, where...), &o, &e); err != nil {
			t.Fatalf("trace %v: %v\n%s", where, err, e.String())
		}
		var r trace.Report
		if err := json.Unmarshal(o.Bytes(), &r); err != nil {
			t.Fatalf("trace %v: %v\n%s", where, err, o.String())
		}
		r.Inputs = trace.Report{}.Inputs // read statistics, the same copy
		return &r, mustJSONString(t, &r)
	}
	local, lj := run("--ledger", dir)
	if local.Served != 0.8 || len(local.Coverage) == 0 || local.Coverage[0].Value != "2" || local.Coverage[0].Subjects != 39 {
		t.Fatalf("local ledger: served %v, coverage %+v; want 0.8, account 2 first with 39 (its refusal served nothing)", local.Served, local.Coverage)
	}
	for _, where := range [][]string{{"--clickhouse", srv.Addr()}, {"--config", cfg}} {
		if _, cj := run(where...); cj != lj {
			t.Errorf("trace %v:\nclickhouse %s\nlocal      %s", where, cj, lj)
		}
	}
	// ClickHouse unreachable: an error, not a report without coverage.
	var o, e bytes.Buffer
	if err := runTrace(ctx, []string{take, "--json", "--clickhouse", "127.0.0.1:1"}, &o, &e); err == nil {
		t.Fatalf("trace with ClickHouse unreachable: no error, printed %s", o.String())
	}
}

func mustJSONString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
