package clickhouse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/lab/chserver"
	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/privacy"
	"github.com/warden-gw/warden/internal/reach"
	"github.com/warden-gw/warden/internal/refusal"
)

// One server for the package's tests (it takes seconds to start); each
// test has a database of its own.
var (
	srvOnce sync.Once
	srv     *chserver.Server
	srvErr  error
	srvDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if srv != nil {
		srv.Stop()
		os.RemoveAll(srvDir)
	}
	os.Exit(code)
}

func server(t testing.TB) *chserver.Server {
	t.Helper()
	srvOnce.Do(func() {
		srvDir, srvErr = os.MkdirTemp("", "warden-ch-test-")
		if srvErr == nil {
			srv, srvErr = chserver.Start(context.Background(), srvDir)
		}
	})
	if srvErr != nil {
		t.Fatalf("clickhouse: %v", srvErr)
	}
	return srv
}

// config is a sink's config on the test server, database db, made anew:
// the server lives as long as the test process, so under -count=N (or a
// benchmark's rounds) the database of the run before would still hold its
// Accesses and charges.
func config(t testing.TB, s *chserver.Server, db string) Config {
	cfg := Config{Addrs: []string{s.Addr()}, Database: db, User: "warden", PasswordEnv: "WARDEN_TEST_CH_PASSWORD",
		BatchSize: 1000, BatchInterval: 50 * time.Millisecond, Spool: SpoolConfig{Dir: t.TempDir()}}
	os.Setenv("WARDEN_TEST_CH_PASSWORD", s.Password)
	cfg.SetDefaults()
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.do(context.Background(), "DROP DATABASE IF EXISTS "+db, nil, false, nil, nil); err != nil {
		t.Fatalf("drop database %s: %v", db, err)
	}
	if err := c.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	return cfg
}

var t0 = time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)

// traffic is n Accesses over three hours: profiles (contact served or
// masked), feeds (authors) and follower lists, from 40 accounts on 10
// addresses, some refused.
func traffic(n int) []*inspect.Access {
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]*inspect.Access, 0, n)
	for i := range n {
		a := &inspect.Access{RequestID: fmt.Sprintf("%024x", i+1), Time: t0.Add(time.Duration(i) * 3 * time.Hour / time.Duration(n)).Add(time.Duration(r.IntN(1000)) * time.Microsecond),
			Status: 200}
		acct := r.IntN(40)
		if acct > 0 {
			a.Identity.Account = fmt.Sprint(acct)
		}
		a.Identity.IP = netip.AddrFrom4([4]byte{10, 0, byte(acct % 10), 1})
		a.Identity.Net = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, byte(acct % 10), 0}), 24)
		switch r.IntN(4) {
		case 0, 1:
			a.Route, a.Classes = "GET /v1/users/{id}", []string{"contact", "profile"}
			rec := inspect.Record{ID: fmt.Sprint(r.IntN(300)), Classes: 3}
			if r.IntN(3) == 0 {
				rec.Masked = 1
				a.MaskRules = []string{"contact-per-account"}
			}
			a.Records, a.Lookup = []inspect.Record{rec}, rec.ID
		case 2:
			a.Route, a.Classes = "GET /v1/feed", []string{"post"}
			for range 1 + r.IntN(5) {
				au := fmt.Sprint(r.IntN(50))
				a.Records = append(a.Records, inspect.Record{ID: "p" + au, Classes: 1})
				a.Authors = append(a.Authors, au)
			}
		default:
			a.Route, a.Classes, a.List = "GET /v1/users/{id}/followers", []string{"contact"}, fmt.Sprint(r.IntN(20))
			for range 3 {
				a.Records = append(a.Records, inspect.Record{ID: fmt.Sprint(r.IntN(300)), Classes: 1})
			}
			a.Links = []string{"x"}
			if r.IntN(10) == 0 {
				a.Status, a.Rule, a.Facet, a.Records = 429, "contact-per-account", "account", nil
				switch len(out) % 8 { // refused where no limit saw it (0-3): Requests leaves it out
				case 0:
					a.Status, a.Rule, a.Facet = 400, refusal.RuleRequest, "ambiguous_path"
				case 1:
					a.Status, a.Rule, a.Facet = 401, refusal.RuleIdentity, "account"
				case 2:
					a.Status, a.Rule, a.Facet = 403, refusal.RuleBan, "account"
				case 3:
					a.Status, a.Rule, a.Facet = 503, refusal.RuleStore, refusal.StoreAdmit
				case 4: // after the limits: seen, as is a store refusal of an older ledger, without the stage
					a.Status, a.Rule, a.Facet = 503, refusal.RuleStore, refusal.StoreRation
				case 5:
					a.Status, a.Rule, a.Facet = 503, refusal.RuleStore, ""
				}
			}
		}
		out = append(out, a)
	}
	return out
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// cut is a window inside traffic's three hours that cuts an hour at both
// ends, neither on the minute.
var cut = ledger.Window{From: t0.Add(50 * time.Minute), To: t0.Add(130*time.Minute + 7*time.Second)}

