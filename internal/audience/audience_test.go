package audience

import (
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/lab/platform"
	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/privacy"
)

const secret = "audience-test-secret-0123456789abcdef"

// labPlatform is the real lab platform and a token it accepts.
func labPlatform(t *testing.T) (*platform.Platform, string) {
	t.Helper()
	p, err := platform.New(platform.Options{Profiles: 3000, Seed: 7, JWTSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := platform.MintToken(secret, "1", time.Now().Add(-24*time.Hour), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return p, tok
}

// lab serves the real lab platform in process, on loopback.
func lab(t *testing.T) (*platform.Platform, *Lists) {
	t.Helper()
	p, tok := labPlatform(t)
	srv := httptest.NewServer(p.Handler())
	t.Cleanup(srv.Close)
	l := &Lists{Upstream: srv.URL, NextCursor: "next_cursor", PageSize: 50, Credential: "Bearer " + tok, MaxPages: 10000}
	if err := l.FromRoute("GET /v1/users/{id}/followers", "id", []string{"$.users[*]"}, "id", "cursor"); err != nil {
		t.Fatal(err)
	}
	return p, l
}

// truth is the platform's own count: distinct followers of accounts, and
// how many follow at least k of them.
func truth(p *platform.Platform, accounts []string) (int, map[int]int) {
	k := map[int32]int{}
	for _, a := range accounts {
		id, _ := strconv.Atoi(a)
		for _, f := range p.Followers(id) {
			k[f]++
		}
	}
	atLeast := map[int]int{}
	for _, n := range k {
		for i := 1; i <= n; i++ {
			atLeast[i]++
		}
	}
	return len(k), atLeast
}

// popular returns n accounts with many followers (the graph is heavy
// tailed), so the lists span several pages.
func popular(p *platform.Platform, n int) []string {
	var out []string
	for id := 1; id <= p.Profiles() && len(out) < n; id++ {
		if len(p.Followers(id)) > 120 {
			out = append(out, strconv.Itoa(id))
		}
	}
	return out
}

func TestAudienceMatchesThePlatform(t *testing.T) {
	p, l := lab(t)
	accts := popular(p, 4)
	if len(accts) < 4 {
		t.Fatalf("only %d accounts with over 120 followers", len(accts))
	}
	others := []string{"5", "6", "7"}
	res, err := Run(t.Context(), l, Query{Accounts: accts, Overlap: others, Dose: true})
	if err != nil {
		t.Fatal(err)
	}
	want, atLeast := truth(p, accts)
	if res.Audience != want || !res.Exact {
		t.Fatalf("audience %d, the platform says %d", res.Audience, want)
	}
	if len(res.Dose) != len(accts) {
		t.Errorf("dose has %d rows, want one per k from 1 to %d", len(res.Dose), len(accts))
	}
	for _, d := range res.Dose {
		if d.People != atLeast[d.K] {
			t.Errorf("dose k=%d: %d, want %d", d.K, d.People, atLeast[d.K])
		}
	}
	wantB, _ := truth(p, others)
	either, _ := truth(p, append(append([]string{}, accts...), others...))
	if o := res.Overlap; o.A != want || o.B != wantB || o.Either != either || o.Both != want+wantB-either {
		t.Errorf("overlap %+v, want a %d b %d either %d", o, want, wantB, either)
	}
	if res.Pages < 4*3 || res.Requests != res.Pages {
		t.Errorf("%d pages in %d requests for lists of over 120 at 50 a page", res.Pages, res.Requests)
	}
	// The same question with DP at a large epsilon (noise zero in any run):
	// the dose and overlap summed from the cells are the exact ones.
	m, _ := privacy.ParseMechanism("100", "")
	budgets := privacy.NewBudgets(t.TempDir(), func(string) *big.Rat { return big.NewRat(1e6, 1) })
	pr, err := RunPrivate(t.Context(), l, Query{Accounts: accts, Overlap: others, Dose: true}, privacy.Request{Mechanism: m, Researcher: "r", Budgets: budgets, Query: "q"})
	if err != nil {
		t.Fatal(err)
	}
	if pr.Audience != int64(want) || pr.Exact || pr.RemainingBudget == "" || pr.RemainingBudget != pr.Budget.Remaining {
		t.Errorf("private audience %d, budget %+v; want %d", pr.Audience, pr.Budget, want)
	}
	// Cells: k 0..4 by in the other set or not, less the empty one.
	if len(pr.Dose) != 4 || pr.Privacy.Cells != 9 || pr.Privacy.Guarantee == "" {
		t.Errorf("private dose %+v, note %+v; want 4 rows, 9 cells", pr.Dose, pr.Privacy)
	}
	// Without a ledger the guarantee is of the follower lists alone.
	if g := pr.Privacy.Guarantee; !strings.Contains(g, "is in the follower lists, with every follow of theirs") || strings.Contains(g+pr.Privacy.Sensitivity, "ledger") || strings.Contains(g+pr.Privacy.Sensitivity, "Access") {
		t.Errorf("guarantee without a ledger: %q (%q)", g, pr.Privacy.Sensitivity)
	}
	for _, d := range pr.Dose {
		if d.People != int64(atLeast[d.K]) || d.Interval.Low > d.People || d.Interval.High < d.People {
			t.Errorf("private dose k=%d: %d %+v, want %d", d.K, d.People, d.Interval, atLeast[d.K])
		}
	}
	if o := pr.Overlap; o == nil || o.A != int64(want) || o.B != int64(wantB) || o.Either != int64(either) || o.Both != int64(want+wantB-either) ||
		len(o.Intervals) != 4 || o.Intervals["a"] != pr.Interval {
		t.Errorf("private overlap %+v, want a %d b %d either %d", o, want, wantB, either)
	}
}

func TestAudienceSplitsReach(t *testing.T) {
	p, l := lab(t)
	accts := popular(p, 2)
	fol := p.Followers(mustAtoi(accts[0]))
	dir := t.TempDir()
	t0 := time.Now().Add(-time.Minute)
	lg, err := ledger.Open(ledger.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	// Ten followers and five people who follow neither account saw the
	// accounts' posts; one follower saw another author's.
	see := func(viewer string, author string) {
		e := &ledger.Entry{Time: t0, Route: "GET /v1/feed", Status: 200, Authors: []string{author}}
		e.Identity[identify.FacetAccount-1] = viewer
		e.Records = []ledger.Record{{ID: "post-" + author}}
		lg.Add(e)
	}
	for _, f := range fol[:10] {
		see(fmt.Sprint(f), accts[0])
	}
	see(fmt.Sprint(fol[10]), "999999")
	follows := map[string]bool{}
	for _, a := range accts {
		for _, f := range p.Followers(mustAtoi(a)) {
			follows[fmt.Sprint(f)] = true
		}
	}
	strangers := 0
	for id := p.Profiles(); strangers < 5; id-- {
		if !follows[fmt.Sprint(id)] {
			see(fmt.Sprint(id), accts[1])
			strangers++
		}
	}
	lg.Close()
	res, err := Run(t.Context(), l, Query{Accounts: accts, Ledger: Dir(dir)})
	if err != nil {
		t.Fatal(err)
	}
	if s := res.Reach; s == nil || s.Reach != 15 || s.Followers != 10 || s.NonFollowers != 5 {
		t.Fatalf("split %+v, want reach 15: 10 followers, 5 not", s)
	}
	// The same question with DP at a large epsilon (noise zero in any run)
	// gives the same figures from its cells.
	m, _ := privacy.ParseMechanism("100", "")
	budgets := privacy.NewBudgets(t.TempDir(), func(string) *big.Rat { return big.NewRat(1e6, 1) })
	pr, err := RunPrivate(t.Context(), l, Query{Accounts: accts, Ledger: Dir(dir)}, privacy.Request{Mechanism: m, Researcher: "r", Budgets: budgets, Query: "q"})
	if err != nil {
		t.Fatal(err)
	}
	if pr.Audience != int64(res.Audience) || pr.Reach.Reach != 15 || pr.Reach.Followers != 10 || pr.Reach.NonFollowers != 5 || pr.Exact ||
		pr.Privacy.Cells != 3 { // (k, reached): (0, 1), (1, 0), (1, 1)
		t.Fatalf("private %+v %+v, exact %d", pr, pr.Reach, res.Audience)
	}
	if g := pr.Privacy.Guarantee; !strings.Contains(g, "is in the follower lists and the ledger, with every follow and every Access of theirs") {
		t.Errorf("guarantee with the ledger: %q", g)
	}
	// Asked again: the same answer, free, without paging.
	before := l.Requests
	again, err := RunPrivate(t.Context(), l, Query{Accounts: accts, Ledger: Dir(dir)}, privacy.Request{Mechanism: m, Researcher: "r", Budgets: budgets, Query: "q"})
	if err != nil || !again.Budget.Repeat || again.Audience != pr.Audience || l.Requests != before {
		t.Fatalf("repeat: %+v, %v, %d requests", again.Budget, err, l.Requests-before)
	}
}

func TestAudienceRefusesPastMaxPages(t *testing.T) {
	p, l := lab(t)
	l.MaxPages = 2
	_, err := Run(t.Context(), l, Query{Accounts: popular(p, 1)})
	if err == nil {
		t.Fatal("a list of over 120 at 50 a page counted in 2 pages")
	}
	l.MaxPages, l.Credential = 100, "Bearer nope"
	if _, err := Run(t.Context(), l, Query{Accounts: []string{"1"}}); err == nil {
		t.Fatal("a bad credential counted")
	}
	if _, err := Run(t.Context(), l, Query{}); !errors.Is(err, errNoAccounts) {
		t.Fatalf("no accounts: %v", err)
	}
}

func mustAtoi(s string) int { n, _ := strconv.Atoi(s); return n }

// An account named in both sets (and twice in one) is paged once and
// counted in both: the same answer as the platform's, in the pages of
// the distinct accounts.
func TestAudiencePagesSharedAccountOnce(t *testing.T) {
	p, l := lab(t)
	accts := popular(p, 3)
	if len(accts) < 3 {
		t.Fatalf("only %d accounts with over 120 followers", len(accts))
	}
	// The distinct accounts alone: the pages they take.
	alone, err := Run(t.Context(), l, Query{Accounts: append(append([]string{}, accts...), "5")})
	if err != nil {
		t.Fatal(err)
	}
	l.Requests = 0
	others := []string{accts[1], "5", accts[1]}
	res, err := Run(t.Context(), l, Query{Accounts: append(append([]string{}, accts...), accts[0]), Overlap: others, Dose: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Pages != alone.Pages || res.Requests != alone.Requests || len(res.Lists) != 4 {
		t.Errorf("%d pages in %d requests, %d lists; the 4 distinct accounts take %d pages", res.Pages, res.Requests, len(res.Lists), alone.Pages)
	}
	want, atLeast := truth(p, accts)
	wantB, _ := truth(p, []string{accts[1], "5"})
	either, _ := truth(p, append(append([]string{}, accts...), "5"))
	if res.Audience != want {
		t.Errorf("audience %d, the platform says %d", res.Audience, want)
	}
	if o := res.Overlap; o.A != want || o.B != wantB || o.Either != either || o.Both != want+wantB-either {
		t.Errorf("overlap %+v, want a %d b %d either %d", o, want, wantB, either)
	}
	for _, d := range res.Dose {
		if d.People != atLeast[d.K] {
			t.Errorf("dose k=%d: %d, want %d", d.K, d.People, atLeast[d.K])
		}
	}
}

// A minted credential is minted again before it expires: a run paging for
// longer than a token lives (here 300 ms, at 20 pages a second over about
// a second of pages) sends no expired one, which the upstream refuses.
func TestAudienceMintsBeforeExpiry(t *testing.T) {
	p, tok := labPlatform(t)
	var mu sync.Mutex
	expires := map[string]time.Time{} // credential -> its expiry
	h := p.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		exp, ok := expires[r.Header.Get("Authorization")]
		mu.Unlock()
		if !ok || !time.Now().Before(exp) {
			http.Error(w, `{"error":"token expired"}`, http.StatusUnauthorized)
			return
		}
		r.Header.Set("Authorization", "Bearer "+tok)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	const life = 300 * time.Millisecond
	minted := 0
	l := &Lists{Upstream: srv.URL, NextCursor: "next_cursor", PageSize: 10, Rate: 20, MaxPages: 10000,
		Mint: func(now time.Time) (string, time.Time, error) {
			mu.Lock()
			defer mu.Unlock()
			minted++
			c := fmt.Sprintf("Bearer minted-%d", minted)
			expires[c] = now.Add(life)
			return c, now.Add(life), nil
		}}
	if err := l.FromRoute("GET /v1/users/{id}/followers", "id", []string{"$.users[*]"}, "id", "cursor"); err != nil {
		t.Fatal(err)
	}
	accts := popular(p, 1)
	res, err := Run(t.Context(), l, Query{Accounts: accts})
	if err != nil {
		t.Fatalf("paging for longer than a credential lives: %v", err)
	}
	if want, _ := truth(p, accts); res.Audience != want {
		t.Errorf("audience %d, the platform says %d", res.Audience, want)
	}
	if res.Requests < 16 || minted < 3 {
		t.Errorf("%d requests at 20 a second, %d credentials of %s minted: the run did not outlive one", res.Requests, minted, life)
	}
}

// A page that fails with a 5xx or no answer in time is asked again, after
// a backoff, up to Retries times: the count is the platform's. One that
// keeps failing fails the count, naming the account, the page and the
// tries; a 4xx is not asked again.
func TestAudienceRetriesAPage(t *testing.T) {
	p, tok := labPlatform(t)
	h := p.Handler()
	var mu sync.Mutex
	asked := map[string]int{} // query -> times asked
	fail := func(n int) bool { return false }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked[r.URL.RawQuery]++
		n := asked[r.URL.RawQuery]
		f := fail
		mu.Unlock()
		if r.URL.Query().Get("cursor") != "" && f(n) { // pages after the first
			switch n {
			case 1:
				http.Error(w, "busy", http.StatusServiceUnavailable)
			case 2:
				time.Sleep(300 * time.Millisecond) // past the client's timeout
			default:
				http.Error(w, "down", http.StatusBadGateway)
			}
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	accts := popular(p, 1)
	want, _ := truth(p, accts)
	for _, tc := range []struct {
		name     string
		fail     func(n int) bool
		err      string
		requests int // at most
	}{
		{"recovers", func(n int) bool { return n <= 2 }, "", 0},
		{"keeps failing", func(n int) bool { return true }, "audience: followers of " + accts[0] + ", page 2: 502 Bad Gateway: down (asked 4 times)", 5},
		{"fails once", func(n int) bool { return n == 1 }, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			clear(asked)
			fail = tc.fail
			mu.Unlock()
			l := &Lists{Upstream: srv.URL, NextCursor: "next_cursor", PageSize: 50, Credential: "Bearer " + tok, MaxPages: 10000,
				Client: &http.Client{Timeout: 100 * time.Millisecond}, Retries: 3, Backoff: 10 * time.Millisecond}
			if err := l.FromRoute("GET /v1/users/{id}/followers", "id", []string{"$.users[*]"}, "id", "cursor"); err != nil {
				t.Fatal(err)
			}
			res, err := Run(t.Context(), l, Query{Accounts: accts})
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				if l.Requests > tc.requests {
					t.Errorf("%d requests, want at most %d", l.Requests, tc.requests)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Audience != want {
				t.Errorf("audience %d, the platform says %d", res.Audience, want)
			}
		})
	}
	// A 4xx is the asker's to fix: asked once.
	l := &Lists{Upstream: srv.URL, NextCursor: "next_cursor", PageSize: 50, Credential: "Bearer nope", MaxPages: 10, Retries: 3, Backoff: 10 * time.Millisecond}
	if err := l.FromRoute("GET /v1/users/{id}/followers", "id", []string{"$.users[*]"}, "id", "cursor"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	fail = func(int) bool { return false }
	mu.Unlock()
	if _, err := Run(t.Context(), l, Query{Accounts: []string{"1"}}); err == nil || l.Requests != 1 {
		t.Errorf("a bad credential: %v after %d requests, want an error after 1", err, l.Requests)
	}
}

// Numeric ids above 2^53 are read as written, not as float64s rounded
// onto one another: 9007199254740993 and 9007199254740992 are two people.
func TestAudienceLargeNumericIDs(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"users":[{"id":9007199254740993},{"id":9007199254740992},{"id":18446744073709551615},{"id":"77"}],"next_cursor":null}`)
	}))
	t.Cleanup(srv.Close)
	l := &Lists{Upstream: srv.URL, NextCursor: "next_cursor", PageSize: 50, MaxPages: 10}
	if err := l.FromRoute("GET /v1/users/{id}/followers", "id", []string{"$.users[*]"}, "id", "cursor"); err != nil {
		t.Fatal(err)
	}
	var got []string
	if _, err := l.Followers(t.Context(), "1", func(id string) { got = append(got, id) }); err != nil {
		t.Fatal(err)
	}
	if want := []string{"9007199254740993", "9007199254740992", "18446744073709551615", "77"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ids %v, want %v", got, want)
	}
}
