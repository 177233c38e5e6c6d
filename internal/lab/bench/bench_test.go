package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/ration"
)

func TestParseWrk(t *testing.T) {
	fixture, err := os.ReadFile("testdata/wrk-output.txt")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		in      string
		want    WrkResult
		wantErr string
	}{
		{name: "real wrk output", in: string(fixture), want: WrkResult{Requests: 8119, DurationUS: 1000663, Bytes: 1347754,
			StatusErrors: 8119, P50US: 295, P90US: 7039, P99US: 35741, MeanUS: 2545.5, MaxUS: 56447}},
		{name: "no result line", in: "Running 1s test @ http://x/\nRequests/sec: 10\n", wantErr: "no result line"},
		{name: "truncated json", in: wrkMarker + `{"requests":1,`, wantErr: "result line"},
		{name: "unknown field", in: wrkMarker + `{"requests":1,"duration_us":5,"extra":1}`, wantErr: "unknown field"},
		{name: "zero duration", in: wrkMarker + `{"requests":1,"duration_us":0}`, wantErr: "no duration"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseWrk([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
	r, _ := ParseWrk(fixture)
	if rps := r.RPS(); rps < 8113 || rps > 8114 {
		t.Errorf("RPS = %v, want 8119 requests / 1.000663 s", rps)
	}
}

// TestWrkScript runs the generated script in a real wrk against a loopback
// server: every request is GET /v1/users/{id} with id in range and one of
// the tokens, and the result line parses.
func TestWrkScript(t *testing.T) {
	bin, ok := lookTool("wrk")
	if !ok {
		t.Fatal("wrk not found: install Debian's wrk (.ci/run does)")
	}
	tokens := []string{"tok-a", "tok-b", "tok-c"}
	const profiles = 50
	var mu sync.Mutex
	var bad []string
	ids, toks := map[int]bool{}, map[string]bool{}
	re := regexp.MustCompile(`^/v1/users/(\d+)$`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		m := re.FindStringSubmatch(r.URL.Path)
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		id := 0
		if m != nil {
			id, _ = strconv.Atoi(m[1])
		}
		if r.Method != http.MethodGet || id < 1 || id > profiles || !slices.Contains(tokens, tok) {
			if len(bad) < 5 {
				bad = append(bad, r.Method+" "+r.URL.Path+" "+tok)
			}
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		ids[id], toks[tok] = true, true
		w.Write([]byte(`{"id":"1"}`))
	}))
	defer srv.Close()
	script, err := WrkScript(tokens, profiles, 256)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "s.lua")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	res, out, err := WrkRun{Binary: bin, Script: path, URL: srv.URL + "/", Threads: 1, Connections: 2, Duration: time.Second}.Run(context.Background())
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 || res.StatusErrors > 0 {
		t.Fatalf("%d bad requests, e.g. %q", res.StatusErrors, bad)
	}
	if res.CPUSeconds <= 0 {
		t.Errorf("wrk's CPU time not read: %v s", res.CPUSeconds)
	}
	if res.Requests < 10 || len(ids) < 10 || len(toks) != len(tokens) {
		t.Fatalf("%d requests over %d ids and %d tokens: want ids spread and every token used", res.Requests, len(ids), len(toks))
	}
	if _, err := WrkScript(nil, 10, 10); err == nil {
		t.Error("a script without tokens was accepted")
	}
}

func loadConfig(t *testing.T, b []byte) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LAB_JWT_SECRET", "lab-secret")
	t.Setenv("WARDEN_ADMIN_TOKEN", "0123456789abcdef0123")
	c, err := config.Load(path)
	if err != nil {
		t.Fatalf("generated config does not load: %v\n%s", err, b)
	}
	return c
}

