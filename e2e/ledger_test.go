package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ledgerConfig is the lab's routes (profiles with contact, follower lists,
// posts by author, the feed), a contact budget per account that masks
// past limit, a burst limit on following lists that refuses, and a ledger
// cut in parts of 100 Accesses.
func ledgerConfig(dir string, limit int) string {
	return fmt.Sprintf(`log: {format: text, level: warn}
identity:
  account: {secret_env: LAB_JWT_SECRET}
rate_limits:
  - {name: following-burst, facet: account, rate: 1/h, burst: 2, routes: ["GET /v1/users/{id}/following"]}
inspect:
  routes:
    - route: "GET /v1/users/{id}"
      records: ["$"]
      id: id
      classes: {contact: [email, phone], profile: [username, full_name, bio, city]}
      lookup: id
    - route: "GET /v1/users/{id}/followers"
      records: ["$.users[*]"]
      id: id
      classes: {profile: [username, full_name]}
      links: ["$.users[*].id"]
      list: id
      cursor: cursor
    - route: "GET /v1/users/{id}/following"
      records: ["$.users[*]"]
      id: id
      classes: {profile: [username, full_name]}
      list: id
    - route: "GET /v1/users/{id}/posts"
      records: ["$.posts[*]"]
      id: id
      author: author.id
      list: id
      cursor: cursor
ration:
  budgets:
    - {name: contact-account, facet: account, class: contact, limit: %d, window: 24h, action: mask}
# Parts of 100 Accesses: the tests' traffic is sealed part by part while
# the gateway runs, as a busy gateway's is.
ledger: {dir: %s, partition_accesses: 100}
`, limit, dir)
}

// tally is what the clients counted from the answers they received.
type tally struct {
	mu       sync.Mutex
	requests map[string]int             // account -> requests answered (any status)
	contact  map[string]map[string]int  // subject -> account -> answers serving its email
	anyRec   map[string]map[string]int  // subject -> account -> answers holding its record
	masked   map[string]map[string]bool // account -> subjects whose contact came masked
	served   map[string]map[string]bool // account -> subjects whose contact came
	lists    map[string]map[string]bool // account -> lists fetched
	viewers  map[string]map[string]bool // author -> accounts served their posts
	impr     map[string]int             // author -> posts served
	refused  []string                   // request ids of refusals
}

func newTally() *tally {
	return &tally{requests: map[string]int{}, contact: map[string]map[string]int{}, anyRec: map[string]map[string]int{},
		masked: map[string]map[string]bool{}, served: map[string]map[string]bool{}, lists: map[string]map[string]bool{},
		viewers: map[string]map[string]bool{}, impr: map[string]int{}}
}

func inc(m map[string]map[string]int, a, b string) {
	if m[a] == nil {
		m[a] = map[string]int{}
	}
	m[a][b]++
}

func mark(m map[string]map[string]bool, a, b string) {
	if m[a] == nil {
		m[a] = map[string]bool{}
	}
	m[a][b] = true
}

