package dashboard_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/dashboard"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/lab/chserver"
	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/ledger/clickhouse"
	"github.com/warden-gw/warden/internal/ration"
)

// The identities page on a fleet's ledger (a real ClickHouse) shows the
// same table as on a directory holding the same Accesses; with
// ClickHouse unreachable it says so and shows no table.
func TestIdentitiesOnFleet(t *testing.T) {
	s := chserver.ForTest(t)
	t.Setenv("WARDEN_TEST_CH_PASSWORD", s.Password)
	chCfg := clickhouse.Config{Addrs: []string{s.Addr()}, Database: "dashfleet", User: "warden", PasswordEnv: "WARDEN_TEST_CH_PASSWORD",
		BatchSize: 1000, BatchInterval: 50 * time.Millisecond, Spool: clickhouse.SpoolConfig{Dir: t.TempDir()}}
	ch, err := clickhouse.NewClient(chCfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	sink, err := clickhouse.NewSink(chCfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	l, err := ledger.Open(ledger.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	watch := dashboard.NewWatch(0)
	now := time.Now()
	n := 0
	rec := func(ago time.Duration, account, ip, subject string, masked inspect.ClassSet) {
		n++
		acc := &inspect.Access{RequestID: fmt.Sprint("r", n), Time: now.Add(-ago), Route: "GET /v1/users/{id}",
			Classes: []string{"contact", "profile"}, Status: 200,
			Records: []inspect.Record{{ID: subject, Classes: 0b11, Masked: masked}}}
		acc.Identity.Account, acc.Identity.IP = account, netip.MustParseAddr(ip)
		l.Record(acc)
		sink.Record(acc)
		watch.Record(acc)
	}
	// Three accounts (alice's contact partly masked, some of it outside
	// the contact budget's hour) on two addresses.
	for i := range 30 {
		masked := inspect.ClassSet(0)
		if i%4 == 3 {
			masked = 0b01
		}
		ago := time.Minute
		if i%5 == 4 {
			ago = 3 * time.Hour
		}
		rec(ago, "alice", "10.0.0.1", fmt.Sprint("s", i), masked)
	}
	for i := range 12 {
		rec(time.Minute, "bob", "10.0.0.2", fmt.Sprint("s", 2*i), 0)
	}
	rec(time.Minute, "carol", "10.0.0.2", "s1", 0)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{}
	cfg.Ration.Budgets = []ration.BudgetConfig{{Name: "contacts", Facet: "account", Class: "contact", Limit: 10, Window: time.Hour},
		{Name: "profiles", Facet: "account", Class: "profile", Limit: 40, Window: 24 * time.Hour}}
	identities := func(ledgerDir string, fleet dashboard.FleetLedger) string {
		t.Helper()
		e := newEnvWith(t, ledgerDir, false, func(o *dashboard.Options) {
			o.Watch, o.Config, o.Now = watch, func() *config.Config { return cfg }, func() time.Time { return now }
			if fleet != nil {
				o.Fleet = &dashboard.Fleet{Ledger: fleet}
			}
		})
		c := e.client(t)
		e.signIn(t, c)
		r, err := c.Get(e.srv.URL + "/identities")
		if err != nil {
			t.Fatal(err)
		}
		page := body(t, r)
		return page[strings.Index(page, "<main"):strings.Index(page, "</main>")]
	}
	local, fleet := identities(dir, nil), identities("", ch)
	if local != fleet {
		t.Fatalf("the identities page on the directory:\n%s\non ClickHouse:\n%s", local, fleet)
	}
	for _, want := range []string{`value=alice">alice</a></td><td>30</td>`, `value=bob">bob</a></td><td>12</td>`, `value=10.0.0.2">10.0.0.2</a></td><td>13</td>`} {
		if !strings.Contains(fleet, want) {
			t.Errorf("the identities page on ClickHouse lacks %s:\n%s", want, fleet)
		}
	}
	if m := regexp.MustCompile(`alice</a></td><td>30</td>\s*<td>(\d+) / 10 `).FindStringSubmatch(fleet); m == nil || m[1] != "18" {
		t.Errorf("alice's contact budget on ClickHouse: %v, want 18 (24 within the hour, 6 masked)", m)
	}

	// ClickHouse gone (a closed port): the page says the ledger failed,
	// with no table of zeros.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := chCfg
	gone.Addrs = []string{ln.Addr().String()}
	ln.Close()
	down, err := clickhouse.NewClient(gone)
	if err != nil {
		t.Fatal(err)
	}
	page := identities("", down)
	if !strings.Contains(page, "ledger: ") || strings.Contains(page, "<table") {
		t.Errorf("the identities page with ClickHouse down:\n%s", page)
	}
}
