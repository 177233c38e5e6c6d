package dashboard_test

import (
	"context"
	"encoding/json"
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
	"github.com/warden-gw/warden/internal/privacy"
	"github.com/warden-gw/warden/internal/ration"
)

// The identities page on a fleet's ledger (a real ClickHouse) shows the
// same table as on a directory holding the same Accesses; once a second
// gateway has written to the fleet's ledger it lists the identities only
// that gateway saw, with the fleet's counts; with ClickHouse unreachable
// it says so and shows no table. The reach page shows a researcher's
// budget as the fleet's ledger keeps it.
func TestFleetPages(t *testing.T) {
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
	budgets := clickhouse.NewBudgets(ch, nil)
	get := func(path, ledgerDir string, fleet dashboard.FleetLedger) string {
		t.Helper()
		e := newEnvWith(t, ledgerDir, false, func(o *dashboard.Options) {
			o.Watch, o.Config, o.Now = watch, func() *config.Config { return cfg }, func() time.Time { return now }
			if fleet != nil {
				o.Fleet = &dashboard.Fleet{Ledger: fleet, Budgets: budgets}
			}
		})
		c := e.client(t)
		e.signIn(t, c)
		r, err := c.Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		page := body(t, r)
		return page[strings.Index(page, "<main"):strings.Index(page, "</main>")]
	}
	identities := func(ledgerDir string, fleet dashboard.FleetLedger) string {
		t.Helper()
		return get("/identities", ledgerDir, fleet)
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

	// A second gateway writes to the fleet's ledger: dave, whom only it
	// served (this gateway's Watch and directory never saw him), on an
	// address of his own, and alice again, 5 subjects more.
	other, err := clickhouse.NewSink(chCfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 35 {
		n++
		acc := &inspect.Access{RequestID: fmt.Sprint("b", n), Time: now.Add(-2 * time.Minute), Route: "GET /v1/users/{id}",
			Classes: []string{"contact", "profile"}, Status: 200, Records: []inspect.Record{{ID: fmt.Sprint("d", i), Classes: 0b11}}}
		acc.Identity.Account, acc.Identity.IP = "dave", netip.MustParseAddr("10.0.0.9")
		if i >= 30 {
			acc.Records[0].ID = fmt.Sprint("new", i)
			acc.Identity.Account, acc.Identity.IP = "alice", netip.MustParseAddr("10.0.0.1")
		}
		other.Record(acc)
	}
	if err := other.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	local, fleet = identities(dir, nil), identities("", ch)
	if strings.Contains(local, "dave") {
		t.Fatalf("this gateway's directory knows dave:\n%s", local)
	}
	for _, want := range []string{`value=alice">alice</a></td><td>35</td>`, `value=dave">dave</a></td><td>30</td>`, `value=10.0.0.9">10.0.0.9</a></td><td>30</td>`,
		`value=bob">bob</a></td><td>12</td>`} {
		if !strings.Contains(fleet, want) {
			t.Errorf("the identities page on the fleet's ledger lacks %s:\n%s", want, fleet)
		}
	}
	// Ranked: alice, dave, bob, carol.
	if a, d, b := strings.Index(fleet, ">alice<"), strings.Index(fleet, ">dave<"), strings.Index(fleet, ">bob<"); a > d || d > b {
		t.Errorf("the fleet's accounts out of order (alice %d, dave %d, bob %d):\n%s", a, d, b, fleet)
	}
	if m := regexp.MustCompile(`dave</a></td><td>30</td>\s*<td>(\d+) / 10 `).FindStringSubmatch(fleet); m == nil || m[1] != "30" {
		t.Errorf("dave's contact budget on the fleet's ledger: %v, want 30", m)
	}

	// The reach page: rita's budget as the fleet keeps it (no directory
	// on this gateway), after one answer charged there.
	mech, err := privacy.ParseMechanism("0.5", "")
	if err != nil {
		t.Fatal(err)
	}
	_, acct, err := budgets.Answer(t.Context(), "rita", "q", mech.Charge(), func(privacy.Source) (json.RawMessage, error) { return json.RawMessage(`1`), nil })
	if err != nil {
		t.Fatal(err)
	}
	if acct.Spent == "0" {
		t.Fatalf("rita's answer charged nothing: %+v", acct)
	}
	page := get("/reach?researcher=rita", "", ch)
	if want := "Budget of rita: spent rho " + acct.Spent + " of " + acct.Limit + ", remaining <b>" + acct.Remaining + "</b>"; !strings.Contains(page, want) {
		t.Errorf("the reach page on the fleet's ledger lacks %q:\n%s", want, page)
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
	page = identities("", down)
	if !strings.Contains(page, "ledger: ") || strings.Contains(page, "<table") {
		t.Errorf("the identities page with ClickHouse down:\n%s", page)
	}
}