// ledgerTraffic: accounts 1..6, each from its own address: profiles of
// 20 ids overlapping the next account's by 10 (past the budget, contact
// is masked), a follower list, the posts of a few authors, and three
// following lists, the third refused.
func ledgerTraffic(t *testing.T, g *gw, tl *tally) {
	var wg sync.WaitGroup
	for k := 1; k <= 6; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			acct := fmt.Sprint(k)
			c := clientFrom(fmt.Sprintf("127.0.4.%d", k))
			hdr := map[string]string{"Authorization": "Bearer " + token(t, acct)}
			get := func(path string) answer {
				a := do(t, c, "GET", g.url+path, hdr)
				tl.mu.Lock()
				tl.requests[acct]++
				tl.mu.Unlock()
				return a
			}
			for id := 10 * k; id < 10*k+20; id++ {
				a := get(fmt.Sprintf("/v1/users/%d", id))
				var p struct {
					ID    string  `json:"id"`
					Email *string `json:"email"`
				}
				if a.status != 200 || json.Unmarshal([]byte(a.body), &p) != nil {
					t.Errorf("profile %d: %d %s", id, a.status, a.body)
					continue
				}
				tl.mu.Lock()
				inc(tl.anyRec, p.ID, acct)
				if p.Email != nil && *p.Email != "" {
					inc(tl.contact, p.ID, acct)
					mark(tl.served, acct, p.ID)
				} else {
					mark(tl.masked, acct, p.ID)
				}
				tl.mu.Unlock()
			}
			list := fmt.Sprint(100 + k)
			a := get("/v1/users/" + list + "/followers?limit=10")
			var fl struct {
				Users []struct{ ID string } `json:"users"`
			}
			if a.status != 200 || json.Unmarshal([]byte(a.body), &fl) != nil {
				t.Errorf("followers: %d %s", a.status, a.body)
			}
			tl.mu.Lock()
			mark(tl.lists, acct, list)
			for _, u := range fl.Users {
				inc(tl.anyRec, u.ID, acct)
			}
			tl.mu.Unlock()
			for _, author := range []int{200 + k%3, 203, 204 + k%2} {
				a := get(fmt.Sprintf("/v1/users/%d/posts?limit=5", author))
				var pp struct {
					Posts []struct {
						ID     string              `json:"id"`
						Author struct{ ID string } `json:"author"`
					} `json:"posts"`
				}
				if a.status != 200 || json.Unmarshal([]byte(a.body), &pp) != nil {
					t.Errorf("posts: %d %s", a.status, a.body)
				}
				tl.mu.Lock()
				mark(tl.lists, acct, fmt.Sprint(author))
				for _, p := range pp.Posts {
					inc(tl.anyRec, p.ID, acct)
					mark(tl.viewers, p.Author.ID, acct)
					tl.impr[p.Author.ID]++
				}
				tl.mu.Unlock()
			}
			for i := 0; i < 3; i++ {
				list := fmt.Sprint(300 + i)
				a := get("/v1/users/" + list + "/following")
				tl.mu.Lock()
				switch a.status {
				case 429:
					tl.refused = append(tl.refused, refusalOf(t, a).RequestID)
				case 200:
					var fl struct {
						Users []struct{ ID string } `json:"users"`
					}
					json.Unmarshal([]byte(a.body), &fl)
					mark(tl.lists, acct, list)
					for _, u := range fl.Users {
						inc(tl.anyRec, u.ID, acct)
					}
				}
				tl.mu.Unlock()
			}
		}(k)
	}
	wg.Wait()
}

// query runs `warden ARGS --json` and decodes its output into v.
func query(t *testing.T, v any, args ...string) {
	t.Helper()
	out, err := exec.Command(binPath, append(args, "--json")...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("warden %v: %v\n%s%s", args, err, out, stderr)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("warden %v: %v\n%s", args, err, out)
	}
}

type tookBy struct {
	Served   map[string]int `json:"served"`
	Masked   map[string]int `json:"masked"`
	Lists    int            `json:"lists"`
	Accesses int            `json:"accesses"`
	First    *time.Time     `json:"first"`
	Last     *time.Time     `json:"last"`
}

type whoTook struct {
	Subject string `json:"subject"`
	By      string `json:"by"`
	Rows    []struct {
		Value   string   `json:"value"`
		Classes []string `json:"classes"`
		Count   int      `json:"count"`
	} `json:"rows"`
}