func TestWardenConfig(t *testing.T) {
	tests := []struct {
		name        string
		opts        WardenOptions
		wantFront   string
		wantBackend config.StoreBackend
		wantErr     bool
	}{
		{name: "fast memory", opts: WardenOptions{Upstream: "http://127.0.0.1:1", Front: "fast", TokenCache: 2000}, wantFront: "fast", wantBackend: config.StoreMemory},
		{name: "std memory", opts: WardenOptions{Upstream: "http://127.0.0.1:1", Front: "std"}, wantFront: "std", wantBackend: config.StoreMemory},
		{name: "fast redis", opts: WardenOptions{Upstream: "http://127.0.0.1:1", Front: "fast", RedisAddr: "127.0.0.1:6390"}, wantFront: "fast", wantBackend: config.StoreRedis},
		{name: "bad front", opts: WardenOptions{Upstream: "http://127.0.0.1:1", Front: "auto"}, wantErr: true},
		{name: "bad upstream", opts: WardenOptions{Upstream: "127.0.0.1:1", Front: "fast"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := WardenConfig(tc.opts)
			if tc.wantErr {
				if err == nil {
					t.Fatal("accepted")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := loadConfig(t, b)
			if c.Front != tc.wantFront || c.Store.Backend != tc.wantBackend {
				t.Errorf("front %q backend %q, want %q %q", c.Front, c.Store.Backend, tc.wantFront, tc.wantBackend)
			}
			if tc.opts.RedisAddr != "" && !slices.Equal(c.Store.Redis.Addrs, []string{tc.opts.RedisAddr}) {
				t.Errorf("redis addrs %v", c.Store.Redis.Addrs)
			}
			if c.Upstream.URL != tc.opts.Upstream {
				t.Errorf("upstream %q", c.Upstream.URL)
			}
			var facets []string
			for _, l := range c.Limits {
				facets = append(facets, l.Facet)
				if l.Rate != HighRate || l.Burst != HighBurst {
					t.Errorf("limit %s: %s burst %d, want %s burst %d", l.Name, l.Rate, l.Burst, HighRate, HighBurst)
				}
			}
			if !slices.Equal(facets, []string{"ip", "account"}) {
				t.Errorf("limit facets %v, want ip and account", facets)
			}
			if len(c.Inspect.Routes) != 0 || len(c.Ration.Budgets) != 0 {
				t.Error("rows d/f must not inspect or ration")
			}
		})
	}
}

func TestDeriveLabConfig(t *testing.T) {
	src, err := os.ReadFile("../../../examples/lab.yaml")
	if err != nil {
		t.Fatal(err)
	}
	orig := loadConfig(t, src)
	b, err := DeriveLabConfig(src, "http://127.0.0.1:4321", "")
	if err != nil {
		t.Fatal(err)
	}
	c := loadConfig(t, b)
	if c.Front != orig.Front {
		t.Errorf("front %q, want the config's own %q", c.Front, orig.Front)
	}
	if b, err := DeriveLabConfig(src, "http://127.0.0.1:4321", "fast"); err != nil || loadConfig(t, b).Front != "fast" {
		t.Errorf("front not set to fast: %v", err)
	}
	if c.Upstream.URL != "http://127.0.0.1:4321" || c.Listen != "127.0.0.1:0" || c.Admin.Listen != "127.0.0.1:0" || c.Log.Level != "warn" {
		t.Errorf("upstream %q listen %q admin %q log %q", c.Upstream.URL, c.Listen, c.Admin.Listen, c.Log.Level)
	}
	if len(c.Limits) != len(orig.Limits) {
		t.Fatalf("%d limits, want %d", len(c.Limits), len(orig.Limits))
	}
	for i, l := range c.Limits {
		if l.Rate != HighRate || l.Burst != HighBurst || l.Name != orig.Limits[i].Name || !slices.Equal(l.Routes, orig.Limits[i].Routes) {
			t.Errorf("limit %d: %+v", i, l)
		}
	}
	// Inspection and budgets are what row (e) measures: kept as written,
	// but for the budgets naming provenances (row e-prov's, with the
	// detector; see TestProvenanceRow).
	want := orig.Ration
	want.Budgets = slices.DeleteFunc(slices.Clone(want.Budgets), func(b ration.BudgetConfig) bool { return len(b.Provenance) > 0 })
	if !reflect.DeepEqual(c.Inspect, orig.Inspect) || !reflect.DeepEqual(c.Ration, want) {
		t.Error("inspect or ration changed")
	}
	for name, bad := range map[string]string{
		"not yaml":     "{",
		"a list":       "- 1\n",
		"no limits":    "listen: x\n",
		"scalar limit": "rate_limits: [1]\n",
	} {
		if _, err := DeriveLabConfig([]byte(bad), "http://127.0.0.1:1", ""); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestOpenLoop(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		if r.Header.Get("Authorization") != "Bearer t" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.URL.Path == "/v1/users/2" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Write([]byte("{}"))
	}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	reqs := []Request{{"/v1/users/1", "t"}, {"/v1/users/2", "t"}}
	ctx := context.Background()

	t.Run("stops at count", func(t *testing.T) {
		served.Store(0)
		res, err := OpenLoop{Addr: addr, Rate: 2000, Count: 200, MaxDuration: 30 * time.Second, Conns: 4, Requests: reqs}.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.Sent != 200 || served.Load() != 200 || res.Truncated {
			t.Fatalf("sent %d, served %d, truncated %v: want exactly 200", res.Sent, served.Load(), res.Truncated)
		}
		if res.OK != 100 || res.Non2xx != 100 || res.Errors != 0 {
			t.Errorf("ok %d non-2xx %d errors %d, want 100/100/0", res.OK, res.Non2xx, res.Errors)
		}
		if !(res.P50 > 0 && res.P50 <= res.P99 && res.P99 <= res.P999 && res.P999 <= res.Max) {
			t.Errorf("percentiles out of order: %+v", res)
		}
	})
	t.Run("stops at max duration", func(t *testing.T) {
		served.Store(0)
		// 50/s for at most 200ms: far fewer than the count.
		res, err := OpenLoop{Addr: addr, Rate: 50, Count: 1_000_000, MaxDuration: 200 * time.Millisecond, Conns: 2, Requests: reqs}.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Truncated || res.Sent >= 1_000_000 || int64(res.Sent) != served.Load() {
			t.Fatalf("truncated %v, sent %d, served %d", res.Truncated, res.Sent, served.Load())
		}
	})
	for name, o := range map[string]OpenLoop{
		"not loopback": {Addr: "192.0.2.1:80", Rate: 1, Count: 1, MaxDuration: time.Second, Conns: 1, Requests: reqs},
		"no rate":      {Addr: addr, Count: 1, MaxDuration: time.Second, Conns: 1, Requests: reqs},
		"no bound":     {Addr: addr, Rate: 1, Count: 1, Conns: 1, Requests: reqs},
		"huge count":   {Addr: addr, Rate: 1, Count: maxOpenLoopCount + 1, MaxDuration: time.Second, Conns: 1, Requests: reqs},
		"no requests":  {Addr: addr, Rate: 1, Count: 1, MaxDuration: time.Second, Conns: 1},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := o.Run(ctx); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestParseStat(t *testing.T) {
	b, err := os.ReadFile("testdata/stat.txt")
	if err != nil {
		t.Fatal(err)
	}
	st, err := parseStat(b)
	if err != nil || st.utime != 250 || st.stime != 75 || st.ppid != 99 {
		t.Fatalf("%+v err %v, want utime 250, stime 75, ppid 99", st, err)
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S 1 2"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	// Burn user time: the process's own CPU must grow, in user space.
	c0, err := CPUTime(os.Getpid())
	if err != nil {
		t.Fatalf("own CPU: %v", err)
	}
	c1, x := c0, uint64(1)
	for deadline := time.Now().Add(5 * time.Second); c1.User-c0.User < 0.05 && time.Now().Before(deadline); {
		for range 1_000_000 {
			x = x*6364136223846793005 + 1442695040888963407
		}
		if c1, err = CPUTime(os.Getpid()); err != nil {
			t.Fatal(err)
		}
	}
	if c1.User-c0.User < 0.05 || c1.Total() < c1.User || x == 0 {
		t.Errorf("user CPU did not grow with user work: %+v -> %+v", c0, c1)
	}
}

func TestSummariseRatios(t *testing.T) {
	run := func(row string, round int, rps float64, cpu float64) RunResult {
		return RunResult{Row: row, Round: round, CPUSeconds: cpu, UserSeconds: cpu / 3, PlatformSeconds: 1.5,
			Wrk: WrkResult{Requests: int64(rps * 10), DurationUS: 10_000_000, P50US: 1000, P99US: 5000, CPUSeconds: 0.75}}
	}
	r := &Report{Runs: []RunResult{
		run("c", 1, 30000, 3), run("c", 2, 20000, 3), run("c", 3, 25000, 3),
		run("d", 1, 24000, 6), run("d", 2, 23000, 6), run("d", 3, 22000, 6),
		run("d-fast", 1, 24000, 6), run("d-fast", 2, 23000, 6), run("d-fast", 3, 22000, 6),
		run("f", 1, 20000, 6), run("f", 2, 20000, 6), run("f", 3, 20000, 6),
	}}
	r.summarise([]RowInfo{{ID: "c"}, {ID: "d"}, {ID: "d-fast"}, {ID: "f"}})
	if c := r.row("c"); c.RPS != 25000 || c.Requests != 750000 || math.Abs(c.CPUPer1k-0.012) > 1e-9 || math.Abs(c.UserPer1k-0.004) > 1e-9 {
		t.Fatalf("row c: %+v, want median 25000 over 750000 requests, CPU 0.012 s per 1k, user 0.004", c)
	}
	want := map[string]bool{"(d)/(c)": true, "(f)/(d)": true, "(d)/(d-fast)": true, "(d-fast)/(c)": true}
	if len(r.Ratios) != len(want) {
		t.Fatalf("ratios %+v", r.Ratios)
	}
	for _, q := range r.Ratios {
		switch q.Name {
		case "(d)/(c)": // 23000/25000 = 0.92 >= 0.9
			if q.Met == nil || !*q.Met || q.RPS < 0.919 || q.RPS > 0.921 {
				t.Errorf("%+v", q)
			}
			if q.CPU < 2.17 || q.CPU > 2.18 { // (18/690k)/(9/750k)
				t.Errorf("cpu ratio %v", q.CPU)
			}
			// Round by round: 24/30, 23/20, 22/25.
			if want := []float64{0.8, 1.15, 0.88}; len(q.Rounds) != 3 || math.Abs(q.Rounds[0]-want[0]) > 1e-9 ||
				math.Abs(q.Rounds[1]-want[1]) > 1e-9 || math.Abs(q.Rounds[2]-want[2]) > 1e-9 {
				t.Errorf("round ratios %v, want %v", q.Rounds, want)
			}
			md := r.Markdown()
			if !strings.Contains(md, "| (d)/(c) | 0.92x | 2.17x | 0.80, 1.15, 0.88 | ≥ 0.9x: met |") {
				t.Errorf("markdown lacks the round ratios:\n%s", md)
			}
		case "(f)/(d)": // 20000/23000 = 0.87 >= 0.8 (issue 24)
			if q.Met == nil || !*q.Met {
				t.Errorf("%+v", q)
			}
		case "(d)/(d-fast)", "(d-fast)/(c)": // context, no target
			if q.Met != nil {
				t.Errorf("%+v", q)
			}
		default:
			t.Errorf("unexpected ratio %s", q.Name)
		}
	}
	md := r.Markdown()
	// The whole machine: (c)'s 750,000 requests cost its proxy 9 s, the
	// platform 4.5 s and wrk 2.25 s.
	if c := r.row("c"); math.Abs(c.PlatformPer1k-0.006) > 1e-9 || math.Abs(c.WrkPer1k-0.003) > 1e-9 || math.Abs(c.MachinePer1k-0.021) > 1e-9 {
		t.Errorf("row c: platform %v, wrk %v, machine %v s per 1k; want 0.006, 0.003, 0.021", c.PlatformPer1k, c.WrkPer1k, c.MachinePer1k)
	}
	// Row (a)'s proxy is the platform: counted once.
	a := &Report{Runs: []RunResult{{Row: "a", Round: 1, CPUSeconds: 1.5, PlatformSeconds: 1.5, Wrk: WrkResult{Requests: 500000, DurationUS: 10_000_000, CPUSeconds: 0.75}}}}
	a.summarise([]RowInfo{{ID: "a"}})
	if got := a.row("a").MachinePer1k; math.Abs(got-0.0045) > 1e-9 {
		t.Errorf("row a: machine %v s per 1k, want 0.0045 (platform and wrk)", got)
	}
	if md := a.Markdown(); !strings.Contains(md, "| (a) | (none) | 0.0030 | 0.0015 | 0.0045 |") {
		t.Errorf("row a's machine line:\n%s", md)
	}
	for _, s := range []string{"| (c) |", "| 0.0120 | 0.0040 |", "| (d)/(c) | 0.92x", "≥ 0.9x: met", "| (c) | 0.0120 | 0.0060 | 0.0030 | 0.0210 |"} {
		if !strings.Contains(md, s) {
			t.Errorf("markdown lacks %q:\n%s", s, md)
		}
	}
}

func TestSelectRows(t *testing.T) {
	rows, err := selectRows([]string{"d", "a"})
	if err != nil || len(rows) != 2 || rows[0].ID != "a" || rows[1].ID != "d" {
		t.Fatalf("%v %v: want a, d in run order", rows, err)
	}
	if _, err := selectRows([]string{"z"}); err == nil {
		t.Error("unknown row accepted")
	}
}

func TestProxy(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.URL.Path, r.Header.Get("Authorization"))
	}))
	defer up.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeProxy(ctx, ln, up.URL) }()
	req, _ := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/v1/users/7", nil)
	req.Header.Set("Authorization", "Bearer x")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	_, _ = io.Copy(&sb, resp.Body)
	resp.Body.Close()
	if sb.String() != "/v1/users/7 Bearer x" {
		t.Errorf("proxied answer %q", sb.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
	if _, err := NewProxy("ftp://x"); err == nil {
		t.Error("non-http upstream accepted")
	}
}

func TestTrimPerf(t *testing.T) {
	in := "# comment\n\n     9.97%  [k] finish_task_switch.isra.0          -      -\n     2.50%  [.] runtime.memmove   \n     1.00%  [.] x\n"
	want := "     9.97%  [k] finish_task_switch.isra.0\n     2.50%  [.] runtime.memmove\n"
	if got := trimPerf(in, 2); got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}
