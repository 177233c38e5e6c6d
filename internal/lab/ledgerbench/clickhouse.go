package ledgerbench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ClickHouseServer is where Debian's clickhouse-server package puts it.
var ClickHouseServer = []string{"/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server", "/usr/bin/clickhouse"}

func findClickHouse() string {
	if p, err := exec.LookPath("clickhouse-server"); err == nil {
		return p
	}
	for _, p := range ClickHouseServer {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

const chConfig = `<yandex>
  <logger><level>warning</level><console>1</console></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>%d</http_port>
  <tcp_port>%d</tcp_port>
  <path>%s/</path>
  <tmp_path>%s/tmp/</tmp_path>
  <users_config>users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>1073741824</mark_cache_size>
</yandex>
`

const chUsers = `<yandex>
  <profiles><default><max_memory_usage>8000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
`

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type chClient struct{ url string }

func (c chClient) do(ctx context.Context, query string, body io.Reader) (string, error) {
	u := c.url + "/?query=" + urlEscape(query)
	if body == nil {
		body = strings.NewReader("")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, body)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("clickhouse: %s: %s", firstLine(query), strings.TrimSpace(string(b)))
	}
	return strings.TrimSpace(string(b)), nil
}

func urlEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

// runClickHouse loads the same Accesses into a ClickHouse server started
// for the run (its own directory and ports) and times the same queries.
func runClickHouse(ctx context.Context, o Options, log io.Writer) Row {
	row := Row{Store: "clickhouse"}
	bin := findClickHouse()
	if bin == "" {
		row.Skipped = "clickhouse-server not found (Debian: apt-get install clickhouse-server clickhouse-client)"
		return row
	}
	dir, err := os.MkdirTemp("", "warden-bench-clickhouse-")
	if err != nil {
		row.Skipped = err.Error()
		return row
	}
	defer os.RemoveAll(dir)
	hp, tp := freePort(), freePort()
	os.WriteFile(filepath.Join(dir, "config.xml"), fmt.Appendf(nil, chConfig, hp, tp, dir+"/data", dir+"/data"), 0o600)
	os.WriteFile(filepath.Join(dir, "users.xml"), []byte(chUsers), 0o600)
	args := []string{"--config-file=" + filepath.Join(dir, "config.xml")}
	if filepath.Base(bin) == "clickhouse" {
		args = append([]string{"server"}, args...)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	logf, _ := os.Create(filepath.Join(dir, "server.log"))
	cmd.Stdout, cmd.Stderr, cmd.Dir = logf, logf, dir
	if err := cmd.Start(); err != nil {
		row.Skipped = "start " + bin + ": " + err.Error()
		return row
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}()
	c := chClient{url: fmt.Sprintf("http://127.0.0.1:%d", hp)}
	var version string
	for i := 0; ; i++ {
		if version, err = c.do(ctx, "SELECT version()", nil); err == nil {
			break
		}
		if i > 300 {
			b, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			row.Skipped = fmt.Sprintf("%s did not answer: %v; log: %s", bin, err, lastLines(string(b), 5))
			return row
		}
		time.Sleep(100 * time.Millisecond)
	}
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
	win := window(o)
	var quoted []string
	for _, a := range queryAuthors(o, nAuthors) {
		quoted = append(quoted, "'"+a+"'")
	}
	reachQ := fmt.Sprintf("SELECT uniqExact(account), count() FROM accesses ARRAY JOIN authors AS a WHERE a IN (%s) AND t >= toDateTime('%s') AND t <= toDateTime('%s')",
		strings.Join(quoted, ","), win.From.Format("2006-01-02 15:04:05"), win.To.Format("2006-01-02 15:04:05"))
	whoQ := fmt.Sprintf("SELECT account, count(), min(t), max(t) FROM accesses WHERE has(subjects, '%s') GROUP BY account", querySubject(o))
	var qerr error
	c.do(ctx, reachQ, nil) // warm, as the ledger's reader is
	row.Reach = median(func() {
		out, err := c.do(ctx, reachQ, nil)
		if err != nil {
			qerr = err
			return
		}
		f := strings.Fields(out)
		if len(f) == 2 {
			row.ReachValue, _ = strconv.Atoi(f[0])
			row.Impressions, _ = strconv.ParseUint(f[1], 10, 64)
		}
	})
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

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, " | ")
}
