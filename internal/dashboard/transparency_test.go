package dashboard_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/dashboard"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/ledger/clickhouse"
	"github.com/warden-gw/warden/internal/ration"
	"github.com/warden-gw/warden/internal/refusal"
)

// The transparency page's "harvesting stopped" counts, from the ledger,
// the distinct identities refused on the day by a ban or a rationing rule
// that blocks, each as the refusal named it: the same on a directory and
// on a fleet's ClickHouse, with no ban left in the ban store (the
// detector's short bans expire long before the next day's page is first
// asked) and whatever the other refusals (a rate limit, the edge, a
// credential, the store) and the Accesses of the days around it.
func TestTransparencyStoppedFromLedger(t *testing.T) {
	f := newFleetLedgers(t, "dashstopped")
	f.l.Close() // a ledger of its own below: its clock follows the Accesses
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	day := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := day.Add(-time.Hour)
	l, err := ledger.Open(ledger.Options{Dir: f.dir, Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	rec := func(at time.Time, account, ip string, status int, rule, facet string) {
		n++
		acc := &inspect.Access{RequestID: fmt.Sprint("r", n), Time: at, Route: "GET /v1/users/{id}", Classes: []string{"contact"}, Status: status, Rule: rule, Facet: facet}
		if rule == "" {
			acc.Records = []inspect.Record{{ID: fmt.Sprint(n), Classes: 1}}
		}
		acc.Identity.Account = account
		if ip != "" {
			acc.Identity.IP = netip.MustParseAddr(ip)
		}
		mu.Lock()
		clock = at
		mu.Unlock()
		l.Record(acc)
		f.sink.Record(acc)
	}
	want := map[string]bool{}
	stop := func(at time.Time, account, ip, rule, facet string) {
		status := 429
		if rule == refusal.RuleBan {
			status = 403
		}
		rec(at, account, ip, status, rule, facet)
		if !at.Before(day) && at.Before(day.AddDate(0, 0, 1)) {
			want[facet+"="+map[string]string{"account": account, "ip": ip}[facet]] = true
		}
	}
	// The day before and the day after: not counted.
	stop(day.Add(-time.Minute), "900", "10.9.0.1", refusal.RuleBan, "account")
	for h := range 24 {
		at := day.Add(time.Duration(h)*time.Hour + 17*time.Minute)
		rec(at, fmt.Sprint(100+h), "10.0.0.1", 200, "", "")
		// Harvesters banned by the detector (on their account, or their
		// address), refused again and again, on other addresses too.
		for k := range 3 {
			stop(at.Add(time.Duration(k)*time.Second), fmt.Sprint(h%5), fmt.Sprintf("10.1.%d.%d", h, k), refusal.RuleBan, "account")
		}
		stop(at.Add(5*time.Second), "", fmt.Sprintf("10.2.0.%d", h%7), refusal.RuleBan, "ip")
		// A blocking budget's and the unreferenced rule's refusals.
		stop(at.Add(6*time.Second), fmt.Sprint(200+h%4), "10.3.0.1", "contacts", "account")
		stop(at.Add(7*time.Second), fmt.Sprint(300+h), "10.3.0.2", "unreferenced", "account")
		// Not harvesting stopped: a rate limit, the edge, a credential,
		// the store, a ban on a facet the identity lacks.
		rec(at.Add(8*time.Second), "400", "10.4.0.1", 429, "per-ip", "ip")
		rec(at.Add(9*time.Second), "", "10.4.0.2", 400, refusal.RuleRequest, "ambiguous_path")
		rec(at.Add(10*time.Second), "401", "10.4.0.3", 401, refusal.RuleIdentity, "account")
		rec(at.Add(11*time.Second), "402", "10.4.0.4", 503, refusal.RuleStore, refusal.StoreAdmit)
		rec(at.Add(12*time.Second), "", "10.4.0.5", 403, refusal.RuleBan, "account")
	}
	stop(day.AddDate(0, 0, 1), "901", "10.9.0.2", refusal.RuleBan, "account")
	mu.Lock()
	clock = now
	mu.Unlock()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.sink.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(want) != 5+7+4+24 {
		t.Fatalf("%d identities refused, want 40", len(want))
	}
	cfg := &config.Config{}
	cfg.Ration.Budgets = []ration.BudgetConfig{{Name: "contacts", Facet: "account", Class: "contact", Limit: 10, Window: time.Hour, Action: ration.Block}}
	cfg.Ration.Unreferenced = &ration.Unreferenced{Name: "unreferenced", Facet: "account", Action: ration.Block}
	cfg.Limits = []config.Limit{{Name: "per-ip", Facet: "ip", Rate: "10/s"}}
	// A huge epsilon, with a budget to pay for it: noise that is 0 but
	// with a chance below e^-1000, so that the exact count shows.
	cfg.Ledger.Privacy.Budget = "1"
	cfg.Ledger.Privacy.Researchers = map[string]string{dashboard.TransparencyResearcher: "1000000"}
	stopped := regexp.MustCompile(`<p id="stopped"><b>(-?\d+)</b> ` + dashboard.StoppedName + ` \(95% interval \[(-?\d+), (-?\d+)\]\)`)
	var got [2]string
	for i, fleet := range []bool{false, true} {
		e := newEnvWith(t, f.dir, false, func(o *dashboard.Options) {
			o.Config, o.Now = func() *config.Config { return cfg }, func() time.Time { return now }
			o.TransparencyEpsilon = big.NewRat(1000, 1)
			if fleet {
				o.LedgerDir = ""
				o.Fleet = &dashboard.Fleet{Ledger: f.ch, Budgets: clickhouse.NewBudgets(f.ch, cfg.Ledger.Privacy.Limit)}
			}
		})
		r, err := e.client(t).Get(e.srv.URL + "/transparency")
		if err != nil {
			t.Fatal(err)
		}
		page := body(t, r)
		m := stopped.FindStringSubmatch(page)
		if r.StatusCode != http.StatusOK || m == nil {
			t.Fatalf("fleet %v: %d, no stopped figure:\n%s", fleet, r.StatusCode, page)
		}
		if m[1] != fmt.Sprint(len(want)) {
			t.Errorf("fleet %v: %s identities refused for harvesting, want %d", fleet, m[1], len(want))
		}
		if !strings.Contains(page, `id="stopped-counts"`) {
			t.Errorf("fleet %v: the page does not say what it counts", fleet)
		}
		got[i] = m[0]
	}
	if got[0] != got[1] {
		t.Errorf("the directory's figure %q, the fleet's %q", got[0], got[1])
	}
}

// The transparency page's budget runs out (its daily charge, rho 1/32 at
// the default epsilon, spends the default budget of 1 in 32 days) and the
// public page then stops publishing: signed in, the page says how many
// more days of figures the remaining budget pays for, and the gateway
// warns once a day when fewer than 7 remain.
func TestTransparencyDaysLeft(t *testing.T) {
	dir := t.TempDir()
	l, err := ledger.Open(ledger.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	cfg := &config.Config{}
	cfg.Ledger.Privacy.Researchers = map[string]string{dashboard.TransparencyResearcher: "7/32"} // 7 days
	var mu sync.Mutex
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	logs := &lockedBuffer{}
	e := newEnvWith(t, dir, false, func(o *dashboard.Options) {
		o.Config, o.Now = func() *config.Config { return cfg }, clock
		o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	const warning = "the transparency page's privacy budget is nearly spent"
	// run is one start of the dashboard's loop: its first check is at once.
	run := func() {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { e.dash.Run(ctx); close(done) }()
		time.Sleep(200 * time.Millisecond)
		cancel()
		<-done
	}
	run()
	if strings.Contains(logs.String(), warning) {
		t.Fatalf("warned with 7 days left:\n%s", logs)
	}
	page := func(signed bool) string {
		t.Helper()
		c := e.client(t)
		if signed {
			e.signIn(t, c)
		}
		r, err := c.Get(e.srv.URL + "/transparency")
		if err != nil {
			t.Fatal(err)
		}
		return body(t, r)
	}
	// The day's page is charged: 6 days left.
	if p := page(false); strings.Contains(p, `id="days-left"`) || !strings.Contains(p, `id="stopped"`) {
		t.Fatalf("the public page:\n%s", p)
	}
	if p := page(true); !strings.Contains(p, `The remaining budget pays for <b>6</b> more days of figures`) {
		t.Fatalf("signed in, the page does not say 6 days are left:\n%s", p)
	}
	// A new day (the loop's check): one warning, and one only that day.
	mu.Lock()
	now = now.Add(24 * time.Hour)
	mu.Unlock()
	run()
	run()
	if n := strings.Count(logs.String(), warning); n != 1 || !strings.Contains(logs.String(), "days_left=6") {
		t.Fatalf("%d warnings that day, want 1 with days_left=6:\n%s", n, logs)
	}
	mu.Lock()
	now = now.Add(24 * time.Hour)
	mu.Unlock()
	run()
	if n := strings.Count(logs.String(), warning); n != 2 {
		t.Fatalf("%d warnings over two days, want 2:\n%s", n, logs)
	}
}
