package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/lab/chserver"
	"github.com/warden-gw/warden/internal/ledger/clickhouse"
	"github.com/warden-gw/warden/internal/store/redis/redistest"
)

// ClickHouse killed (SIGKILL, as a crash) under a gateway's load and
// started again (issue 24: "ClickHouse killed and restarted under load: no
// Access lost within the spool"): the gateway keeps answering, the
// Accesses of the outage wait in its spool, and once ClickHouse is back
// every Access the clients were answered is there exactly once, none
// dropped; the metrics said what happened.
func TestFleetLedgerClickHouseKilled(t *testing.T) {
	rs := redistest.Start(t)
	ch := chserver.ForTest(t)
	platformURL := startPlatform(t, 2000)
	pwFile := passwordFile(t, ch)
	cfg := fleetConfig(rs.Addr(), ch.Addr(), pwFile, filepath.Join(t.TempDir(), "spool"), 100000)
	cfgPath := filepath.Join(t.TempDir(), "fleet.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(binPath, "ledger", "init", "--config", cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("warden ledger init: %v\n%s", err, out)
	}
	g := startGateway(t, cfg, platformURL)
	metrics := func() string { return adminDo(t, g, "GET", "/metrics", "").body }

	// The load: 4 clients asking profiles until stopped, at most 8,000
	// requests in all.
	var answered, other atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := clientFrom(fmt.Sprintf("127.0.6.%d", w+1))
			tok := token(t, strconv.Itoa(500+w))
			for i := range 2000 {
				select {
				case <-stop:
					return
				default:
				}
				a := do(t, c, "GET", fmt.Sprintf("%s/v1/users/%d", g.url, 1+(w*2000+i)%2000), map[string]string{"Authorization": "Bearer " + tok})
				answered.Add(1)
				if a.status != 200 {
					other.Add(1)
				}
			}
		}(w)
	}
	// waitFor polls the gateway's metrics until ok (at most 30 s).
	waitFor := func(what string, ok func(m string) bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			m := metrics()
			if ok(m) {
				return
			}
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("%s: not within 30 s (%d answered)\n%s", what, answered.Load(), metricsStarting(m, "warden_ledger_"))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("Accesses sent before the kill", func(m string) bool { return metricValue(m, "warden_ledger_clickhouse_sent_total") >= 100 })
	ch.Kill()
	waitFor("inserts failing and batches spooled while ClickHouse is down", func(m string) bool {
		return metricValue(m, "warden_ledger_clickhouse_errors_total") >= 1 && metricValue(m, "warden_ledger_clickhouse_spool_batches") >= 2
	})
	if err := ch.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	atRestart := answered.Load()
	waitFor("requests answered after the restart", func(string) bool { return answered.Load() >= atRestart+200 })
	close(stop)
	wg.Wait()
	total := int(answered.Load())
	if n := other.Load(); n != 0 {
		t.Errorf("%d of %d requests were not answered 200: the ledger's outage reached the clients", n, total)
	}
	waitFor("every Access sent and the spool empty", func(m string) bool {
		return metricValue(m, "warden_ledger_clickhouse_sent_total") >= total && metricValue(m, "warden_ledger_clickhouse_spool_batches") == 0
	})
	m := metrics()
	if sent, dropped := metricValue(m, "warden_ledger_clickhouse_sent_total"), metricValue(m, "warden_ledger_clickhouse_dropped_total"); sent != total || dropped != 0 {
		t.Errorf("sent %d, dropped %d; the clients were answered %d", sent, dropped, total)
	}
	cl, err := clickhouse.NewClient(clickhouse.Config{Addrs: []string{ch.Addr()}, Database: "fleet", User: "warden", PasswordFile: pwFile})
	if err != nil {
		t.Fatal(err)
	}
	out, err := cl.Do(context.Background(), "SELECT count(), uniqExact(req) FROM accesses FORMAT TabSeparated", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(string(out)), fmt.Sprintf("%d\t%d", total, total); got != want {
		t.Errorf("ClickHouse holds (count, distinct request ids) %q; the clients were answered %d", got, total)
	}
	t.Logf("%d requests answered, %d before the restart; ClickHouse holds each once", total, atRestart)
}

// A gateway whose ClickHouse answers but will not take the ledger (a
// wrong password, or a database warden ledger init never made) does not
// start: before, it served and sent every batch to its spool until the
// spool was full, saying so only in a warning per failure burst.
func TestServeRefusesClickHouseItCannotWrite(t *testing.T) {
	rs := redistest.Start(t)
	ch := chserver.ForTest(t)
	dir := t.TempDir()
	wrong := filepath.Join(dir, "wrong-password")
	right := filepath.Join(dir, "password")
	os.WriteFile(wrong, []byte("not-the-password\n"), 0o600)
	os.WriteFile(right, []byte(ch.Password+"\n"), 0o600)
	for _, c := range []struct{ name, cfg, want string }{
		{"wrong password", fleetConfig(rs.Addr(), ch.Addr(), wrong, filepath.Join(dir, "spool1"), 10), "Wrong password"},
		{"no ledger init", fleetConfig(rs.Addr(), ch.Addr(), right, filepath.Join(dir, "spool2"), 10), "Database fleet doesn't exist"},
	} {
		path := filepath.Join(dir, "warden.yaml")
		if err := os.WriteFile(path, []byte(c.cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, binPath, "serve", "--config", path, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:1")
		cmd.Env = append(os.Environ(), "WARDEN_ADMIN_TOKEN="+adminToken, "LAB_JWT_SECRET=lab-secret")
		out, err := cmd.CombinedOutput()
		cancel()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), c.want) {
			t.Errorf("%s: %v, want exit 1 naming %q:\n%s", c.name, err, c.want, out)
		}
	}
}
