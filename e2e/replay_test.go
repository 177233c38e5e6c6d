package e2e

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/store/redis/redistest"
)

type replayRow struct {
	Facet, Value, Rule string
	Count, Records     int
}

type replayReport struct {
	Accesses        int            `json:"accesses"`
	Replayed        int            `json:"replayed"`
	NotReplayed     map[string]int `json:"not_replayed"`
	NewlyRefused    []replayRow    `json:"newly_refused"`
	NoLongerRefused []replayRow    `json:"no_longer_refused"`
	NewlyMasked     []replayRow    `json:"newly_masked"`
	NoLongerMasked  []replayRow    `json:"no_longer_masked"`
	Caveats         []string       `json:"caveats"`
}

// rowsOf renders rows as "rule facet=value answers/records", sorted.
func rowsOf(rows []replayRow) string {
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		out = append(out, fmt.Sprintf("%s %s=%s %d/%d", r.Rule, r.Facet, r.Value, r.Count, r.Records))
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

// want renders the rows expected for accounts, as rowsOf does.
func want(rule string, n, records int, accounts ...int) string {
	var out []string
	for _, a := range accounts {
		out = append(out, fmt.Sprintf("%s account=%d %d/%d", rule, a, n, records))
	}
	sort.Strings(out)
	return strings.Join(out, "; ")
}

// warden replay over a ledger the real gateway wrote from lab traffic: the
// same config changes nothing; a tighter one names exactly the accounts
// past its budget and rate limit, with how many answers and records; a
// looser one the reverse.
func TestReplayNamesWhoATighterConfigCatches(t *testing.T) {
	platform := startPlatform(t, 2000)
	dir := filepath.Join(t.TempDir(), "ledger")
	live := ledgerConfig(dir, 15)
	g := startGateway(t, live, platform)
	tl := newTally()
	ledgerTraffic(t, g, tl) // accounts 1-6: 20 distinct profiles each, 3 following lists
	// Accounts 7 and 8 look up 5 profiles, 9 looks up 14: under a budget
	// of 12 only 9 of them is past it.
	for acct, n := range map[int]int{7: 5, 8: 5, 9: 14} {
		c := clientFrom(fmt.Sprintf("127.0.4.%d", acct))
		hdr := map[string]string{"Authorization": "Bearer " + token(t, fmt.Sprint(acct))}
		for id := 500; id < 500+n; id++ {
			if a := do(t, c, "GET", fmt.Sprintf("%s/v1/users/%d", g.url, id), hdr); a.status != 200 {
				t.Fatalf("account %d, profile %d: %d %s", acct, id, a.status, a.body)
			}
			tl.requests[fmt.Sprint(acct)]++
		}
	}
	if t.Failed() {
		return
	}
	awaitLedger(t, dir, tl)
	total := 0
	for _, n := range tl.requests {
		total += n
	}

	run := func(name, cfg string) replayReport {
		t.Helper()
		path := filepath.Join(t.TempDir(), name+".yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		var rep replayReport
		query(t, &rep, "replay", "--config", path, "--ledger", dir)
		if rep.Accesses != total || rep.Replayed != total {
			t.Errorf("%s: %d accesses, %d replayed (not: %v); the clients were answered %d", name, rep.Accesses, rep.Replayed, rep.NotReplayed, total)
		}
		return rep
	}

	same := run("same", live)
	if s := rowsOf(same.NewlyRefused) + rowsOf(same.NoLongerRefused) + rowsOf(same.NewlyMasked) + rowsOf(same.NoLongerMasked); s != "" {
		t.Errorf("the same config changed: %s", s)
	}

	// Budget 12 and a following burst of 1: accounts 1-6 lose profiles
	// 13-15 of their 20 and their second following list; 9 its 13th and
	// 14th profile; 7 and 8 nothing.
	tight := run("tight", strings.Replace(ledgerConfig(dir, 12), "burst: 2", "burst: 1", 1))
	if got, w := rowsOf(tight.NewlyMasked), want("contact-account", 3, 3, 1, 2, 3, 4, 5, 6)+"; "+want("contact-account", 2, 2, 9); got != w {
		t.Errorf("newly masked:\n got %s\nwant %s", got, w)
	}
	if got, w := rowsOf(tight.NewlyRefused), want("following-burst", 1, 0, 1, 2, 3, 4, 5, 6); got != w {
		t.Errorf("newly refused:\n got %s\nwant %s", got, w)
	}
	if s := rowsOf(tight.NoLongerMasked) + rowsOf(tight.NoLongerRefused); s != "" {
		t.Errorf("a tighter config let something through: %s", s)
	}

	// Budget 100 and a burst of 3: the reverse.
	loose := run("loose", strings.Replace(ledgerConfig(dir, 100), "burst: 2", "burst: 3", 1))
	if got, w := rowsOf(loose.NoLongerMasked), want("contact-account", 5, 5, 1, 2, 3, 4, 5, 6); got != w {
		t.Errorf("no longer masked:\n got %s\nwant %s", got, w)
	}
	if got, w := rowsOf(loose.NoLongerRefused), want("following-burst", 1, 0, 1, 2, 3, 4, 5, 6); got != w {
		t.Errorf("no longer refused:\n got %s\nwant %s", got, w)
	}
	if s := rowsOf(loose.NewlyMasked) + rowsOf(loose.NewlyRefused); s != "" {
		t.Errorf("a looser config caught someone: %s", s)
	}

	// The profile route gone from the route map (renamed to one the
	// traffic never asked): its answers would go out uninspected, so the
	// 5 profiles masked of each of accounts 1-6 are masked no longer, and
	// a caveat names the route. Before, they were skipped: "no change".
	unmapped := run("unmapped", strings.Replace(live, `route: "GET /v1/users/{id}"`, `route: "GET /v1/profiles/{id}"`, 1))
	if got, w := rowsOf(unmapped.NoLongerMasked), want("contact-account", 5, 5, 1, 2, 3, 4, 5, 6); got != w {
		t.Errorf("profile route not inspected, no longer masked:\n got %s\nwant %s", got, w)
	}
	if s := rowsOf(unmapped.NewlyMasked) + rowsOf(unmapped.NewlyRefused) + rowsOf(unmapped.NoLongerRefused); s != "" {
		t.Errorf("profile route not inspected: %s", s)
	}
	if !slices.ContainsFunc(unmapped.Caveats, func(c string) bool {
		return strings.HasPrefix(c, "route GET /v1/users/{id}: not in the new config's route map")
	}) {
		t.Errorf("profile route not inspected: caveats %q name no route", unmapped.Caveats)
	}
}

// warden replay of the same config over a ledger holding a state store's
// outage at admission (Redis down, failure mode closed: 503, rule store,
// facet admit) reports no change: no rate limit saw those requests (none
// was decided or spent, as explain leaves them out of a limit's seen), so
// the replay does not count them either (not_replayed.store_admit).
// Before, it decided each again and spent the limit on it: an account
// that the gateway admitted to the last of its burst after the outage was
// "newly refused" under the very config that admitted it.
func TestReplayStoreOutageSameConfig(t *testing.T) {
	rs := redistest.Start(t)
	platform := startPlatform(t, 200)
	dir := filepath.Join(t.TempDir(), "ledger")
	const burst = 10
	cfg := storeOutageConfig(rs.Addr(), "1/h", burst, dir)
	g := startGateway(t, cfg, platform)
	hdr := map[string]string{"Authorization": "Bearer " + token(t, "7")}
	c := clientFrom("127.0.8.6")
	answered, admitted, storeAdmit := 0, 0, 0
	get := func(id int) answer {
		a := do(t, c, "GET", fmt.Sprintf("%s/v1/users/%d", g.url, id), hdr)
		answered++
		if a.status == 503 {
			if r := refusalOf(t, a); r.Rule == "store" && r.Facet == "admit" {
				storeAdmit++
				return a
			}
		}
		if a.status == 429 {
			t.Fatalf("profile %d: refused by the rate limit after %d admitted: %s", id, admitted, a.body)
		}
		admitted++
		return a
	}
	// The outage before any request was admitted: a Redis restarted
	// empty loses no count the limit had.
	rs.Kill()
	for i := range 5 {
		get(10 + i)
	}
	if storeAdmit == 0 {
		t.Fatal("no store refusal at admission while Redis was down")
	}
	rs.Restart()
	awaitContact(t, get, 50, time.Now().Add(15*time.Second), "Redis returned")
	for id := 60; admitted < burst; id++ {
		if a := get(id); a.status != 200 {
			t.Fatalf("profile %d after the outage: %d %s", id, a.status, a.body)
		}
	}
	path := filepath.Join(t.TempDir(), "same.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var rep replayReport
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		rep = replayReport{}
		query(t, &rep, "replay", "--config", path, "--ledger", dir)
		if rep.Accesses >= answered || time.Now().After(deadline) {
			break
		}
	}
	if rep.Accesses != answered || rep.NotReplayed["store_admit"] != storeAdmit || rep.Replayed != admitted {
		t.Errorf("%d accesses, %d replayed, not replayed %v; the gateway answered %d, %d of them refused by the store at admission",
			rep.Accesses, rep.Replayed, rep.NotReplayed, answered, storeAdmit)
	}
	if s := rowsOf(rep.NewlyRefused) + rowsOf(rep.NoLongerRefused) + rowsOf(rep.NewlyMasked) + rowsOf(rep.NoLongerMasked); s != "" {
		t.Errorf("the same config changed: %s (%d admitted of a burst of %d, %d store refusals at admission)", s, admitted, burst, storeAdmit)
	}
}

// warden replay of the same config over one account's overlapping
// requests reports no change. 60 profiles asked 8 at a time, the upstream
// answering each after 5-40 ms (the lab platform behind a delay): 40 are
// admitted by the burst, 20 refused, and of the 40 the budget masks the
// last 10 rationed, in the order their answers came. Before, an answer's
// Access carried the time its answer was read and a refusal's the time
// its request arrived, so the replay decided the limit in another order
// than the gateway had: requests refused live came before admitted ones
// still waiting for their answers, and swapped places with them ("newly
// refused 4, no longer refused 4" under the very config that decided them).
func TestReplaySameConfigOverlappingRequests(t *testing.T) {
	platform := startPlatform(t, 200)
	up, err := url.Parse(platform)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(up)
	var mu sync.Mutex
	rnd := rand.New(rand.NewPCG(1, 2))
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		d := time.Duration(5+rnd.IntN(36)) * time.Millisecond
		mu.Unlock()
		time.Sleep(d)
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(slow.Close)
	dir := filepath.Join(t.TempDir(), "ledger")
	live := strings.Replace(ledgerConfig(dir, 30), "rate_limits:\n", "rate_limits:\n  - {name: profile-burst, facet: account, rate: 1/h, burst: 40, routes: [\"GET /v1/users/{id}\"]}\n", 1)
	g := startGateway(t, live, slow.URL)
	c := clientFrom("127.0.9.1")
	hdr := map[string]string{"Authorization": "Bearer " + token(t, "41")}
	tl := newTally()
	statuses := map[int]int{}
	ids := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				a := do(t, c, "GET", fmt.Sprintf("%s/v1/users/%d", g.url, id), hdr)
				mu.Lock()
				statuses[a.status]++
				tl.requests["41"]++
				mu.Unlock()
			}
		}()
	}
	for id := 100; id < 160; id++ {
		ids <- id
	}
	close(ids)
	wg.Wait()
	if statuses[200] != 40 || statuses[429] != 20 {
		t.Fatalf("statuses %v, want 40 answered and 20 refused", statuses)
	}
	awaitLedger(t, dir, tl)
	path := filepath.Join(t.TempDir(), "same.yaml")
	if err := os.WriteFile(path, []byte(live), 0o600); err != nil {
		t.Fatal(err)
	}
	var rep replayReport
	query(t, &rep, "replay", "--config", path, "--ledger", dir)
	if rep.Accesses != 60 || rep.Replayed != 60 {
		t.Errorf("%d accesses, %d replayed (not: %v); the client was answered 60", rep.Accesses, rep.Replayed, rep.NotReplayed)
	}
	for name, rows := range map[string][]replayRow{"newly refused": rep.NewlyRefused, "no longer refused": rep.NoLongerRefused,
		"newly masked": rep.NewlyMasked, "no longer masked": rep.NoLongerMasked} {
		if s := rowsOf(rows); s != "" {
			t.Errorf("the same config changed: %s %s", name, s)
		}
	}
}
