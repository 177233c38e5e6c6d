package sim

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func readTestTruth(t *testing.T) *Truth {
	t.Helper()
	f, err := os.Open("testdata/truth200.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr, err := ReadTruth(f)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// peerServer is a loopback server that answers the lab's profile, list
// and sign-up routes from the test truth (with per-id overrides, to cause
// masks and false values a gateway or a decoy would) and records every
// peer address it sees.
type peerServer struct {
	*httptest.Server
	mu       sync.Mutex
	peers    map[string]int
	hits     atomic.Int64
	closed   atomic.Bool
	late     atomic.Int64 // requests after closed was set
	override map[int]map[string]any
	status   func(r *http.Request) int
}

func newPeerServer(t *testing.T) *peerServer {
	s := &peerServer{peers: map[string]int{}, override: map[int]map[string]any{}}
	var next atomic.Int64
	next.Store(1000)
	mux := http.NewServeMux()
	write := func(w http.ResponseWriter, code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /v1/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.PathValue("id"))
		if err != nil || id < 1 || id > 200 {
			write(w, 404, map[string]string{"error": "not found"})
			return
		}
		p := map[string]any{"id": strconv.Itoa(id), "username": fmt.Sprintf("user%d", id), "full_name": "User Name",
			"follower_count": 3, "email": fmt.Sprintf("u%d@example.com", id), "phone": fmt.Sprintf("+4930%07d", id)}
		for k, v := range s.override[id] {
			if v == "<delete>" {
				delete(p, k)
			} else {
				p[k] = v
			}
		}
		write(w, 200, p)
	})
	list := func(w http.ResponseWriter, r *http.Request) {
		var us []map[string]any
		for i := 1; i <= 20; i++ {
			us = append(us, map[string]any{"id": strconv.Itoa(i), "username": fmt.Sprintf("user%d", i), "full_name": "User Name", "follower_count": 3})
		}
		write(w, 200, map[string]any{"users": us, "next_cursor": nil})
	}
	mux.HandleFunc("GET /v1/users/{id}/followers", list)
	mux.HandleFunc("GET /v1/users/{id}/following", list)
	mux.HandleFunc("GET /v1/search", list)
	mux.HandleFunc("POST /v1/accounts", func(w http.ResponseWriter, r *http.Request) {
		write(w, 201, map[string]any{"account_id": strconv.FormatInt(next.Add(1), 10), "token": "a.b.c", "created": 1})
	})
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.closed.Load() {
			s.late.Add(1)
		}
		s.hits.Add(1)
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		s.mu.Lock()
		s.peers[host]++
		s.mu.Unlock()
		if s.status != nil {
			if c := s.status(r); c != 0 {
				write(w, c, map[string]string{"error": "refused"})
				return
			}
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func run(t *testing.T, o Options) *Report {
	t.Helper()
	if o.Duration == 0 {
		o.Duration = 20 * time.Second
	}
	if o.JWTSecret == "" {
		o.JWTSecret = "test-secret"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := Run(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func pop1(t *testing.T, rep *Report, name string) Population {
	t.Helper()
	for _, p := range rep.Populations {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no population %s in report", name)
	return Population{}
}

func TestAddressesDifferAsTheServerSeesThem(t *testing.T) {
	cases := []struct {
		name     string
		scenario string
		params   map[string]string
		max      int64
		// want distinct peers and the /16 they are all in
		wantPeers int
		prefix    string
	}{
		{"naive: one address", "naive", nil, 60, 1, "127.18."},
		{"ip-rotation: every address", "ip-rotation", map[string]string{"ip-rotation.addrs": "50"}, 150, 50, "127.20."},
		{"account-rotation: its few addresses", "account-rotation",
			map[string]string{"account-rotation.addrs": "3", "account-rotation.accounts": "9"}, 100, 3, "127.21."},
		{"fleet: one address per bot", "fleet", map[string]string{"fleet.bots": "12", "fleet.nets": "4"}, 200, 12, "127.22."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newPeerServer(t)
			run(t, Options{Target: srv.URL, Scenarios: []string{tc.scenario}, Params: tc.params,
				MaxRequests: tc.max, Truth: readTestTruth(t)})
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if len(srv.peers) != tc.wantPeers {
				t.Errorf("server saw %d distinct peers, want %d: %v", len(srv.peers), tc.wantPeers, srv.peers)
			}
			for p := range srv.peers {
				if !strings.HasPrefix(p, tc.prefix) {
					t.Errorf("peer %s not in %s0.0/16", p, tc.prefix)
				}
			}
		})
	}
}

func TestScenariosStopAtTheirCountBound(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			srv := newPeerServer(t)
			params := map[string]string{}
			// Make the paced and slow-browsing populations fast enough to
			// reach the bound.
			switch name {
			case "users":
				params["users.count"] = "30"
				params["users.think"] = "1ms"
				params["users.session-gap"] = "1ms"
			case "nat-users", "searchers":
				params[name+".think"] = "1ms"
				params[name+".session-gap"] = "1ms"
			case "partner":
				params["partner.rate"] = "5000"
			case "slow":
				params["slow.rate"] = "5000"
			}
			const max = 77
			rep := run(t, Options{Target: srv.URL, Scenarios: []string{name}, Params: params, MaxRequests: max,
				Truth: readTestTruth(t)})
			p := pop1(t, rep, name)
			if p.Requests != max {
				t.Errorf("population sent %d requests, want exactly its bound %d", p.Requests, max)
			}
			if h := srv.hits.Load(); h != max {
				t.Errorf("server saw %d requests, want %d", h, max)
			}
		})
	}
}

// Users pause between actions as people do (a minute or more for the
// least active): once the bound is spent the run ends, without waiting
// for each of them to wake up and find it spent.
func TestUsersStopAtTheirCountBoundWhileAsleep(t *testing.T) {
	srv := newPeerServer(t)
	rep := run(t, Options{Target: srv.URL, Scenarios: []string{"users", "nat-users"}, MaxRequests: 5,
		Duration: 10 * time.Minute, Truth: readTestTruth(t)}) // default think and session gaps
	for _, name := range []string{"users", "nat-users"} {
		if p := pop1(t, rep, name); p.Requests != 5 {
			t.Errorf("%s sent %d requests, want its bound 5", name, p.Requests)
		}
	}
	// Without the stop, the sleepers held the run to run()'s 60 s context.
	if rep.Seconds > 30 {
		t.Errorf("the run took %.1fs after its bound was spent", rep.Seconds)
	}
}

func TestRunStopsAtItsTimeBound(t *testing.T) {
	srv := newPeerServer(t)
	rep := run(t, Options{Target: srv.URL, Scenarios: []string{"slow", "users"}, Duration: 300 * time.Millisecond,
		MaxRequests: 1 << 40, Params: map[string]string{"slow.rate": "50", "users.count": "5", "users.think": "10ms", "users.session-gap": "10ms"},
		Truth: readTestTruth(t)})
	// A request already written when the run ended may still be arriving;
	// after that, nothing more may come.
	time.Sleep(200 * time.Millisecond)
	srv.closed.Store(true)
	time.Sleep(300 * time.Millisecond)
	if n := srv.late.Load(); n != 0 {
		t.Errorf("%d requests reached the server well after Run returned", n)
	}
	if p := pop1(t, rep, "slow"); p.Requests == 0 || p.Requests >= 1<<40 {
		t.Errorf("slow sent %d requests in its time bound", p.Requests)
	}
}

func TestHarvestCountsOnlyTrueContactOfRealProfiles(t *testing.T) {
	srv := newPeerServer(t)
	// ids 1..50 are read in order by the naive harvester (bound 50).
	srv.override[3] = map[string]any{"email": nil}                      // masked: not taken
	srv.override[4] = map[string]any{"phone": "<delete>"}               // missing: not taken
	srv.override[5] = map[string]any{"email": "decoy@example.org"}      // false value: not taken
	srv.override[6] = map[string]any{"id": "999999"}                    // not a real profile
	srv.override[7] = map[string]any{"phone": "+4930000000008"}         // another profile's phone
	srv.override[8] = map[string]any{"_warden": map[string]any{"x": 1}} // marked, values true: taken
	rep := run(t, Options{Target: srv.URL, Scenarios: []string{"naive"}, MaxRequests: 50, Truth: readTestTruth(t),
		Params: map[string]string{"naive.workers": "1"}})
	p := pop1(t, rep, "naive")
	if p.Harvested != 45 {
		t.Errorf("harvested %d, want 45 (50 read, 5 not true)", p.Harvested)
	}
	if want := 100 * 45.0 / 200; p.HarvestPct != want {
		t.Errorf("harvest %.3f%%, want %.3f%%", p.HarvestPct, want)
	}
	if p.Masked != 3 { // ids 3, 4 null/missing on real profiles, 8 marked
		t.Errorf("masked %d, want 3", p.Masked)
	}
	if rep.TruthMismatch != 0 || len(rep.Warnings()) != 0 || rep.Void() {
		t.Errorf("truth mismatch %d on the truth's own platform", rep.TruthMismatch)
	}
}

// A platform started with another seed serves other usernames, emails and
// phones under the same ids: no harvest would ever count, so the report
// says the truth is not the target's instead of scoring 0.
func TestTruthOfAnotherPlatformIsReported(t *testing.T) {
	srv := newPeerServer(t)
	for id := 1; id <= 200; id++ {
		srv.override[id] = map[string]any{"username": fmt.Sprintf("other%d", id), "email": fmt.Sprintf("o%d@example.com", id)}
	}
	rep := run(t, Options{Target: srv.URL, Scenarios: []string{"naive"}, MaxRequests: 20, Truth: readTestTruth(t),
		Params: map[string]string{"naive.workers": "1"}})
	if p := pop1(t, rep, "naive"); p.Harvested != 0 || rep.TruthMismatch != 20 {
		t.Fatalf("harvested %d, truth mismatch %d; want 0 and 20", p.Harvested, rep.TruthMismatch)
	}
	var b strings.Builder
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "warning: 20 profiles came with another username") || !rep.Void() {
		t.Fatalf("table without the warning, or the run not void:\n%s", b.String())
	}
}

// Tokens signed with another secret than the platform's: every request is
// a 401, which the score counts as errors; the report says the run
// measured nothing instead of reading as 0% harvested and 0% harmed.
func TestEveryRequestFailedIsReported(t *testing.T) {
	srv := newPeerServer(t)
	srv.status = func(*http.Request) int { return 401 }
	rep := run(t, Options{Target: srv.URL, Scenarios: []string{"naive", "partner"}, MaxRequests: 10, Truth: readTestTruth(t),
		Params: map[string]string{"partner.rate": "5000"}})
	w := strings.Join(rep.Warnings(), "\n")
	for name, hint := range map[string]string{"naive": "is --jwt-secret the platform's", "partner": "is -p partner.key the key"} {
		if !strings.Contains(w, "every request of "+name+" failed (401: 10): "+hint) {
			t.Errorf("no warning for %s in %q", name, w)
		}
	}
	if !rep.Void() {
		t.Error("a run where every request failed is not void")
	}
	srv.status = nil // one population served: the run measured something
	rep = run(t, Options{Target: srv.URL, Scenarios: []string{"naive"}, MaxRequests: 10, Truth: readTestTruth(t)})
	if rep.Void() || len(rep.Warnings()) != 0 {
		t.Errorf("a served run: void %v, warnings %q", rep.Void(), rep.Warnings())
	}
}

func TestHarmCountsRefusalsAndMasks(t *testing.T) {
	cases := []struct {
		name     string
		status   func(r *http.Request) int
		override map[int]map[string]any
		wantAll  bool // every active user harmed
	}{
		{"no interference", nil, nil, false},
		{"every profile masked", nil, allMasked(), true},
		{"every request refused", func(*http.Request) int { return 429 }, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newPeerServer(t)
			srv.status = tc.status
			srv.override = tc.override
			if srv.override == nil {
				srv.override = map[int]map[string]any{}
			}
			rep := run(t, Options{Target: srv.URL, Scenarios: []string{"partner"}, MaxRequests: 400,
				Params: map[string]string{"partner.rate": "5000", "partner.accounts": "10"}, Truth: readTestTruth(t)})
			p := pop1(t, rep, "partner")
			if p.ActiveUsers == 0 {
				t.Fatal("no active users")
			}
			if tc.wantAll {
				if p.HarmedUsers != p.ActiveUsers || p.HarmUsersPct != 100 {
					t.Errorf("harmed %d of %d users (%.1f%%), want all", p.HarmedUsers, p.ActiveUsers, p.HarmUsersPct)
				}
			} else if p.HarmedUsers != 0 || p.HarmedRequests != 0 {
				t.Errorf("harmed %d users, %d requests, want none", p.HarmedUsers, p.HarmedRequests)
			}
		})
	}
}