// writeBoth writes acc to a new local ledger, its clock following the
// Accesses so that hours are sealed as they pass, and to ClickHouse (cfg)
// through the sink, closes both and checks the sink's spool is empty: the
// same traffic, to be asked of both. It returns the ledger's directory and
// a client of cfg.
func writeBoth(t *testing.T, cfg Config, acc []*inspect.Access) (string, *Client) {
	t.Helper()
	dir := t.TempDir()
	var mu sync.Mutex
	now := t0
	l, err := ledger.Open(ledger.Options{Dir: dir, Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	if err != nil {
		t.Fatal(err)
	}
	sink, err := NewSink(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range acc {
		mu.Lock()
		now = a.Time
		mu.Unlock()
		l.Record(a)
		sink.Record(a)
	}
	mu.Lock()
	now = t0.Add(5 * time.Hour)
	mu.Unlock()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if sink.spool.len() != 0 {
		t.Fatalf("%d batches left in the spool", sink.spool.len())
	}
	ch, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return dir, ch
}

// TestSameAnswers writes the same traffic to the local ledger and to
// ClickHouse through the sink, then asks both Sources the same questions:
// the answers must be equal.
func TestSameAnswers(t *testing.T) {
	s := server(t)
	acc := traffic(6000)
	// A request that panicked after its Access was recorded: a second
	// Access of its id, the 500 sent, the newest, which both Finds give
	// and no Requests counts.
	redo := *acc[10]
	redo.Time, redo.Status, redo.Rule, redo.Facet = acc[len(acc)-1].Time.Add(time.Millisecond), 500, refusal.RuleInternal, refusal.InternalAnswering
	redo.Records, redo.Authors, redo.Links, redo.MaskRules = nil, nil, nil, nil
	acc = append(acc, &redo)
	dir, ch := writeBoth(t, config(t, s, "conformance"), acc)
	local := ledger.Dir(dir)
	ctx := context.Background()
	all := ledger.Window{}
	for _, src := range []ledger.Source{local, ch} {
		if src.String() == "" {
			t.Fatal("a source with no name")
		}
	}
	// Requests counts every Access but those refused where no limit saw
	// them (at the edge, for their credentials, by a ban), on both (then
	// compared below, per route and identity).
	unseen, stores := map[string]int{}, map[string]int{}
	for _, a := range acc {
		if a.Rule == refusal.RuleStore {
			stores[a.Facet]++
		}
		if !ledger.LimitsSaw(a.Rule, a.Facet) {
			unseen[a.Rule]++
		}
	}
	skipped := unseen[refusal.RuleRequest] + unseen[refusal.RuleIdentity] + unseen[refusal.RuleBan] + unseen[refusal.RuleStore] + unseen[refusal.RuleInternal]
	if len(stores) != 3 || stores[refusal.StoreAdmit] != unseen[refusal.RuleStore] {
		t.Fatalf("store refusals by stage %v, of them unseen %d: want each stage, admit's unseen", stores, unseen[refusal.RuleStore])
	}
	for _, src := range []ledger.Source{local, ch} {
		perRoute, err := src.Requests(ctx, all, nil)
		n := 0
		for _, c := range perRoute {
			n += c
		}
		if err != nil || len(unseen) != 5 || n != len(acc)-skipped {
			t.Fatalf("%s: %d requests (%v), want %d: %d Accesses, refused where no limit saw them %v", src, n, err, len(acc)-skipped, len(acc), unseen)
		}
	}
	type query struct {
		name string
		ask  func(ledger.Source) (any, error)
	}
	var qs []query
	// Past DateTime's last second (2106-02-07): ClickHouse's toDateTime
	// wraps a larger number, and a --to of 2150 asked for nothing.
	beyond := ledger.Window{To: time.Date(2150, 1, 1, 0, 0, 0, 0, time.UTC)}
	after := ledger.Window{From: time.Date(2150, 1, 1, 0, 0, 0, 0, time.UTC)}
	for _, w := range []ledger.Window{all, cut, beyond, after} {
		for _, subj := range []string{"7", "150", "299", "p3", "none"} {
			for _, class := range []string{"", "contact"} {
				for _, by := range []identify.Facet{identify.FacetAccount, identify.FacetIP} {
					qs = append(qs, query{fmt.Sprintf("who-took %s %s %v %v", subj, class, by, w), func(s ledger.Source) (any, error) {
						return s.WhoTook(ctx, w, subj, class, by)
					}})
				}
			}
		}
		for _, v := range []string{"3", "17", "0", "nobody"} {
			qs = append(qs, query{"took-by account " + v, func(s ledger.Source) (any, error) { return s.TookBy(ctx, w, identify.FacetAccount, v) }})
			qs = append(qs, query{"distinct account " + v, func(s ledger.Source) (any, error) {
				return s.Distinct(ctx, w, identify.FacetAccount, v, "contact")
			}})
		}
		qs = append(qs, query{"took-by ip", func(s ledger.Source) (any, error) { return s.TookBy(ctx, w, identify.FacetIP, "10.0.3.1") }})
		// A budget identified: own: the address's count of one account.
		for _, also := range [][]ledger.FacetValue{nil, {{By: identify.FacetAccount, Value: "3"}}, {{By: identify.FacetAccount, Value: "nobody"}}} {
			qs = append(qs, query{fmt.Sprintf("distinct ip with %v", also), func(s ledger.Source) (any, error) {
				return s.Distinct(ctx, w, identify.FacetIP, "10.0.3.1", "", also...)
			}})
		}
		for _, want := range [][]ledger.FacetValue{
			nil,
			{{By: identify.FacetAccount, Value: "3"}},
			{{By: identify.FacetIP, Value: "10.0.3.1"}},
			{{By: identify.FacetIP, Value: "10.0.3.1"}, {By: identify.FacetAccount, Value: "3"}},
			{{By: identify.FacetAccount, Value: "nobody"}},
		} {
			qs = append(qs, query{fmt.Sprintf("requests %v", want), func(s ledger.Source) (any, error) { return s.Requests(ctx, w, want) }})
		}
		for _, rq := range []ledger.ReachQuery{
			{Authors: []string{"1", "2", "3"}},
			{Authors: []string{"1", "2", "3", "4", "5", "6"}, By: identify.FacetIP},
			{Authors: []string{"1", "2"}, Overlap: []string{"3", "4", "5"}},
			{Authors: []string{"1", "2", "9", "11"}, After: t0.Add(100 * time.Minute)},
			{Authors: []string{"1", "2", "9"}, Overlap: []string{"2", "30"}, After: t0.Add(70 * time.Minute)},
			{Authors: []string{"nobody"}},
		} {
			rq.Window = w
			if rq.By == 0 {
				rq.By = identify.FacetAccount
			}
			qs = append(qs, query{fmt.Sprintf("reach %+v", rq), func(s ledger.Source) (any, error) { return s.Reach(ctx, rq) }})
		}
	}
	for _, q := range qs {
		a, err := q.ask(local)
		if err != nil {
			t.Fatalf("%s: local: %v", q.name, err)
		}
		b, err := q.ask(ch)
		if err != nil {
			t.Fatalf("%s: clickhouse: %v", q.name, err)
		}
		if ja, jb := mustJSON(t, a), mustJSON(t, b); ja != jb {
			t.Errorf("%s:\nlocal      %s\nclickhouse %s", q.name, ja, jb)
		}
	}
	// Something was asked that has answers (not only empty ones).
	if r, _ := ch.Reach(ctx, ledger.ReachQuery{Authors: []string{"1", "2", "3"}, By: identify.FacetAccount}); len(r.Cells) == 0 {
		t.Fatal("reach found nobody")
	}
	if r, _ := ch.Requests(ctx, all, []ledger.FacetValue{{By: identify.FacetIP, Value: "10.0.3.1"}, {By: identify.FacetAccount, Value: "3"}}); len(r) == 0 {
		t.Fatal("requests found none")
	}
	// explain: the same Access, ids and names (hashes differ by key).
	for _, id := range []string{acc[10].RequestID, acc[4321].RequestID} {
		fa, err := local.Find(ctx, all, id)
		if err != nil || fa == nil {
			t.Fatalf("local find %s: %v %v", id, fa, err)
		}
		fb, err := ch.Find(ctx, all, id)
		if err != nil || fb == nil {
			t.Fatalf("clickhouse find %s: %v %v", id, fb, err)
		}
		if id == redo.RequestID && (fa.Entry.Status != 500 || fb.Entry.Status != 500) {
			t.Errorf("find %s: status %d local, %d clickhouse; want the newest Access's 500", id, fa.Entry.Status, fb.Entry.Status)
		}
		ea, eb := *fa.Entry, *fb.Entry
		ea.Page, ea.Lookup, ea.Links, eb.Page, eb.Lookup, eb.Links = "", "", nil, "", "", nil
		if ja, jb := mustJSON(t, ea), mustJSON(t, eb); ja != jb {
			t.Errorf("find %s:\nlocal      %s\nclickhouse %s", id, ja, jb)
		}
	}
	if f, err := ch.Find(ctx, all, "ffff"); err != nil || f != nil {
		t.Fatalf("find of a missing id: %v %v", f, err)
	}

	// DP reach: the local ledger with its budget in its directory (holding
	// ClickHouse's key) and ClickHouse with its budget in ClickHouse give
	// the same noisy answers, charges and repeats.
	chBudgets := NewBudgets(ch, nil)
	key, err := chBudgets.Key(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, privacy.KeyFile), key, 0o600); err != nil {
		t.Fatal(err)
	}
	localBudgets := privacy.NewBudgets(dir, nil)
	eps, _ := privacy.ParseMechanism("0.5", "")
	rho, _ := privacy.ParseMechanism("", "0.25")
	half, _ := privacy.ParseMechanism("", "0.5")
	for i, ask := range []struct {
		q reach.Query
		m privacy.Mechanism
	}{
		{reach.Query{Authors: []string{"1", "2", "3"}}, eps},
		{reach.Query{Authors: []string{"1", "2", "9", "11"}, Dose: true, Overlap: []string{"2", "30"}, After: t0.Add(70 * time.Minute), Window: cut}, rho},
		{reach.Query{Authors: []string{"1", "2", "3"}}, eps}, // a repeat
		{reach.Query{Authors: []string{"4", "5"}, By: identify.FacetIP}, rho},
		{reach.Query{Authors: []string{"6"}}, half}, // past the budget: 5/8 spent
		{reach.Query{Authors: []string{"6"}}, rho},
	} {
		var got [2]string
		for k, run := range []struct {
			src    ledger.Source
			keeper privacy.Keeper
		}{{local, localBudgets}, {ch, chBudgets}} {
			res, err := reach.RunPrivateOn(ctx, run.src, ask.q, reach.Private{Mechanism: ask.m, Researcher: "rosa", Budgets: run.keeper, Query: fmt.Sprintf("%+v %s", ask.q, ask.m.Param())})
			var ex *privacy.ExhaustedError
			switch {
			case errors.As(err, &ex):
				got[k] = "refused: " + ex.Error()
			case err != nil:
				t.Fatalf("DP reach %d: %v", i, err)
			default:
				res.Budget.AnsweredAt = time.Time{}
				got[k] = mustJSON(t, res)
			}
		}
		if got[0] != got[1] {
			t.Errorf("DP reach %d:\nlocal      %s\nclickhouse %s", i, got[0], got[1])
		}
		if i == 4 && !strings.HasPrefix(got[1], "refused") {
			t.Errorf("DP reach %d past the budget answered: %s", i, got[1])
		}
	}
}

// TestSpoolAcrossKill sends Accesses while ClickHouse is killed and
// restarted: every one is in ClickHouse once at the end, none dropped.
func TestSpoolAcrossKill(t *testing.T) {
	s := server(t)
	cfg := config(t, s, "spooltest")
	m := NewMetrics(nil)
	sink, err := NewSink(cfg, nil, m)
	if err != nil {
		t.Fatal(err)
	}
	acc := traffic(9000)
	for _, a := range acc[:3000] {
		sink.Record(a)
	}
	sink.Flush()
	s.Kill()
	for _, a := range acc[3000:6000] {
		sink.Record(a)
	}
	sink.Flush()
	// The batches wait on disk (the last may still be in the sender's hand).
	if n := sink.spool.len(); n == 0 {
		t.Fatal("nothing spooled while ClickHouse was down")
	}
	if err := s.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, a := range acc[6000:] {
		sink.Record(a)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := sink.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := sink.spool.len(); n != 0 {
		t.Fatalf("%d batches still spooled after ClickHouse returned", n)
	}
	c, _ := NewClient(cfg)
	out, err := c.Do(context.Background(), "SELECT count(), uniqExact(req) FROM accesses", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(trimNL(out)); got != "9000\t9000" {
		t.Fatalf("accesses, distinct: %s; want 9000 each", got)
	}
	if got := testutilValue(m); got != 0 {
		t.Fatalf("dropped %v", got)
	}
}

// TestSpoolFullDrops: past the spool's size batches are dropped and
// counted, and what fit is sent when ClickHouse returns.
func TestSpoolBound(t *testing.T) {
	cfg := Config{Addrs: []string{"127.0.0.1:1"}, Database: "x", BatchSize: 100, BatchInterval: time.Hour,
		Spool: SpoolConfig{Dir: t.TempDir(), MaxBytes: 40000}}
	m := NewMetrics(nil)
	sink, err := NewSink(cfg, nil, m)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range traffic(3000) {
		sink.Record(a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sink.Close(ctx)
	files, _ := filepath.Glob(filepath.Join(cfg.Spool.Dir, "*.batch"))
	var size int64
	for _, f := range files {
		st, _ := os.Stat(f)
		size += st.Size()
	}
	if size > 40000 || len(files) == 0 {
		t.Fatalf("spool holds %d bytes in %d files; bound 40000", size, len(files))
	}
	dropped := testutilValue(m)
	if dropped == 0 || int(dropped)%100 != 0 {
		t.Fatalf("dropped %v Accesses, want whole batches", dropped)
	}
	// A new sink finds the spooled batches.
	sp, err := openSpool(cfg.Spool.Dir, 1<<30, NewMetrics(nil))
	if err != nil || sp.len() != len(files) {
		t.Fatalf("reopened spool: %d files, %v", sp.len(), err)
	}
	kept := 0
	for _, f := range sp.files {
		b, err := sp.load(f, new(bufPool).get)
		if err != nil {
			t.Fatal(err)
		}
		kept += b.n
	}
	if kept+int(dropped) != 3000 {
		t.Fatalf("kept %d + dropped %v != 3000", kept, dropped)
	}
}

// TestSpoolOnePerGateway: a second sink on a spool in use is refused (two
// gateways started from one file on one host numbered their batches alike
// and wrote over each other's); the spool is free again once the first
// sink is closed.
func TestSpoolOnePerGateway(t *testing.T) {
	cfg := Config{Addrs: []string{"127.0.0.1:1"}, Database: "x", BatchInterval: time.Hour, Spool: SpoolConfig{Dir: t.TempDir()}}
	first, err := NewSink(cfg, nil, NewMetrics(nil))
	if err != nil {
		t.Fatal(err)
	}
	if second, err := NewSink(cfg, nil, NewMetrics(nil)); err == nil || !strings.Contains(err.Error(), "is in use by another warden") {
		if second != nil {
			second.Close(context.Background())
		}
		t.Fatalf("a second sink on the spool in use: %v, want it refused", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	first.Close(ctx)
	again, err := NewSink(cfg, nil, NewMetrics(nil))
	if err != nil {
		t.Fatalf("the spool after the first sink closed: %v", err)
	}
	again.Close(ctx)
}

// TestReady: a gateway's start-up check tells a ClickHouse that will not
// take the ledger (wrong password, no database, no tables) from one that
// cannot be reached (the spool is for that) and from one ready.
func TestReady(t *testing.T) {
	s := server(t)
	ctx := context.Background()
	cfg := config(t, s, "readytest") // made by Init
	ready := func(c Config) error {
		t.Helper()
		cl, err := NewClient(c)
		if err != nil {
			t.Fatal(err)
		}
		return cl.Ready(ctx)
	}
	if err := ready(cfg); err != nil {
		t.Fatalf("after ledger init: %v", err)
	}
	var refused *Error
	var unreachable *UnreachableError
	wrong := cfg
	wrong.PasswordEnv, wrong.PasswordFile = "", filepath.Join(t.TempDir(), "pw")
	os.WriteFile(wrong.PasswordFile, []byte("not-the-password\n"), 0o600)
	if err := ready(wrong); !errors.As(err, &refused) || !strings.Contains(err.Error(), "Wrong password") {
		t.Errorf("wrong password: %v", err)
	}
	nodb := cfg
	nodb.Database = "readytest_missing"
	if err := ready(nodb); !errors.As(err, &refused) || errors.Is(err, ErrNoSchema) {
		t.Errorf("no database: %v", err)
	}
	empty := cfg
	empty.Database = "readytest_empty"
	cl, _ := NewClient(empty)
	if _, err := cl.do(ctx, "CREATE DATABASE IF NOT EXISTS readytest_empty", nil, false, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := ready(empty); !errors.Is(err, ErrNoSchema) || !strings.Contains(err.Error(), "0 of the ledger's 3 tables") {
		t.Errorf("database without the tables: %v", err)
	}
	gone := cfg
	gone.Addrs = []string{"127.0.0.1:1"}
	if err := ready(gone); !errors.As(err, &unreachable) {
		t.Errorf("nothing listening: %v, want an UnreachableError", err)
	}
}
