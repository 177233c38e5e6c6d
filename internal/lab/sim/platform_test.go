package sim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/lab/platform"
)

// realPlatform serves the real lab platform on loopback and returns its
// ground truth.
func realPlatform(t *testing.T, profiles int, seed int64, secret string) (*httptest.Server, *Truth) {
	t.Helper()
	p, err := platform.New(platform.Options{Profiles: profiles, Seed: seed, JWTSecret: secret})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler())
	t.Cleanup(srv.Close)
	var b bytes.Buffer
	if err := platform.WriteTruth(&b, profiles, seed); err != nil {
		t.Fatal(err)
	}
	tr, err := ReadTruth(&b)
	if err != nil {
		t.Fatal(err)
	}
	return srv, tr
}

func TestScoreIsExactOnTheRealPlatform(t *testing.T) {
	const n = 500
	srv, tr := realPlatform(t, n, 7, "lab-secret")
	for _, workers := range []string{"1", "8"} {
		t.Run("workers "+workers, func(t *testing.T) {
			rep := run(t, Options{Target: srv.URL, Scenarios: []string{"naive"}, MaxRequests: 37, Truth: tr,
				JWTSecret: "lab-secret", Params: map[string]string{"naive.workers": workers}})
			p := pop1(t, rep, "naive")
			if p.Harvested != 37 || p.HarvestPct != 100*37.0/n {
				t.Errorf("harvested %d (%.3f%%), want exactly 37 (%.3f%%)", p.Harvested, p.HarvestPct, 100*37.0/n)
			}
			if p.Errors != 0 || p.Refused != 0 || p.Masked != 0 {
				t.Errorf("errors %d, refused %d, masked %d; status %v", p.Errors, p.Refused, p.Masked, p.Status)
			}
		})
	}
}

func TestWrongSeedHarvestsNothing(t *testing.T) {
	// Truth of another seed: the same ids, other people. Nothing counts.
	srv, _ := realPlatform(t, 300, 1, "lab-secret")
	_, other := realPlatform(t, 300, 2, "lab-secret")
	rep := run(t, Options{Target: srv.URL, Scenarios: []string{"naive"}, MaxRequests: 50, Truth: other, JWTSecret: "lab-secret"})
	if p := pop1(t, rep, "naive"); p.Harvested != 0 {
		t.Errorf("harvested %d with the wrong truth, want 0", p.Harvested)
	}
}

// Every scenario speaks the platform's API: its tokens are accepted, its
// paths exist, harvesters take profiles and nobody legitimate is harmed.
func TestEveryScenarioAgainstTheRealPlatform(t *testing.T) {
	srv, tr := realPlatform(t, 2000, 3, "lab-secret")
	rep := run(t, Options{Target: srv.URL, Scenarios: Names(), MaxRequests: 300, Duration: 20 * time.Second,
		Truth: tr, JWTSecret: "lab-secret", Params: map[string]string{
			"users.count": "50", "users.think": "5ms", "users.session-gap": "5ms",
			"partner.rate": "2000", "slow.rate": "2000",
			"account-rotation.accounts": "20", "fleet.bots": "20",
			"nat-users.think": "5ms", "nat-users.session-gap": "5ms", "searchers.think": "5ms", "searchers.session-gap": "5ms",
			"cohort.accounts": "10",
		}})
	for _, p := range rep.Populations {
		t.Run(p.Name, func(t *testing.T) {
			if p.Requests != 300 {
				t.Errorf("%d requests, want its bound 300", p.Requests)
			}
			if p.Errors != 0 || p.Refused != 0 || p.Masked != 0 {
				t.Errorf("errors %d, refused %d, masked %d; status %v", p.Errors, p.Refused, p.Masked, p.Status)
			}
			if _, ok := p.Status["401"]; ok {
				t.Errorf("tokens refused: %v", p.Status)
			}
			if p.Kind == "harvester" && p.Harvested == 0 {
				t.Errorf("harvested nothing; status %v", p.Status)
			}
			if p.Kind == "legitimate" && (p.HarmedUsers != 0 || p.ActiveUsers == 0) {
				t.Errorf("%d of %d active users harmed", p.HarmedUsers, p.ActiveUsers)
			}
		})
	}
}