func allMasked() map[int]map[string]any {
	m := map[int]map[string]any{}
	for i := 1; i <= 200; i++ {
		m[i] = map[string]any{"email": nil, "phone": nil}
	}
	return m
}

func TestOptionsAreChecked(t *testing.T) {
	tr := readTestTruth(t)
	cases := []struct {
		name string
		o    Options
		want string
	}{
		{"remote target", Options{Target: "http://192.0.2.1:80", Duration: time.Second, MaxRequests: 1, Truth: tr}, "loopback"},
		{"no bound", Options{Target: "http://127.0.0.1:1", Duration: time.Second, Truth: tr}, "positive"},
		{"no truth", Options{Target: "http://127.0.0.1:1", Duration: time.Second, MaxRequests: 1}, "truth"},
		{"unknown param", Options{Target: "http://127.0.0.1:1", Duration: time.Second, MaxRequests: 1, Truth: tr,
			Scenarios: []string{"naive"}, Params: map[string]string{"naive.wokers": "3"}}, "unknown parameter naive.wokers"},
		{"bad value", Options{Target: "http://127.0.0.1:1", Duration: time.Second, MaxRequests: 1, Truth: tr,
			Scenarios: []string{"fleet"}, Params: map[string]string{"fleet.accounts": "bought"}}, "one of signup, aged"},
		{"param for another scenario", Options{Target: "http://127.0.0.1:1", Duration: time.Second, MaxRequests: 1, Truth: tr,
			Scenarios: []string{"naive"}, Params: map[string]string{"fleet.bots": "3"}}, "names no scenario"},
		{"nothing listening", Options{Target: "http://127.0.0.1:1", Duration: time.Second, MaxRequests: 1, Truth: tr,
			Scenarios: []string{"naive"}}, "does not answer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(context.Background(), tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestParseScenarios(t *testing.T) {
	cases := []struct {
		in, want, err string
	}{
		{"users,partner,fleet", "users,partner,fleet", ""},
		{"all", strings.Join(Names(), ","), ""},
		{"naive, naive ,slow", "naive,slow", ""},
		{"nave", "", "unknown scenario"},
		{"", "", "no scenario"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseScenarios(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || strings.Join(got, ",") != tc.want {
				t.Fatalf("got %v, %v; want %s", got, err, tc.want)
			}
		})
	}
}

func TestReadTruthRejectsBadInput(t *testing.T) {
	cases := map[string]string{
		"bad header": "a,b,c,d\n1,u,e,p\n",
		"bad id":     "id,username,email,phone\nx,u,e,p\n",
		"gap":        "id,username,email,phone\n1,u,e,p\n3,u,e,p\n",
		"short row":  "id,username,email,phone\n1,u,e\n",
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := ReadTruth(strings.NewReader(in)); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestWriteComparisonGolden(t *testing.T) {
	one := 1.5
	reps := []*Report{
		{Populations: []Population{
			{Name: "users", Kind: "legitimate", Requests: 100, ActiveUsers: 10},
			{Name: "naive", Kind: "harvester", Requests: 500, Harvested: 500, HarvestPct: 0.5},
		}},
		{Populations: []Population{
			{Name: "naive", Kind: "harvester", Requests: 900, Harvested: 21, HarvestPct: 0.021, FirstRefusal: &one},
			{Name: "users", Kind: "legitimate", Requests: 98, ActiveUsers: 10, HarmedUsers: 1, HarmUsersPct: 10, HarmRequestsPct: 2.041},
		}},
	}
	var b strings.Builder
	if err := WriteComparison(&b, []string{"without", "with"}, reps); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/comparison.golden.md")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		os.WriteFile("testdata/comparison.golden.md", []byte(b.String()), 0o644)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("comparison table:\n%s\nwant:\n%s", b.String(), want)
	}
}

// A score of zero is a score: the JSON keeps a harvester's harvest and a
// legitimate population's harm when they are 0, and leaves out the other
// kind's fields.
func TestReportJSONKeepsZeroScores(t *testing.T) {
	rep := Report{Populations: []Population{
		{Name: "account-rotation", Kind: "harvester", Accounts: 20},
		{Name: "naive", Kind: "harvester"},
		{Name: "nat-users", Kind: "legitimate", Group: "shared address"},
	}}
	var b strings.Builder
	if err := rep.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got struct{ Populations []map[string]any }
	if err := json.Unmarshal([]byte(b.String()), &got); err != nil {
		t.Fatal(err)
	}
	want := []struct{ has, hasNot []string }{
		{[]string{"harvested", "harvest_pct", "accounts", "harvest_per_account", "first_refusal_s"}, []string{"harm_users_pct", "users"}},
		{[]string{"harvested", "harvest_pct"}, []string{"accounts", "harvest_per_account", "harm_users_pct"}},
		{[]string{"users", "active_users", "harmed_users", "harmed_requests", "harm_users_pct", "harm_requests_pct", "group"}, []string{"harvested", "harvest_pct"}},
	}
	for i, w := range want {
		p := got.Populations[i]
		for _, k := range w.has {
			if _, ok := p[k]; !ok {
				t.Errorf("%s: no %q in %v", p["name"], k, p)
			}
		}
		for _, k := range w.hasNot {
			if _, ok := p[k]; ok {
				t.Errorf("%s: %q present in %v", p["name"], k, p)
			}
		}
	}
}

// An https target (a gateway terminating TLS) is verified with the roots
// given; without them the run says why every request failed.
func TestHTTPSTarget(t *testing.T) {
	srv := newPeerServer(t)
	ts := httptest.NewTLSServer(srv.Config.Handler)
	t.Cleanup(ts.Close)
	o := Options{Target: ts.URL, Scenarios: []string{"naive"}, MaxRequests: 5, Truth: readTestTruth(t),
		Params: map[string]string{"naive.workers": "1"}}
	rep := run(t, o)
	if w := strings.Join(rep.Warnings(), "\n"); !rep.Void() || !strings.Contains(w, "certificate") {
		t.Fatalf("untrusted certificate: void %v, warnings %q", rep.Void(), w)
	}
	o.RootCAs = x509.NewCertPool()
	o.RootCAs.AddCert(ts.Certificate())
	rep = run(t, o)
	if p := pop1(t, rep, "naive"); p.Harvested != 5 || p.Errors != 0 {
		t.Fatalf("trusted: harvested %d, errors %d (%s)", p.Harvested, p.Errors, p.FirstError)
	}
}

// A new user whose sign-up is refused is harmed, as one refused anything
// else is.
func TestRefusedSignUpIsHarm(t *testing.T) {
	srv := newPeerServer(t)
	srv.status = func(r *http.Request) int {
		if r.Method == "POST" {
			return 429
		}
		return 0
	}
	rep := run(t, Options{Target: srv.URL, Scenarios: []string{"users"}, MaxRequests: 100, Truth: readTestTruth(t),
		Params: map[string]string{"users.count": "10", "users.signups": "1", "users.think": "5ms", "users.session-gap": "5ms"}})
	p := pop1(t, rep, "users")
	if p.ActiveUsers == 0 || p.HarmedUsers != p.ActiveUsers || p.Status["429"] != p.Requests {
		t.Errorf("harmed %d of %d active users; status %v", p.HarmedUsers, p.ActiveUsers, p.Status)
	}
}
