package ledgerbench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/warden-gw/warden/internal/lab/chserver"
	"github.com/warden-gw/warden/internal/ledger"
)

// runClickHouse loads the same Accesses into a ClickHouse server started
// for the run (its own directory and ports) and times the same queries.
func runClickHouse(ctx context.Context, o Options, log io.Writer) Row {
	row := Row{Store: "clickhouse"}
	dir, err := os.MkdirTemp("", "warden-bench-clickhouse-")
	if err != nil {
		row.Skipped = err.Error()
		return row
	}
	defer os.RemoveAll(dir)
	srv, err := chserver.Start(ctx, dir)
	if err != nil {
		row.Skipped = err.Error()
		return row
	}
	defer srv.Stop()
	c := chClient{srv}
	version, hp := srv.Version, srv.HTTPPort
	row.Store = "clickhouse " + version
	fmt.Fprintf(log, "clickhouse %s on 127.0.0.1:%d\n", version, hp)
	ddl := `CREATE TABLE accesses (
  t DateTime, us UInt32, req String, account String, ip String, net String, route String, status UInt16,
  subjects Array(String), classes UInt64, masked UInt64, authors Array(String)
) ENGINE = MergeTree() PARTITION BY toDate(t) ORDER BY (t, us)`
	if _, err := c.do(ctx, ddl, nil); err != nil {
		row.Skipped = err.Error()
		return row
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
			fmt.Fprintf(bw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t200\t%s\t%d\t%d\t%s\n", a.t.Format("2006-01-02 15:04:05"), a.t.Nanosecond()/1000,
				a.reqID, a.account, a.ip, a.net, route, tsvArray(a.subjects), a.classes, a.masked, tsvArray(a.authors))
			if (n+1)%(1<<22) == 0 {
				fmt.Fprintf(log, "clickhouse: %d Accesses sent\n", n+1)
			}
		}
		pw.CloseWithError(bw.Flush())
	}()
	if _, err := c.do(ctx, "INSERT INTO accesses FORMAT TabSeparated", pr); err != nil {
		row.Skipped = "load: " + err.Error()
		return row
	}
	row.Ingest = time.Since(start)
	c.do(ctx, "OPTIMIZE TABLE accesses FINAL", nil) // merged parts, as a settled table is
	row.IngestAll = time.Since(start)
	if s, err := c.do(ctx, "SELECT sum(bytes_on_disk) FROM system.parts WHERE table = 'accesses' AND active", nil); err == nil {
		row.Bytes, _ = strconv.ParseInt(s, 10, 64)
	} else {
		row.Bytes = DirSize(filepath.Join(dir, "data"))
	}
	var quoted []string
	for _, a := range queryAuthors(o, nAuthors) {
		quoted = append(quoted, "'"+a+"'")
	}
	whoQ := fmt.Sprintf("SELECT account, count(), min(t), max(t) FROM accesses WHERE has(subjects, '%s') GROUP BY account", querySubject(o))
	var qerr error
	for _, q := range []struct {
		rc  *Reach
		win ledger.Window
	}{{&row.Reach, window(o)}, {&row.Cut, cutWindow(o)}} {
		reachQ := reachSQL(strings.Join(quoted, ","), q.win)
		c.do(ctx, reachQ, nil) // warm, as the ledger's reader is
		q.rc.Wall = median(func() {
			out, err := c.do(ctx, reachQ, nil)
			if err != nil {
				qerr = err
				return
			}
			f := strings.Fields(out)
			if len(f) == 2 {
				q.rc.Value, _ = strconv.Atoi(f[0])
				q.rc.Impressions, _ = strconv.ParseUint(f[1], 10, 64)
			}
		})
	}
	c.do(ctx, whoQ, nil)
	row.WhoTook = median(func() {
		out, err := c.do(ctx, whoQ, nil)
		if err != nil {
			qerr = err
			return
		}
		row.WhoTookRows = len(strings.Split(strings.TrimSpace(out), "\n"))
	})
	if qerr != nil {
		row.Skipped = qerr.Error()
	}
	return row
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

// chClient runs the comparison's queries on the bench's server.
type chClient struct{ s *chserver.Server }

func (c chClient) do(ctx context.Context, query string, body io.Reader) (string, error) {
	return c.s.Query(ctx, query, body)
}
