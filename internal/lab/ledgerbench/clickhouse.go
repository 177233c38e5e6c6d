package ledgerbench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/warden-gw/warden/internal/lab/chserver"
	"github.com/warden-gw/warden/internal/ledger"
)

// chServer is what the comparison needs of the server it starts.
type chServer interface {
	Query(ctx context.Context, q string, body io.Reader) (string, error)
	Exited() error
	RSS() (now, peak int64)
	LogTail(n int) string
}

// runClickHouse loads the same Accesses into a ClickHouse server started
// for the run (its own directory and ports) and times the same queries.
// Every failure is the row's Skipped, with the server's state: how it
// ended when it has, else its error log's last lines. The server's
// directory is removed after a run that went well; after one that did
// not, its data is removed and its logs are kept, their path in the row.
func runClickHouse(ctx context.Context, o Options, log io.Writer) (row Row) {
	row = Row{Store: "clickhouse"}
	dir, err := os.MkdirTemp("", "warden-bench-clickhouse-")
	if err != nil {
		row.Skipped = fmt.Sprintf("clickhouse directory: %v", err)
		return row
	}
	defer func() {
		os.RemoveAll(filepath.Join(dir, "data"))
		if row.Skipped == "" {
			os.RemoveAll(dir)
		} else {
			row.Skipped += fmt.Sprintf(" (the server's logs are kept in %s: server.log, log/clickhouse-server.log, log/clickhouse-server.err.log)", dir)
		}
	}()
	srv, err := chserver.Start(ctx, dir)
	if err != nil {
		row.Skipped = err.Error()
		return row
	}
	defer srv.Stop()
	row.Store = "clickhouse " + srv.Version
	fmt.Fprintf(log, "clickhouse %s on 127.0.0.1:%d, logs in %s/log\n", srv.Version, srv.HTTPPort, dir)
	// Watch the server's memory while it works: its peak RSS is the row's
	// writer figure, and the last sample says how much it held should it go.
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var peak int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for i := 1; ; i++ {
			select {
			case <-wctx.Done():
				return
			case <-t.C:
			}
			now, hwm := srv.RSS()
			if now == 0 {
				return
			}
			peak = max(peak, hwm)
			if i%60 == 0 {
				fmt.Fprintf(log, "clickhouse: RSS %d MiB, peak %d MiB\n", now>>20, hwm>>20)
			}
		}
	}()
	err = loadAndQuery(ctx, o, srv, &row, log)
	if _, hwm := srv.RSS(); hwm > 0 {
		peak = max(peak, hwm)
	}
	stop()
	wg.Wait()
	row.WriterMaxRSS = peak
	row.Note = fmt.Sprintf("the server's peak RSS (VmHWM) %d MiB is its writer heap; max_threads 2, max_memory_usage 4 GB, 1,048,576-row insert blocks, 4 merge threads, each day OPTIMIZE FINAL into one part", peak>>20)
	if err != nil {
		row.Skipped = err.Error()
	}
	return row
}

// chErr is err with the server's state: gone (how) or its last log lines.
func chErr(s chServer, what string, err error) error {
	if gone := s.Exited(); gone != nil {
		return fmt.Errorf("%s: %v; the server has gone: %w", what, err, gone)
	}
	return fmt.Errorf("%s: %w; server's error log: %s", what, err, s.LogTail(5))
}

// chDDL is the comparison's table: the Accesses as the ledger gets them,
// partitioned by day.
const chDDL = `CREATE TABLE accesses (
  t DateTime, us UInt32, req String, account String, ip String, net String, route String, status UInt16,
  subjects Array(String), classes UInt64, masked UInt64, authors Array(String)
) ENGINE = MergeTree() PARTITION BY toDate(t) ORDER BY (t, us)`

