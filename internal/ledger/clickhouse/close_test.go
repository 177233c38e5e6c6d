package clickhouse

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestCloseWhileClickHouseHangs: a gateway stopping while ClickHouse has
// taken an insert and does not answer (a hung server: stopped, not gone)
// keeps to the time Close is given and leaves the batch in its spool,
// rather than waiting out the request's timeout; the next start sends it,
// once.
func TestCloseWhileClickHouseHangs(t *testing.T) {
	s := server(t)
	cfg := config(t, s, "hangtest")
	cfg.Timeout = 20 * time.Second
	proc, err := os.FindProcess(s.Pid())
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	resume := func() {
		if stopped {
			proc.Signal(syscall.SIGCONT)
			stopped = false
		}
	}
	t.Cleanup(resume)

	sink, err := NewSink(cfg, nil, NewMetrics(nil))
	if err != nil {
		t.Fatal(err)
	}
	acc := traffic(500)
	for _, a := range acc {
		sink.Record(a)
	}
	sink.Flush()
	time.Sleep(300 * time.Millisecond) // the sender's insert waits for an answer
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	sink.Close(ctx)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Close given 1 s took %v: it waited for the hung insert", took.Round(time.Millisecond))
	}
	files, _ := filepath.Glob(filepath.Join(cfg.Spool.Dir, "*.batch"))
	if len(files) != 1 {
		t.Fatalf("%d batches in the spool after Close, want the one in flight", len(files))
	}

	resume()
	time.Sleep(time.Second) // ClickHouse may now insert what it had read
	again, err := NewSink(cfg, nil, NewMetrics(nil))
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel2()
	again.Close(ctx2)
	if n := again.spool.len(); n != 0 {
		t.Fatalf("%d batches still spooled", n)
	}
	c, _ := NewClient(cfg)
	out, err := c.Do(context.Background(), "SELECT count(), uniqExact(req) FROM accesses", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(trimNL(out)); got != "500\t500" {
		t.Fatalf("accesses, distinct: %s; want 500 each", got)
	}
}
