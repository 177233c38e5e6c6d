package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/lab/chserver"
	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/ledger/clickhouse"
)

// TestLedgerCommandsOnClickHouse: warden ledger init, then the same
// queries with --ledger DIR and --clickhouse ADDR print the same JSON.
func TestLedgerCommandsOnClickHouse(t *testing.T) {
	srv, sink := fleetLedger(t)
	ctx := context.Background()
	dir := t.TempDir()
	t0 := time.Now().Add(-time.Hour).UTC()
	l, err := ledger.Open(ledger.Options{Dir: dir, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		a := &inspect.Access{RequestID: strings.Repeat("0", 20) + string(rune('a'+i%26)) + "000", Route: "GET /v1/feed", Status: 200,
			Time: t0.Add(time.Duration(i) * time.Second), Classes: []string{"contact"}}
		a.Identity = identify.Identity{Account: []string{"1", "2", "3"}[i%3]}
		a.Records = []inspect.Record{{ID: "s" + string(rune('a'+i%7)), Classes: 1}}
		a.Authors = []string{[]string{"x", "y", "z", "w"}[i%4]}
		l.Record(a)
		sink.Record(a)
	}
	l.Close()
	sink.Close(ctx)
	for _, args := range [][]string{
		{"ledger", "who-took", "sb"},
		{"ledger", "took-by", "account", "2"},
		{"reach", "--authors", "x,y,z", "--dose", "--overlap", "w"},
	} {
		var a, b bytes.Buffer
		run := func(w *bytes.Buffer, where ...string) {
			full := append(append([]string{}, args[1:]...), append(where, "--json")...)
			var err error
			if args[0] == "ledger" {
				err = runLedger(ctx, full, w, os.Stderr)
			} else {
				err = runReach(ctx, full, w, os.Stderr)
			}
			if err != nil {
				t.Fatalf("%v %v: %v", args, where, err)
			}
		}
		run(&a, "--ledger", dir)
		run(&b, "--clickhouse", srv.Addr())
		var va, vb any
		json.Unmarshal(a.Bytes(), &va)
		json.Unmarshal(b.Bytes(), &vb)
		ja, _ := json.Marshal(va)
		jb, _ := json.Marshal(vb)
		if string(ja) != string(jb) || len(ja) < 20 {
			t.Errorf("%v:\n--ledger     %s\n--clickhouse %s", args, ja, jb)
		}
	}
	// The admin API's queries follow the asker's context: one gone away
	// (a closed page, a client that hung up) stops asking ClickHouse.
	ch, err := clickhouseSource(nil, srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	gone, cancel := context.WithCancel(ctx)
	cancel()
	q := ledgerQuerier{src: ch, cfg: func() *config.Config { return nil }}
	for _, c := range []struct {
		name string
		args url.Values
	}{{"took-by", url.Values{"facet": {"account"}, "value": {"2"}}}, {"explain", url.Values{"id": {strings.Repeat("0", 20) + "a000"}}}} {
		if res, err := q.Query(gone, c.name, c.args); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with the context canceled: %v, %v; want context.Canceled", c.name, res, err)
		}
		if _, err := q.Query(ctx, c.name, c.args); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// fleetLedger starts a ClickHouse server, makes its ledger with warden
// ledger init, and opens a sink writing Accesses to it in small batches.
func fleetLedger(t *testing.T) (*chserver.Server, *clickhouse.Sink) {
	t.Helper()
	srv := chserver.ForTest(t)
	var out, errb bytes.Buffer
	if err := runLedger(context.Background(), []string{"init", "--clickhouse", srv.Addr()}, &out, &errb); err != nil {
		t.Fatalf("init: %v %s", err, errb.String())
	}
	cc := clickhouse.Config{Addrs: []string{srv.Addr()}, BatchSize: 100, BatchInterval: 20 * time.Millisecond, Spool: clickhouse.SpoolConfig{Dir: t.TempDir()}}
	sink, err := clickhouse.NewSink(cc, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return srv, sink
}