// awaitLedger waits until the ledger holds every answered request of
// every account (the gateway flushes every 100 ms); it returns how long
// that took after the last answer.
func awaitLedger(t *testing.T, dir string, tl *tally) time.Duration {
	t.Helper()
	begin := time.Now()
	for i := 0; ; i++ {
		all := true
		for acct, n := range tl.requests {
			var tb tookBy
			query(t, &tb, "ledger", "took-by", "account", acct, "--ledger", dir)
			if tb.Accesses != n {
				all = false
				if i == 100 {
					t.Fatalf("account %s: ledger holds %d Accesses, the client was answered %d", acct, tb.Accesses, n)
				}
			}
		}
		if all {
			return time.Since(begin)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Every query against a ledger written through the real gateway by lab
// traffic, checked against what the clients were served.
func TestLedgerQueriesMatchWhatClientsReceived(t *testing.T) {
	_, dir, g, tl := writtenLedger(t)
	if t.Failed() {
		return
	}
	// The hour was cut in parts (partition_accesses: 100), the full ones
	// sealed while the gateway ran: the answers below read them.
	if parts, _ := filepath.Glob(filepath.Join(dir, "*_*.*")); len(parts) == 0 {
		t.Fatalf("no part of an hour in %s", dir)
	}
	if segs, _ := filepath.Glob(filepath.Join(dir, "*.seg")); len(segs) == 0 {
		t.Fatalf("no part sealed while the gateway ran")
	}

	// took-by: per account, contact served and masked, lists.
	for acct := range tl.requests {
		var tb tookBy
		query(t, &tb, "ledger", "took-by", "account", acct, "--ledger", dir)
		if tb.Served["contact"] != len(tl.served[acct]) || tb.Masked["contact"] != len(tl.masked[acct]) || tb.Lists != len(tl.lists[acct]) {
			t.Errorf("took-by account %s: served %d masked %d lists %d; the client got %d, %d masked, %d lists",
				acct, tb.Served["contact"], tb.Masked["contact"], tb.Lists, len(tl.served[acct]), len(tl.masked[acct]), len(tl.lists[acct]))
		}
		if tb.Served["contact"] != 15 {
			t.Errorf("account %s was served %d contacts, budget 15", acct, tb.Served["contact"])
		}
	}

	// who-took: every subject, any record and contact unmasked.
	for _, subject := range keys(tl.anyRec) {
		var wt whoTook
		query(t, &wt, "ledger", "who-took", subject, "--ledger", dir)
		got := map[string]int{}
		for _, r := range wt.Rows {
			got[r.Value] = r.Count
		}
		if fmt.Sprint(got) != fmt.Sprint(tl.anyRec[subject]) {
			t.Errorf("who-took %s: %v, the clients got it %v", subject, got, tl.anyRec[subject])
		}
	}
	for _, subject := range keys(tl.anyRec) {
		var wt whoTook
		query(t, &wt, "ledger", "who-took", subject, "--class", "contact", "--ledger", dir)
		got := map[string]int{}
		for _, r := range wt.Rows {
			got[r.Value] = r.Count
			if !slices.Contains(r.Classes, "contact") {
				t.Errorf("who-took %s --class contact: row %+v without contact", subject, r)
			}
		}
		want := tl.contact[subject]
		if want == nil {
			want = map[string]int{}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("who-took %s --class contact: %v, the clients got its contact %v", subject, got, want)
		}
	}

	// reach: authors 200..205, every subset the traffic makes distinct.
	type reachOut struct {
		Reach       int  `json:"reach"`
		Impressions int  `json:"impressions"`
		Exact       bool `json:"exact"`
		Dose        []struct {
			K, People int
		} `json:"dose"`
		Overlap *struct{ A, B, Both, Either int } `json:"overlap"`
	}
	people := func(authors ...string) (map[string]bool, int) {
		set, n := map[string]bool{}, 0
		for _, a := range authors {
			for v := range tl.viewers[a] {
				set[v] = true
			}
			n += tl.impr[a]
		}
		return set, n
	}
	for _, set := range [][]string{{"200"}, {"201", "202"}, {"203"}, {"200", "201", "202", "203", "204", "205"}} {
		var ro reachOut
		query(t, &ro, "reach", "--authors", strings.Join(set, ","), "--ledger", dir, "--dose")
		want, impr := people(set...)
		if ro.Reach != len(want) || ro.Impressions != impr || !ro.Exact {
			t.Errorf("reach %v: %d people, %d impressions; the clients: %d, %d", set, ro.Reach, ro.Impressions, len(want), impr)
		}
		count := map[string]int{}
		for _, a := range set {
			for v := range tl.viewers[a] {
				count[v]++
			}
		}
		if len(ro.Dose) != len(set) {
			t.Errorf("reach %v dose: %d rows, want one per k from 1 to %d", set, len(ro.Dose), len(set))
		}
		for _, d := range ro.Dose {
			n := 0
			for _, c := range count {
				if c >= d.K {
					n++
				}
			}
			if n != d.People {
				t.Errorf("reach %v dose k=%d: %d, the clients: %d", set, d.K, d.People, n)
			}
		}
	}
	file := filepath.Join(t.TempDir(), "other")
	os.WriteFile(file, []byte("204\n205\n"), 0o600)
	var ro reachOut
	query(t, &ro, "reach", "--authors", "200,201", "--overlap", "@"+file, "--ledger", dir)
	a, _ := people("200", "201")
	b, _ := people("204", "205")
	both, either := 0, len(a)
	for v := range b {
		if a[v] {
			both++
		} else {
			either++
		}
	}
	if ro.Overlap == nil || ro.Overlap.A != len(a) || ro.Overlap.B != len(b) || ro.Overlap.Both != both || ro.Overlap.Either != either {
		t.Errorf("overlap: %+v; the clients: %d %d %d %d", ro.Overlap, len(a), len(b), both, either)
	}

	// explain: each refusal, by the request id its body gave.
	if len(tl.refused) != 6 {
		t.Fatalf("%d refusals, want one per account", len(tl.refused))
	}
	for _, id := range tl.refused {
		var x struct {
			Decision, Rule, Facet string
			Status                int
			Identity              map[string]string
		}
		query(t, &x, "explain", id, "--ledger", dir)
		if x.Decision != "refused" || x.Status != 429 || x.Rule != "following-burst" || x.Facet != "account" || x.Identity["account"] == "" {
			t.Errorf("explain %s: %+v", id, x)
		}
	}

	// The admin API answers as the command does.
	var cli, api whoTook
	query(t, &cli, "ledger", "who-took", "25", "--class", "contact", "--ledger", dir)
	resp := adminDo(t, g, "GET", "/v1/ledger/who-took?subject=25&class=contact", "")
	if resp.status != 200 || json.Unmarshal([]byte(resp.body), &api) != nil || fmt.Sprint(api) != fmt.Sprint(cli) {
		t.Errorf("admin who-took: %d %s; the command: %+v", resp.status, resp.body, cli)
	}
	if resp := adminDo(t, g, "GET", "/v1/ledger/took-by?facet=thing&value=1", ""); resp.status != 400 {
		t.Errorf("admin took-by with a bad facet: %d %s", resp.status, resp.body)
	}

	// verify: the open log checks.
	out, err := exec.Command(binPath, "ledger", "verify", "--ledger", dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": ok") {
		t.Errorf("verify: %v\n%s", err, out)
	}
}

// A gateway killed with SIGKILL mid-write keeps everything up to its
// last flush; on restart a torn tail is cut and kept aside, and the
// ledger verifies.
func TestLedgerSurvivesKill(t *testing.T) {
	platform := startPlatform(t, 2000)
	dir := filepath.Join(t.TempDir(), "ledger")
	g := startGateway(t, ledgerConfig(dir, 1000), platform)
	hdr := map[string]string{"Authorization": "Bearer " + token(t, "7")}
	c := clientFrom("127.0.5.1")
	for id := 1; id <= 50; id++ {
		do(t, c, "GET", fmt.Sprintf("%s/v1/users/%d", g.url, id), hdr)
	}
	tl := newTally()
	tl.requests["7"] = 50
	awaitLedger(t, dir, tl) // flushed: the first 50 are on disk

	// Load from four clients (bounded), killed once a reader of the
	// directory sees part of it: what was seen must survive the kill.
	var mu sync.Mutex
	answered := 0
	killed := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := clientFrom(fmt.Sprintf("127.0.5.%d", w+2))
			for i := 0; i < 5000; i++ {
				select {
				case <-killed:
					return
				default:
				}
				resp, err := c.Get(fmt.Sprintf("%s/v1/users/%d", g.url, 100+w*5000+i))
				if err != nil {
					return // the gateway is gone
				}
				resp.Body.Close()
				mu.Lock()
				answered++
				mu.Unlock()
			}
		}(w)
	}
	loadSeen := func() int {
		n := 0
		for w := 0; w < 4; w++ {
			var tb tookBy
			query(t, &tb, "ledger", "took-by", "ip", fmt.Sprintf("127.0.5.%d", w+2), "--ledger", dir)
			n += tb.Accesses
		}
		return n
	}
	// Until a reader sees 200 of the load's Accesses, or the load has ended
	// (its 20,000 requests answered, or the gateway gone) without that.
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	seen := 0
	for seen < 200 {
		select {
		case <-finished:
			if seen = loadSeen(); seen < 200 {
				t.Fatalf("the load ended, %d answered, with %d of its Accesses in the ledger", answered, seen)
			}
		default:
			seen = loadSeen()
		}
	}
	g.p.cmd.Process.Signal(syscall.SIGKILL)
	close(killed)
	<-finished
	<-g.p.done

	// A write cut short by the kill: a frame whose length promises more,
	// on the last log. (Not "the one log": at 100 Accesses a part, the
	// kill finds the open part and any full ones whose sealing was still
	// queued, and a run that crosses an hour leaves the past hour's too;
	// the restart reopens the newest and seals the rest.)
	logs, _ := filepath.Glob(filepath.Join(dir, "*.wal")) // sorted: part order
	if len(logs) == 0 {
		t.Fatal("no log left by the kill, want at least the open part's")
	}
	last := logs[len(logs)-1]
	torn := []byte{200, 0, 0, 0, 1, 2, 3, 4, 3, 9, 9}
	f, _ := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
	f.Write(torn)
	f.Close()

	g2 := startGateway(t, ledgerConfig(dir, 1000), platform)
	do(t, c, "GET", g2.url+"/v1/users/5000", hdr)
	tl.requests["7"] = 51
	awaitLedger(t, dir, tl) // all of account 7's, before and after the kill

	// The parts full at the kill are sealed by the restarted writer: their
	// logs go once their partitions are written.
	for i := 0; ; i++ {
		left := 0
		for _, l := range logs[:len(logs)-1] {
			if _, err := os.Stat(l); err == nil {
				left++
			}
		}
		if left == 0 {
			break
		}
		if i == 200 {
			t.Fatalf("%d of the %d full parts' logs still unsealed 10 s after the restart", left, len(logs)-1)
		}
		time.Sleep(50 * time.Millisecond)
	}

	aside, _ := filepath.Glob(last + ".torn-*")
	if len(aside) != 1 {
		t.Fatalf("torn tail kept in %v", aside)
	}
	if b, _ := os.ReadFile(aside[0]); !bytes.Equal(b, torn) {
		t.Fatalf("kept %v, cut %v", b, torn)
	}
	// The load's Accesses: at least what a reader saw before the kill, at
	// most what was sent (answered, and one in flight per client).
	after := loadSeen()
	if after < seen || after > answered+4 {
		t.Fatalf("%d Accesses of the load in the ledger after the kill; %d seen before it, %d answered", after, seen, answered)
	}
	t.Logf("load: %d answered before the kill, %d seen in the ledger before it, %d after the restart; %d logs at the kill", answered, seen, after, len(logs))
	out, err := exec.Command(binPath, "ledger", "verify", "--ledger", dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": ok") {
		t.Fatalf("verify after the kill: %v\n%s", err, out)
	}
}

// While the gateway writes, the admin API's ledger queries (read through
// the server's ledger.Cache: only what was appended since the last query)
// see every answered request soon after its answer (issue 21: within a
// second; the writer flushes every 100 ms, and a reader sees all that was
// flushed before it opened), and answer as the command, which reads the
// open hour whole, does.
func TestAdminLedgerFollowsTheWriter(t *testing.T) {
	platform := startPlatform(t, 2000)
	dir := filepath.Join(t.TempDir(), "ledger")
	g := startGateway(t, ledgerConfig(dir, 15), platform)
	c := clientFrom("127.0.4.9")
	hdr := map[string]string{"Authorization": "Bearer " + token(t, "9")}
	var worst time.Duration
	for i := range 40 {
		path := fmt.Sprintf("/v1/users/%d", 300+i)
		if i%4 == 3 {
			path = fmt.Sprintf("/v1/users/%d/followers", 300+i)
		}
		if a := do(t, c, "GET", g.url+path, hdr); a.status != 200 {
			t.Fatalf("%s: %d %s", path, a.status, a.body)
		}
		answered := time.Now()
		for try := 0; ; try++ {
			var tb tookBy
			resp := adminDo(t, g, "GET", "/v1/ledger/took-by?facet=account&value=9", "")
			if resp.status != 200 || json.Unmarshal([]byte(resp.body), &tb) != nil {
				t.Fatalf("admin took-by: %d %s", resp.status, resp.body)
			}
			if tb.Accesses == i+1 {
				worst = max(worst, time.Since(answered))
				break
			}
			if try == 250 { // 5 s
				t.Fatalf("request %d: the admin API's took-by counts %d Accesses 5 s after the answer", i+1, tb.Accesses)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Logf("the admin API saw each answer at most %v after it (polled every 20 ms)", worst)
	var cli, api tookBy
	query(t, &cli, "ledger", "took-by", "account", "9", "--ledger", dir)
	resp := adminDo(t, g, "GET", "/v1/ledger/took-by?facet=account&value=9", "")
	if json.Unmarshal([]byte(resp.body), &api) != nil || fmt.Sprint(api) != fmt.Sprint(cli) || cli.Accesses != 40 {
		t.Errorf("admin took-by %+v; the command %+v (40 Accesses)", api, cli)
	}
	for _, subject := range []string{"300", "303", "339"} {
		var cw, aw whoTook
		query(t, &cw, "ledger", "who-took", subject, "--ledger", dir)
		resp := adminDo(t, g, "GET", "/v1/ledger/who-took?subject="+subject, "")
		if json.Unmarshal([]byte(resp.body), &aw) != nil || fmt.Sprint(aw) != fmt.Sprint(cw) {
			t.Errorf("who-took %s: admin %+v; the command %+v", subject, aw, cw)
		}
	}
}
