package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
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
}
