package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
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
	f := newFleetLedgers(t, "dashfleet")
	chCfg, ch, sink, dir, l, watch := f.cfg, f.ch, f.sink, f.dir, f.l, f.watch
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
		_, page := signedPage(t, path, ledgerDir, fleet, budgets, watch, func() *config.Config { return cfg }, now)
		return page
	}
	identities := func(ledgerDir string, fleet dashboard.FleetLedger) string {
		t.Helper()
		return get("/identities?class=all", ledgerDir, fleet)
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

// The identities page ranks by a class chosen on the page: where the top
// readers of profiles and the top takers of contact details differ, each
// class has its own order (a value never served the class unmasked left
// out), the same from a directory (the Watch's candidates) and from a
// fleet's ledger (ClickHouse); by default the class the budgets protect
// most, said on the page; a class nothing names is refused.
func TestIdentitiesByClass(t *testing.T) {
	f := newFleetLedgers(t, "dashclass")
	ch, sink, dir, l, watch := f.ch, f.sink, f.dir, f.l, f.watch
	now := time.Now()
	classes := []string{"contact", "profile"} // the route's, one slice as the route map's
	n := 0
	// take serves account profiles of subjects, contact details of the
	// first contacts of them (the others' masked), one look-up each.
	take := func(account, ip string, subjects, contacts int) {
		for i := range subjects {
			n++
			rec := inspect.Record{ID: fmt.Sprint(account, i), Classes: 0b11}
			if i >= contacts {
				rec.Masked = 0b01
			}
			acc := &inspect.Access{RequestID: fmt.Sprint("r", n), Time: now.Add(-time.Minute), Route: "GET /v1/users/{id}",
				Classes: classes, Status: 200, Records: []inspect.Record{rec}}
			acc.Identity.Account, acc.Identity.IP = account, netip.MustParseAddr(ip)
			l.Record(acc)
			sink.Record(acc)
			watch.Record(acc)
		}
	}
	take("reader", "10.0.0.1", 20, 0) // the most profiles, no contact detail
	take("both", "10.0.0.2", 12, 5)
	take("taker", "10.0.0.3", 8, 8) // the most contact details
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{}
	cfg.Inspect.Routes = []inspect.RouteConfig{{Route: "GET /v1/users/{id}", Classes: map[string][]string{"contact": {"email"}, "profile": {"bio"}}},
		{Route: "GET /v1/posts", Classes: map[string][]string{"post": {"text"}}}}
	cfg.Ration.Budgets = []ration.BudgetConfig{{Name: "contacts", Facet: "account", Class: "contact", Limit: 10, Window: time.Hour},
		{Name: "contacts-ip", Facet: "ip", Class: "contact", Limit: 50, Window: time.Hour},
		{Name: "profiles", Facet: "account", Class: "profile", Limit: 5, Window: 24 * time.Hour}}
	get := func(path, ledgerDir string, fleet dashboard.FleetLedger) (int, string) {
		t.Helper()
		return signedPage(t, path, ledgerDir, fleet, clickhouse.NewBudgets(ch, nil), watch, func() *config.Config { return cfg }, now)
	}
	row := regexp.MustCompile(`value=([a-z]+)">[a-z]+</a></td><td>(\d+)</td>`)
	for _, c := range []struct {
		query, ranked string
		accounts      []string
	}{
		{"?class=profile", "profile", []string{"reader 20", "both 12", "taker 8"}},
		{"?class=contact", "contact", []string{"taker 8", "both 5"}},
		{"?class=all", "all classes", []string{"reader 20", "both 12", "taker 8"}},
		{"?class=*", "all classes", []string{"reader 20", "both 12", "taker 8"}},
		{"", "contact", []string{"taker 8", "both 5"}}, // two budgets protect contact, one profile
		{"?class=post", "post", nil},                   // nobody served one
	} {
		code, local := get("/identities"+c.query, dir, nil)
		_, fleet := get("/identities"+c.query, "", ch)
		if i := strings.Index(local, " The gateway's candidate recorder"); i >= 0 {
			local = local[:i] + local[strings.Index(local[i:], "</p>")+i:] // the directory's note on its candidates
		}
		if code != 200 || local != fleet {
			t.Fatalf("%q: %d; on the directory:\n%s\non ClickHouse:\n%s", c.query, code, local, fleet)
		}
		if !strings.Contains(local, "Ranked by <b>"+c.ranked+"</b>") {
			t.Errorf("%q: the page does not say it ranks by %s:\n%s", c.query, c.ranked, local)
		}
		accounts := local[:strings.Index(local, "<h2>app</h2>")]
		var got []string
		for _, m := range row.FindAllStringSubmatch(accounts, -1) {
			got = append(got, m[1]+" "+m[2])
		}
		if !slices.Equal(got, c.accounts) {
			t.Errorf("%q: accounts %q, want %q", c.query, got, c.accounts)
		}
	}
	// A class the Watch never counted one by one: its candidates are by
	// records of any class, and the page says so (not on a fleet, whose
	// ledger ranks by the class itself).
	const anyNote = "for post its candidates are the identities served the most records of any class"
	if _, page := get("/identities?class=post", dir, nil); !strings.Contains(page, anyNote) {
		t.Errorf("the page does not say its post candidates are by any record:\n%s", page)
	}
	if _, page := get("/identities?class=post", "", ch); strings.Contains(page, anyNote) {
		t.Errorf("the fleet's page says its candidates are the Watch's:\n%s", page)
	}
	if _, page := get("/identities", dir, nil); !strings.Contains(page, "default: the class the budgets protect most (2 of 3 budgets, lowest limit 10)") {
		t.Errorf("the default class's reason is not on the page:\n%s", page)
	}
	// A class named all is that class (nobody was served one); every
	// record is still * (the select's value).
	cfg.Inspect.Routes[1].Classes["all"] = []string{"title"}
	if _, page := get("/identities?class=all", dir, nil); !strings.Contains(page, "Ranked by <b>all</b>") || !strings.Contains(page, `<option value="*">all (every record)</option>`) {
		t.Errorf("a class named all: the page does not rank by it:\n%s", page)
	}
	if _, page := get("/identities?class=*", dir, nil); !strings.Contains(page, "Ranked by <b>all classes</b>") {
		t.Errorf("?class=* with a class named all: not every record:\n%s", page)
	}
	if code, page := get("/identities?class=contacts", dir, nil); code != 400 || !strings.Contains(page, `no route or budget names class &#34;contacts&#34;`) || strings.Contains(page, "<table") {
		t.Errorf("an unknown class: %d\n%s", code, page)
	}
}

// fleetLedgers are where a fleet page's test writes the same Accesses:
// a real ClickHouse (its client, a sink) and a ledger directory with the
// Watch beside it.
type fleetLedgers struct {
	cfg   clickhouse.Config
	ch    *clickhouse.Client
	sink  *clickhouse.Sink
	dir   string
	l     *ledger.Ledger
	watch *dashboard.Watch
}

func newFleetLedgers(t *testing.T, database string) fleetLedgers {
	t.Helper()
	s := chserver.ForTest(t)
	t.Setenv("WARDEN_TEST_CH_PASSWORD", s.Password)
	f := fleetLedgers{cfg: clickhouse.Config{Addrs: []string{s.Addr()}, Database: database, User: "warden", PasswordEnv: "WARDEN_TEST_CH_PASSWORD",
		BatchSize: 1000, BatchInterval: 50 * time.Millisecond, Spool: clickhouse.SpoolConfig{Dir: t.TempDir()}}, dir: t.TempDir(), watch: dashboard.NewWatch(0)}
	var err error
	if f.ch, err = clickhouse.NewClient(f.cfg); err != nil {
		t.Fatal(err)
	}
	if err := f.ch.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.sink, err = clickhouse.NewSink(f.cfg, nil, nil); err != nil {
		t.Fatal(err)
	}
	if f.l, err = ledger.Open(ledger.Options{Dir: f.dir}); err != nil {
		t.Fatal(err)
	}
	return f
}

// signedPage is path on a dashboard reading ledgerDir, or fleet (with
// budgets) when not nil, at now, signed in: its status and its main
// element.
func signedPage(t *testing.T, path, ledgerDir string, fleet dashboard.FleetLedger, budgets dashboard.FleetBudgets, watch *dashboard.Watch,
	cfg func() *config.Config, now time.Time) (int, string) {
	t.Helper()
	e := newEnvWith(t, ledgerDir, false, func(o *dashboard.Options) {
		o.Watch, o.Config, o.Now = watch, cfg, func() time.Time { return now }
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
	return r.StatusCode, page[strings.Index(page, "<main"):strings.Index(page, "</main>")]
}
