package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/lab/chserver"
	"github.com/warden-gw/warden/internal/lab/platform"
	"github.com/warden-gw/warden/internal/ledger/clickhouse"
	"github.com/warden-gw/warden/internal/store/redis/redistest"
)

// passwordFile is ch's password in a file of its own, as a fleet's
// config names it (ledger.clickhouse.password_file).
func passwordFile(t *testing.T, ch *chserver.Server) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "clickhouse-password")
	if err := os.WriteFile(p, []byte(ch.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// fleetConfig is one gateway of a fleet: budgets and limits on Redis at
// redisAddr, the ledger in ClickHouse at chAddr (database fleet, user
// warden, its password in pwFile), batches spooled in spool.
func fleetConfig(redisAddr, chAddr, pwFile, spool string, limit int) string {
	return fmt.Sprintf(`log: {format: text, level: warn}
identity:
  account: {secret_env: LAB_JWT_SECRET}
store:
  backend: redis
  redis: {addrs: [%s]}
  failure: {mode: closed, timeout: 2s}
rate_limits:
  - {name: following-burst, facet: account, rate: 1/h, burst: 2, routes: ["GET /v1/users/{id}/following"]}
inspect:
  routes:
    - route: "GET /v1/users/{id}"
      records: ["$"]
      id: id
      classes: {contact: [email, phone]}
    - route: "GET /v1/users/{id}/following"
      records: ["$.users[*]"]
      id: id
      classes: {profile: [username, full_name]}
      list: id
ration:
  budgets:
    - {name: contact-account, facet: account, class: contact, limit: %d, window: 24h, action: mask}
ledger:
  backend: clickhouse
  clickhouse:
    addrs: [%s]
    database: fleet
    user: warden
    password_file: %s
    batch_interval: 100ms
    spool: {dir: %s}
`, redisAddr, limit, chAddr, pwFile, spool)
}

// fleetCount is what the clients were answered, per gateway.
type fleetCount struct {
	mu       sync.Mutex
	answered [2]int                    // requests answered by gateway 1 and 2 (any status)
	takes    map[string]map[string]int // subject -> account -> answers holding its record
	contact  map[string]map[string]int // subject -> account -> answers serving its email
	served   map[string]bool           // subjects whose contact the harvester got
	refused  []string                  // request ids of refusals
}

// Two gateways on one Redis and one ClickHouse, a harvester alternating
// between them: its contact budget is spent once across the fleet, its
// burst limit holds across the fleet, and ClickHouse holds every Access
// exactly once, which the query commands read back with the clients'
// own counts.
func TestFleetOneBudgetOneLedger(t *testing.T) {
	rs := redistest.Start(t)
	ch := chserver.ForTest(t)
	platformURL := startPlatform(t, 2000)
	pwFile := passwordFile(t, ch)
	const limit = 25
	cfg := func() string {
		return fleetConfig(rs.Addr(), ch.Addr(), pwFile, filepath.Join(t.TempDir(), "spool"), limit)
	}
	// The schema, once, from the first gateway's file (as the README says).
	cfgPath := filepath.Join(t.TempDir(), "fleet.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(binPath, "ledger", "init", "--config", cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("warden ledger init: %v\n%s", err, out)
	}
	gws := [2]*gw{startGateway(t, cfg(), platformURL), startGateway(t, cfg(), platformURL)}

	fc := &fleetCount{takes: map[string]map[string]int{}, contact: map[string]map[string]int{}, served: map[string]bool{}}
	get := func(c clientLike, k int, acct, path string) answer {
		a := do(t, c.c, "GET", gws[k].url+path, map[string]string{"Authorization": "Bearer " + c.tok})
		fc.mu.Lock()
		defer fc.mu.Unlock()
		fc.answered[k]++
		switch a.status {
		case 200:
		case 429:
			fc.refused = append(fc.refused, refusalOf(t, a).RequestID)
			return a
		default:
			t.Errorf("GET %s on gateway %d: %d %s", path, k+1, a.status, a.body)
			return a
		}
		if strings.HasSuffix(path, "/following") {
			var fl struct {
				Users []struct{ ID string } `json:"users"`
			}
			if err := json.Unmarshal([]byte(a.body), &fl); err != nil {
				t.Errorf("following %s: %v %s", path, err, a.body)
			}
			for _, u := range fl.Users {
				inc(fc.takes, u.ID, acct)
			}
			return a
		}
		var p struct {
			ID    string  `json:"id"`
			Email *string `json:"email"`
		}
		if err := json.Unmarshal([]byte(a.body), &p); err != nil {
			t.Errorf("profile %s: %v %s", path, err, a.body)
			return a
		}
		inc(fc.takes, p.ID, acct)
		if p.Email != nil && *p.Email != "" {
			inc(fc.contact, p.ID, acct)
			if acct == fleetHarvester {
				fc.served[p.ID] = true
			}
		}
		return a
	}

	// The harvester: 8 connections from 8 addresses, 80 distinct profiles,
	// each worker alternating gateways; then every profile again on the
	// other gateway (re-views of what was served are free); then its
	// following lists, alternating, past a burst of 2 the fleet shares.
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := clientLike{clientFrom(fmt.Sprintf("127.0.5.%d", w+1)), token(t, fleetHarvester)}
			for i := range 10 {
				get(c, i%2, fleetHarvester, fmt.Sprintf("/v1/users/%d", 100+w*10+i))
			}
			for i := range 10 {
				get(c, 1-i%2, fleetHarvester, fmt.Sprintf("/v1/users/%d", 100+w*10+i))
			}
		}(w)
	}
	// A bystander on gateway 1 only, within its own budget, so the two
	// gateways answer different numbers of requests.
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := clientLike{clientFrom("127.0.5.100"), token(t, fleetBystander)}
		for id := 100; id < 107; id++ {
			get(c, 0, fleetBystander, fmt.Sprintf("/v1/users/%d", id))
		}
	}()
	wg.Wait()
	hc := clientLike{clientFrom("127.0.5.50"), token(t, fleetHarvester)}
	for i := range 4 {
		get(hc, i%2, fleetHarvester, fmt.Sprintf("/v1/users/%d/following", 300+i))
	}

	// One budget: the harvester got exactly its limit of contacts across
	// both gateways, on both passes.
	if len(fc.served) != limit {
		t.Fatalf("contacts of %d distinct profiles served across two gateways, want exactly %d\ngateway 1:\n%s\ngateway 2:\n%s",
			len(fc.served), limit, rationMetrics(t, gws[0]), rationMetrics(t, gws[1]))
	}
	for s := range fc.served {
		if n := fc.contact[s][fleetHarvester]; n != 2 {
			t.Errorf("profile %s: contact served %d times, want on both passes", s, n)
		}
	}
	if len(fc.refused) != 2 {
		t.Fatalf("%d following lists refused across the fleet, want 2 (burst 2 shared on Redis)", len(fc.refused))
	}
	total := fc.answered[0] + fc.answered[1]

	// Each gateway sent ClickHouse what it answered, and nothing waits in
	// its spool.
	for k, g := range gws {
		deadline := time.Now().Add(20 * time.Second)
		for {
			m := adminDo(t, g, "GET", "/metrics", "").body
			sent, spooled := metricValue(m, "warden_ledger_clickhouse_sent_total"), metricValue(m, "warden_ledger_clickhouse_spool_batches")
			if sent == fc.answered[k] && spooled == 0 {
				if r := metricSum(m, "warden_requests_total"); r != fc.answered[k] {
					t.Errorf("gateway %d: warden_requests_total %d, its clients were answered %d", k+1, r, fc.answered[k])
				}
				break
			}
			if sent > fc.answered[k] || time.Now().After(deadline) {
				t.Fatalf("gateway %d: %d Accesses sent to ClickHouse (%d batches spooled), its clients were answered %d\n%s",
					k+1, sent, spooled, fc.answered[k], metricsStarting(m, "warden_ledger_", "warden_recorder_"))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// One ledger: every Access once, by request id; each gateway's ids
	// (a per-process prefix) as many as its clients were answered.
	cl, err := clickhouse.NewClient(clickhouse.Config{Addrs: []string{ch.Addr()}, Database: "fleet", User: "warden", PasswordFile: pwFile})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	chRows := func(q string) [][]string {
		t.Helper()
		out, err := cl.Do(ctx, q+" FORMAT TabSeparated", nil)
		if err != nil {
			t.Fatal(err)
		}
		var rows [][]string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if l != "" {
				rows = append(rows, strings.Split(l, "\t"))
			}
		}
		return rows
	}
	if r := chRows("SELECT count(), uniqExact(req) FROM accesses"); r[0][0] != strconv.Itoa(total) || r[0][1] != strconv.Itoa(total) {
		t.Fatalf("ClickHouse holds %s Accesses with %s distinct request ids; the clients were answered %d", r[0][0], r[0][1], total)
	}
	var perPrefix []int
	for _, r := range chRows("SELECT substring(req, 1, 8) AS p, count() FROM accesses GROUP BY p ORDER BY p") {
		n, _ := strconv.Atoi(r[1])
		perPrefix = append(perPrefix, n)
	}
	want := []int{fc.answered[0], fc.answered[1]}
	sort.Ints(perPrefix)
	sort.Ints(want)
	if fmt.Sprint(perPrefix) != fmt.Sprint(want) {
		t.Errorf("Accesses per gateway in ClickHouse %v, the gateways answered %v", perPrefix, want)
	}
	for _, id := range fc.refused {
		if r := chRows("SELECT count(), any(status), any(rule) FROM accesses WHERE req = '" + id + "'"); fmt.Sprint(r[0]) != "[1 429 following-burst]" {
			t.Errorf("refusal %s in ClickHouse: %v, want once, 429, following-burst", id, r[0])
		}
	}
	takes := 0
	for _, m := range fc.takes {
		for _, n := range m {
			takes += n
		}
	}
	if r := chRows("SELECT count() FROM takes"); r[0][0] != strconv.Itoa(takes) {
		t.Errorf("records taken in ClickHouse: %s, the clients got %d", r[0][0], takes)
	}

	// The queries, on ClickHouse through the gateway's file, name the
	// harvester with the clients' counts.
	var tb tookBy
	query(t, &tb, "ledger", "took-by", "account", fleetHarvester, "--clickhouse", ch.Addr(), "--config", cfgPath)
	if hAnswered := total - 7; tb.Accesses != hAnswered || tb.Served["contact"] != limit || tb.Masked["contact"] != 80-limit {
		t.Errorf("took-by account %s: %d Accesses, contact served on %d and masked on %d subjects; the clients: %d, %d, %d",
			fleetHarvester, tb.Accesses, tb.Served["contact"], tb.Masked["contact"], hAnswered, limit, 80-limit)
	}
	for id := 100; id < 180; id++ {
		s := strconv.Itoa(id)
		for _, class := range []string{"", "contact"} {
			args := []string{"ledger", "who-took", s, "--clickhouse", ch.Addr(), "--config", cfgPath}
			want := fc.takes[s]
			if class != "" {
				args = append(args, "--class", class)
				want = fc.contact[s]
			}
			var wt whoTook
			query(t, &wt, args...)
			got := map[string]int{}
			for _, r := range wt.Rows {
				got[r.Value] = r.Count
			}
			if fmt.Sprint(got) != fmt.Sprint(nonZero(want)) {
				t.Errorf("who-took %s %s on ClickHouse: %v, the clients got %v", s, class, got, want)
			}
		}
	}

	// One researcher's budget across the fleet, kept in ClickHouse: asked
	// of gateway 1, the same question on gateway 2 and on the command
	// line is the same answer, free; a second question past the budget
	// is refused on gateway 2.
	type dpReach struct {
		Reach           int64  `json:"reach"`
		RemainingBudget string `json:"remaining_budget"`
		Budget          struct {
			Charged string `json:"charged_rho"`
			Repeat  bool   `json:"repeat"`
		} `json:"budget"`
	}
	askDP := func(k int, query string) (dpReach, answer) {
		t.Helper()
		a := adminDo(t, gws[k], "GET", "/v1/ledger/reach?"+query, "")
		var r dpReach
		if a.status == 200 {
			if err := json.Unmarshal([]byte(a.body), &r); err != nil {
				t.Fatalf("reach on gateway %d: %v %s", k+1, err, a.body)
			}
		}
		return r, a
	}
	first, a := askDP(0, "authors=100,101&dp-epsilon=1&researcher=rita")
	if a.status != 200 || first.Budget.Charged != "0.5" || first.RemainingBudget != "0.5" || first.Budget.Repeat {
		t.Fatalf("DP reach on gateway 1: %d %s", a.status, a.body)
	}
	again, a := askDP(1, "researcher=rita&dp-epsilon=1&authors=101,100")
	if a.status != 200 || !again.Budget.Repeat || again.Reach != first.Reach || again.RemainingBudget != "0.5" {
		t.Fatalf("the same DP reach on gateway 2: %d %s; gateway 1 answered %+v", a.status, a.body, first)
	}
	var cli dpReach
	query(t, &cli, "reach", "--authors", "100,101", "--dp-epsilon", "1", "--researcher", "rita", "--clickhouse", ch.Addr(), "--config", cfgPath)
	if !cli.Budget.Repeat || cli.Reach != first.Reach {
		t.Fatalf("the same DP reach from warden reach --clickhouse: %+v; gateway 1 answered %+v", cli, first)
	}
	if _, a := askDP(1, "authors=102&dp-epsilon=1.1&researcher=rita"); a.status != 400 || !strings.Contains(a.body, "exhausted") {
		t.Fatalf("a DP reach past rita's budget on gateway 2: %d %s", a.status, a.body)
	}
	if r := chRows("SELECT researcher, rho FROM privacy_charges"); fmt.Sprint(r) != "[[rita 1/2]]" {
		t.Fatalf("charges in ClickHouse: %v, want rita's one of 1/2", r)
	}

	// warden audience with the fleet's config charges the same budget in
	// ClickHouse (not a file of the host it runs on): rita's last half,
	// then a repeat for free, then nothing more. Its reach split reads the
	// fleet's ledger there too.
	tok, err := platform.MintToken("lab-secret", "1", time.Now().Add(-48*time.Hour), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	type dpAudience struct {
		Reach *struct {
			Reach int64 `json:"reach"`
		} `json:"reach"` // the split
		RemainingBudget string `json:"remaining_budget"`
		Budget          struct {
			Charged string `json:"charged_rho"`
			Repeat  bool   `json:"repeat"`
		} `json:"budget"`
	}
	audienceDP := func(accounts, eps string) (dpAudience, string, error) {
		cmd := exec.Command(binPath, "audience", "--accounts", accounts, "--upstream", platformURL, "--credential-env", "FLEET_SERVICE_TOKEN",
			"--dp-epsilon", eps, "--researcher", "rita", "--config", cfgPath, "--json")
		cmd.Env = append(os.Environ(), "FLEET_SERVICE_TOKEN="+tok)
		out, err := cmd.Output()
		var r dpAudience
		if err == nil {
			err = json.Unmarshal(out, &r)
		}
		return r, string(out), err
	}
	if r, out, err := audienceDP("100,101", "1"); err != nil || r.Budget.Charged != "0.5" || r.RemainingBudget != "0" || r.Reach == nil {
		t.Fatalf("a DP audience with the fleet's config: %v %s", err, out)
	}
	if r, out, err := audienceDP("101,100", "1"); err != nil || !r.Budget.Repeat || r.RemainingBudget != "0" {
		t.Fatalf("the same DP audience again: %v %s", err, out)
	}
	if _, out, err := audienceDP("102", "1"); err == nil || !strings.Contains(out, "exhausted") {
		t.Fatalf("a DP audience past rita's budget: %v %s", err, out)
	}
	if r := chRows("SELECT researcher, rho FROM privacy_charges ORDER BY rho"); fmt.Sprint(r) != "[[rita 1/2] [rita 1/2]]" {
		t.Fatalf("charges in ClickHouse: %v, want rita's two of 1/2", r)
	}

	// The transparency page, public, counts the fleet's ledger and charges
	// the fleet's one "transparency" budget: both gateways publish the
	// same figures (the second is the first's answer, free), one charge.
	var pages [2]string
	for k := range gws {
		a := adminDo(t, gws[k], "GET", "/transparency", "")
		if a.status != 200 || !strings.Contains(a.body, "identities refused for harvesting") {
			t.Fatalf("transparency on gateway %d: %d %s", k+1, a.status, a.body)
		}
		pages[k] = a.body
	}
	if pages[0] != pages[1] {
		t.Errorf("the gateways' transparency pages differ:\n%s\n---\n%s", pages[0], pages[1])
	}
	if r := chRows("SELECT count() FROM privacy_charges WHERE researcher = 'transparency'"); fmt.Sprint(r) != "[[1]]" {
		t.Fatalf("transparency charges in ClickHouse: %v, want one", r)
	}

	// The identities and trace pages of gateway 2 read the fleet's
	// ledger: the harvester's figures are every gateway's.
	take := map[string]bool{}
	for s, m := range fc.takes {
		if m[fleetHarvester] > 0 {
			take[s] = true
		}
	}
	ledgerSubjects, _ := strconv.Atoi(chRows("SELECT uniqExact(subject) FROM takes WHERE account = '" + fleetHarvester + "'")[0][0])
	checkFleetDashboard(t, gws[1], take, ledgerSubjects, limit, limit)
}

const (
	fleetHarvester = "1500" // the fleet test's harvesting account
	fleetBystander = "77"
)

// clientLike is a client and the token it sends.
type clientLike struct {
	c   *http.Client
	tok string
}

func nonZero(m map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		if v > 0 {
			out[k] = v
		}
	}
	return out
}

var metricLine = regexp.MustCompile(`^(\w+)(\{[^}]*\})? (\S+)$`)

// metricSum is the sum of a metric's series in a Prometheus exposition.
func metricSum(exposition, name string) int {
	sum := 0.0
	for _, l := range strings.Split(exposition, "\n") {
		if m := metricLine.FindStringSubmatch(l); m != nil && m[1] == name {
			v, _ := strconv.ParseFloat(m[3], 64)
			sum += v
		}
	}
	return int(sum)
}

// metricValue is a metric's value (-1 when it is missing).
func metricValue(exposition, name string) int {
	for _, l := range strings.Split(exposition, "\n") {
		if m := metricLine.FindStringSubmatch(l); m != nil && m[1] == name {
			v, _ := strconv.ParseFloat(m[3], 64)
			return int(v)
		}
	}
	return -1
}

// metricsStarting is the exposition's lines starting with any of prefixes.
func metricsStarting(exposition string, prefixes ...string) string {
	var b strings.Builder
	for _, l := range strings.Split(exposition, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				b.WriteString(l + "\n")
				break
			}
		}
	}
	return b.String()
}