// New users sign up (POST /v1/accounts) from their own address and browse
// as the account they got, as people who just joined do: a gateway's rules
// for young accounts reach the harm score.
func TestNewUsersSignUpAndBrowseAsTheirAccount(t *testing.T) {
	const n = 2000
	plat, tr := realPlatform(t, n, 3, "lab-secret")
	var mu sync.Mutex
	signups := map[string]int{}      // peer address -> sign-ups answered 201
	newAccounts := map[string]bool{} // accounts above n seen on a GET
	inner := plat.Config.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		inner.ServeHTTP(rec, r)
		mu.Lock()
		if r.Method == "POST" && r.URL.Path == "/v1/accounts" && rec.Code == 201 {
			host, _, _ := net.SplitHostPort(r.RemoteAddr)
			signups[host]++
		}
		if sub := tokenSub(r.Header.Get("Authorization")); r.Method == "GET" && sub > n {
			newAccounts[strconv.Itoa(sub)] = true
		}
		mu.Unlock()
		maps.Copy(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	}))
	defer srv.Close()
	rep := run(t, Options{Target: srv.URL, Scenarios: []string{"users"}, MaxRequests: 600, Duration: 20 * time.Second,
		Truth: tr, JWTSecret: "lab-secret", Params: map[string]string{
			"users.count": "40", "users.signups": "0.5", "users.think": "5ms", "users.session-gap": "5ms"}})
	p := pop1(t, rep, "users")
	if p.Errors != 0 || p.HarmedUsers != 0 {
		t.Errorf("errors %d, harmed %d; status %v", p.Errors, p.HarmedUsers, p.Status)
	}
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for host, c := range signups {
		total += c
		if !strings.HasPrefix(host, "127.16.") {
			t.Errorf("sign-up from %s, not from a user's address", host)
		}
	}
	if total == 0 || total >= 40 {
		t.Fatalf("%d sign-ups by 40 users with users.signups 0.5, want some, not all", total)
	}
	if len(newAccounts) != total {
		t.Errorf("%d new accounts browsed, want the %d signed up", len(newAccounts), total)
	}
}

// tokenSub is the sub claim of a bearer token, as a number (0 if none).
func tokenSub(auth string) int {
	parts := strings.Split(strings.TrimPrefix(auth, "Bearer "), ".")
	if len(parts) != 3 {
		return 0
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return 0
	}
	var c struct {
		Sub string `json:"sub"`
	}
	if json.Unmarshal(b, &c) != nil {
		return 0
	}
	n, _ := strconv.Atoi(c.Sub)
	return n
}

// A truth of more profiles than the platform holds (lab-sim's default
// --profiles against a smaller platform) agrees on every profile the
// platform has, so no username differs; the ids it lacks are 404. The
// harvest is a share of the wrong N, so the report says so and is void.
func TestTruthOfALargerPlatformIsReported(t *testing.T) {
	srv, _ := realPlatform(t, 300, 1, "lab-secret")
	_, larger := realPlatform(t, 1000, 1, "lab-secret")
	rep := run(t, Options{Target: srv.URL, Scenarios: []string{"naive"}, MaxRequests: 400, Truth: larger, JWTSecret: "lab-secret",
		Params: map[string]string{"naive.account": "8", "naive.rate": "0"}})
	if p := pop1(t, rep, "naive"); p.Harvested != 300 {
		t.Fatalf("harvested %d, want the platform's 300; status %v", p.Harvested, p.Status)
	}
	if rep.TruthMissing != 100 || !rep.Void() {
		t.Errorf("truth missing %d (want the 100 ids past the platform's 300), void %v", rep.TruthMissing, rep.Void())
	}
	if w := strings.Join(rep.Warnings(), "\n"); !strings.Contains(w, "100 look-ups of profiles the ground truth holds found none") {
		t.Errorf("warnings %q", w)
	}
}

// The same when the smaller platform has had sign-ups: the ids past its
// last profile are accounts without contact, not 404.
func TestTruthOfALargerPlatformIsReportedAfterSignUps(t *testing.T) {
	srv, _ := realPlatform(t, 300, 1, "lab-secret")
	_, larger := realPlatform(t, 1000, 1, "lab-secret")
	for range 20 {
		resp, err := http.Post(srv.URL+"/v1/accounts", "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	rep := run(t, Options{Target: srv.URL, Scenarios: []string{"naive"}, MaxRequests: 310, Truth: larger, JWTSecret: "lab-secret",
		Params: map[string]string{"naive.account": "8", "naive.rate": "0"}})
	if rep.TruthMissing != 10 || !rep.Void() {
		t.Errorf("truth missing %d (want the 10 sign-ups past the platform's 300), void %v", rep.TruthMissing, rep.Void())
	}
}

// Tokens for accounts past the platform's last profile are refused (401)
// as tokens of another secret are: the warning names both causes.
func TestEveryRequestRefusedNamesProfilesToo(t *testing.T) {
	srv, _ := realPlatform(t, 300, 1, "lab-secret")
	_, larger := realPlatform(t, 1000, 1, "lab-secret")
	rep := run(t, Options{Target: srv.URL, Scenarios: []string{"naive"}, MaxRequests: 20, Truth: larger, JWTSecret: "lab-secret",
		Params: map[string]string{"naive.account": "800", "naive.rate": "0"}})
	if w := strings.Join(rep.Warnings(), "\n"); !strings.Contains(w, "--jwt-secret") || !strings.Contains(w, "--profiles") {
		t.Errorf("warnings %q, want --jwt-secret and --profiles named", w)
	}
}