func loadAndQuery(ctx context.Context, o Options, s chServer, row *Row, log io.Writer) error {
	if _, err := s.Query(ctx, chDDL, nil); err != nil {
		return chErr(s, "create table", err)
	}
	start := time.Now()
	pr, pw := io.Pipe()
	go func() {
		bw := bufio.NewWriterSize(pw, 1<<20)
		g := newGen(o)
		var a access
		for n := 0; g.next(&a); n++ {
			route := "GET /v1/users/{id}"
			if a.feed {
				route = "GET /v1/feed"
			}
			if _, err := fmt.Fprintf(bw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t200\t%s\t%d\t%d\t%s\n", a.t.Format("2006-01-02 15:04:05"), a.t.Nanosecond()/1000,
				a.reqID, a.account, a.ip, a.net, route, tsvArray(a.subjects), a.classes, a.masked, tsvArray(a.authors)); err != nil {
				return // the request ended: its error is the load's
			}
			if (n+1)%(1<<22) == 0 {
				fmt.Fprintf(log, "clickhouse: %d Accesses sent\n", n+1)
			}
		}
		pw.CloseWithError(bw.Flush())
	}()
	_, err := s.Query(ctx, "INSERT INTO accesses FORMAT TabSeparated", pr)
	pr.CloseWithError(errors.New("load ended"))
	if err != nil {
		return chErr(s, "load", err)
	}
	row.Ingest = time.Since(start)
	fmt.Fprintf(log, "clickhouse: loaded in %.1f s; merging each day's parts into one\n", row.Ingest.Seconds())
	// Merged parts, one a day, as a settled table is. OPTIMIZE without
	// PARTITION merges one choice of parts, not every day's.
	days, err := s.Query(ctx, "SELECT DISTINCT partition FROM system.parts WHERE table = 'accesses' AND active ORDER BY partition", nil)
	if err != nil {
		return chErr(s, "list partitions", err)
	}
	for _, d := range strings.Fields(days) {
		if _, err := s.Query(ctx, fmt.Sprintf("OPTIMIZE TABLE accesses PARTITION '%s' FINAL", d), nil); err != nil {
			return chErr(s, "optimize partition "+d, err)
		}
	}
	row.IngestAll = time.Since(start)
	b, err := s.Query(ctx, "SELECT sum(bytes_on_disk), count() FROM system.parts WHERE table = 'accesses' AND active", nil)
	if err != nil {
		return chErr(s, "size", err)
	}
	f := strings.Fields(b)
	if len(f) != 2 {
		return fmt.Errorf("size: unexpected answer %q", b)
	}
	row.Bytes, _ = strconv.ParseInt(f[0], 10, 64)
	fmt.Fprintf(log, "clickhouse: merged in %.1f s more: %s parts, %d bytes\n", (row.IngestAll - row.Ingest).Seconds(), f[1], row.Bytes)
	var quoted []string
	for _, a := range queryAuthors(o, nAuthors) {
		quoted = append(quoted, "'"+a+"'")
	}
	whoQ := fmt.Sprintf("SELECT account, count(), min(t), max(t) FROM accesses WHERE has(subjects, '%s') GROUP BY account", querySubject(o))
	var qerr error
	query := func(what, q string, parse func(string) error) {
		if qerr != nil {
			return
		}
		out, err := s.Query(ctx, q, nil)
		if err == nil {
			err = parse(out)
		}
		if err != nil {
			qerr = chErr(s, what, err)
		}
	}
	parseWho := func(out string) error {
		row.WhoTookRows = 0
		if out != "" {
			row.WhoTookRows = len(strings.Split(out, "\n"))
		}
		return nil
	}
	for _, q := range []struct {
		what string
		rc   *Reach
		win  ledger.Window
	}{{"reach", &row.Reach, window(o)}, {"reach over the cut window", &row.Cut, cutWindow(o)}} {
		reachQ := reachSQL(strings.Join(quoted, ","), q.win)
		parse := func(out string) error {
			f := strings.Fields(out)
			if len(f) != 2 {
				return fmt.Errorf("unexpected answer %q", out)
			}
			q.rc.Value, _ = strconv.Atoi(f[0])
			q.rc.Impressions, _ = strconv.ParseUint(f[1], 10, 64)
			return nil
		}
		query(q.what+", warming", reachQ, parse) // warm, as the ledger's reader is
		q.rc.Wall = median(func() { query(q.what, reachQ, parse) })
	}
	query("who-took, warming", whoQ, parseWho)
	row.WhoTook = median(func() { query("who-took", whoQ, parseWho) })
	return qerr
}

// reachSQL is reach of the authors (quoted, comma-separated) over win,
// both ends included to the microsecond, as the ledger's Window: t holds
// the second (the partition key and the index's first column), us the
// microseconds within it.
func reachSQL(authors string, win ledger.Window) string {
	sec := func(t time.Time) string { return "toDateTime('" + t.UTC().Format("2006-01-02 15:04:05") + "')" }
	from, to := sec(win.From), sec(win.To)
	return fmt.Sprintf("SELECT uniqExact(account), count() FROM accesses ARRAY JOIN authors AS a WHERE a IN (%s) AND t >= %s AND t <= %s"+
		" AND NOT (t = %s AND us < %d) AND NOT (t = %s AND us > %d)",
		authors, from, to, from, win.From.Nanosecond()/1000, to, win.To.Nanosecond()/1000)
}

func tsvArray(v []string) string {
	var b strings.Builder
	b.WriteByte('[')
	for i, s := range v {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("'" + s + "'")
	}
	b.WriteByte(']')
	return b.String()
}
