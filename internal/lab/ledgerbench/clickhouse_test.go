package ledgerbench

import (
	"bytes"
	"context"
	"strings"
	"syscall"
	"testing"

	"github.com/warden-gw/warden/internal/lab/chserver"
)

// TestClickHouseRowAgrees runs both rows at a small scale, ClickHouse on
// the server and settings `warden bench ledger` uses, and checks that the
// two stores give the same answers.
func TestClickHouseRowAgrees(t *testing.T) {
	o := small(7)
	o.Dir = t.TempDir() + "/ledger"
	var log bytes.Buffer
	rep, err := Run(context.Background(), o, &log)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 2 {
		t.Fatalf("rows %+v", rep.Rows)
	}
	w, c := rep.Rows[0], rep.Rows[1]
	if w.Skipped != "" || c.Skipped != "" {
		t.Fatalf("skipped: ledger %q, clickhouse %q; log:\n%s", w.Skipped, c.Skipped, log.String())
	}
	if !strings.HasPrefix(c.Store, "clickhouse 1") {
		t.Fatalf("store %q", c.Store)
	}
	if w.Reach.Value == 0 || w.Cut.Value == 0 || w.WhoTookRows == 0 {
		t.Fatalf("nothing to compare: reach %d, cut %d, who-took rows %d", w.Reach.Value, w.Cut.Value, w.WhoTookRows)
	}
	if c.Reach.Value != w.Reach.Value || c.Reach.Impressions != w.Reach.Impressions || c.Cut != (Reach{Wall: c.Cut.Wall, Value: w.Cut.Value, Impressions: w.Cut.Impressions}) ||
		c.WhoTookRows != w.WhoTookRows {
		t.Fatalf("clickhouse reach %+v cut %+v who-took rows %d; ledger %+v %+v %d", c.Reach, c.Cut, c.WhoTookRows, w.Reach, w.Cut, w.WhoTookRows)
	}
	if c.Bytes <= 0 || c.WriterMaxRSS <= 0 || c.IngestAll < c.Ingest || c.Reach.Wall <= 0 || c.Cut.Wall <= 0 || c.WhoTook <= 0 {
		t.Fatalf("clickhouse figures: %+v", c)
	}
	// Every day merged into one part (logged by the run).
	if !strings.Contains(log.String(), "2 parts") {
		t.Fatalf("days not merged into one part each; log:\n%s", log.String())
	}
	var out bytes.Buffer
	rep.Format(&out, "warden bench ledger")
	if !strings.Contains(out.String(), "peak RSS") {
		t.Fatalf("report without the server's memory:\n%s", out.String())
	}
}

// TestClickHouseGoneIsReported: a server that has gone makes the row's
// error say so, with how it ended, not just "connection refused".
func TestClickHouseGoneIsReported(t *testing.T) {
	s := chserver.ForTest(t)
	if err := syscall.Kill(s.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-s.Done()
	var row Row
	err := loadAndQuery(context.Background(), small(1), s, &row, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "create table") || !strings.Contains(err.Error(), "the server has gone") || !strings.Contains(err.Error(), "signal: killed") {
		t.Fatalf("error %v", err)
	}
}
