package bench

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/lab/nginx"
	"github.com/warden-gw/warden/internal/lab/platform"
)

// RowInfo names a row and says what it measures.
type RowInfo struct {
	ID    string `json:"id"`
	Title string `json:"title"`
}

// AllRows are the rows in the order they run in each round.
var AllRows = []RowInfo{
	{"a", "platform direct"},
	{"b", "Go httputil.ReverseProxy, no logic"},
	{"b-fast", "fasthttp reverse proxy, no logic (warden's front alone)"},
	{"c", "nginx, limit_req per IP, upstream keep-alive"},
	{"d", "warden, per-ip + per-account limits, loop front (the default)"},
	{"d-fast", "warden, per-ip + per-account limits, fast front"},
	{"d-std", "warden, per-ip + per-account limits, std front"},
	{"e", "warden, examples/lab.yaml (inspection + budgets), loop front (the default)"},
	{"e-fast", "warden, row (e) on the fast front"},
	{"e-snap", "warden, row (e) with store.memory.dir: 2,000,000 keys snapshotted every 5 s"},
	{"e-ledger", "warden, row (e) with the access ledger on (ledger.dir)"},
	{"e-prov", "warden, row (e) with provenance budgets and the detector (rules in shadow mode)"},
	{"e-canary", "warden, row (e) with canaries on (examples/lab.yaml's canary section, a key set)"},
	{"f", "warden, row (d) on Redis"},
}

// Options configures a run.
type Options struct {
	Warden       string // the warden binary, for children
	OutDir       string // where results go
	LabConfig    string // examples/lab.yaml
	Rows         []string
	Rounds       int
	Duration     time.Duration // per row per round
	Warmup       time.Duration // per row, once, not recorded
	Threads      int
	Connections  int
	Profiles     int // lab platform profiles (ids 1..N)
	Accounts     int // accounts whose tokens the load uses
	NginxWorkers int
	OpenLoop     time.Duration // per open-loop run; 0 skips the latency test
	// Row e-snap: keys preloaded into its state directory (0: 2,000,000)
	// and the snapshot interval (0: 5 s).
	SnapshotKeys     int
	SnapshotInterval time.Duration
	Profile          bool      // perf-profile rows that miss a target
	ProfileRows      []string  // rows profiled whether or not they miss one
	Command          string    // as typed, for the report
	Log              io.Writer // progress
}

// target is one running row.
type target struct {
	RowInfo
	addr string
	pid  func() (int, error)
	stop func()
}

const labSecret = "lab-secret"

// Run runs the benchmark and writes its results.
func Run(ctx context.Context, o Options) (*Report, error) {
	logf := func(f string, a ...any) { fmt.Fprintf(o.Log, "bench: "+f+"\n", a...) }
	if o.Rounds < 1 || o.Duration < time.Second || o.Threads < 1 || o.Connections < o.Threads || o.Profiles < 1 || o.Accounts < 1 {
		return nil, fmt.Errorf("bench: bad options: rounds %d, duration %v, threads %d, connections %d, profiles %d, accounts %d",
			o.Rounds, o.Duration, o.Threads, o.Connections, o.Profiles, o.Accounts)
	}
	rows, err := selectRows(o.Rows)
	if err != nil {
		return nil, err
	}
	has := func(id string) bool { return slices.ContainsFunc(rows, func(r RowInfo) bool { return r.ID == id }) }

	rep := &Report{Command: o.Command, Started: time.Now().UTC(), Machine: describeMachine(),
		Rounds: o.Rounds, DurationS: o.Duration.Seconds(), Threads: o.Threads, Connections: o.Connections,
		Profiles: o.Profiles, Accounts: o.Accounts, NginxWorkers: o.NginxWorkers,
		LimitRate: HighRate, LimitBurst: HighBurst}
	wrkBin, err := ensureTool(ctx, toolWrk, logf)
	if err != nil {
		return nil, err
	}
	rep.Machine.Wrk = cutAt(version(wrkBin, "--version"), " [")
	var nginxBin, redisBin string
	if has("c") {
		if nginxBin, err = ensureTool(ctx, toolNginx, logf); err != nil {
			return nil, err
		}
		rep.Machine.Nginx = strings.TrimPrefix(version(nginxBin, "-v"), "nginx version: ")
	}
	if has("f") {
		if redisBin, err = ensureTool(ctx, toolRedis, logf); err != nil {
			return nil, err
		}
		rep.Machine.Redis = cutAt(version(redisBin, "--version"), " sha=")
	}

	work, err := os.MkdirTemp("", "warden-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: work dir: %w", err)
	}
	defer os.RemoveAll(work)
	var stops []func()
	defer func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}()

	// The platform.
	plat, platAddr, err := startChild(ctx, "lab-platform", nil, o.Warden,
		"lab-platform", "--addr", "127.0.0.1:0", "--profiles", strconv.Itoa(o.Profiles), "--seed", "1", "--jwt-secret", labSecret)
	if err != nil {
		return nil, err
	}
	stops = append(stops, plat.Stop)
	upstream := "http://" + platAddr
	logf("lab platform on %s (%d profiles)", platAddr, o.Profiles)

	tokens, err := mintTokens(o.Profiles, o.Accounts, time.Now())
	if err != nil {
		return nil, err
	}
	script, err := WrkScript(tokens, o.Profiles, 16384)
	if err != nil {
		return nil, err
	}
	scriptPath := filepath.Join(work, "users.lua")
	if err := os.WriteFile(scriptPath, []byte(script), 0o644); err != nil {
		return nil, fmt.Errorf("bench: write wrk script: %w", err)
	}

	adminToken, partnerKey := make([]byte, 16), make([]byte, 16)
	if _, err := rand.Read(adminToken); err != nil {
		return nil, fmt.Errorf("bench: admin token: %w", err)
	}
	if _, err := rand.Read(partnerKey); err != nil {
		return nil, fmt.Errorf("bench: partner key: %w", err)
	}
	// Row (e)'s config registers the partner's app key from LAB_PARTNER_KEY;
	// the load sends no app key, so any secret value serves.
	env := []string{"WARDEN_ADMIN_TOKEN=" + hex.EncodeToString(adminToken), "LAB_JWT_SECRET=" + labSecret,
		"LAB_PARTNER_KEY=pk-" + hex.EncodeToString(partnerKey)}
	startWarden := func(row RowInfo, conf []byte, extraEnv ...string) (target, error) {
		path := filepath.Join(work, "warden-"+row.ID+".yaml")
		if err := os.WriteFile(path, conf, 0o600); err != nil {
			return target{}, fmt.Errorf("bench: write config: %w", err)
		}
		c, addr, err := startChild(ctx, "warden "+row.ID, append(slices.Clip(env), extraEnv...), o.Warden,
			"serve", "--config", path)
		if err != nil {
			return target{}, err
		}
		return target{RowInfo: row, addr: addr, pid: func() (int, error) { return c.PID(), nil }, stop: c.Stop}, nil
	}

	var targets []target
	for _, row := range rows {
		var t target
		switch row.ID {
		case "a":
			t = target{RowInfo: row, addr: platAddr, pid: func() (int, error) { return plat.PID(), nil }, stop: func() {}}
		case "b", "b-fast":
			front := map[string]string{"b": "std", "b-fast": "fast"}[row.ID]
			c, addr, err := startChild(ctx, "proxy", nil, o.Warden,
				"bench", "proxy", "--front", front, "--listen", "127.0.0.1:0", "--upstream", upstream)
			if err != nil {
				return nil, err
			}
			t = target{RowInfo: row, addr: addr, pid: func() (int, error) { return c.PID(), nil }, stop: c.Stop}
		case "c":
			s, err := nginx.Start(ctx, nginx.Config{Listen: "127.0.0.1:0", Upstream: upstream,
				RatePerSecond: float64(HighBurst), Burst: HighBurst, Workers: o.NginxWorkers,
				Dir: filepath.Join(work, "nginx"), Binary: nginxBin})
			if err != nil {
				return nil, err
			}
			pidFile := filepath.Join(s.Dir(), "nginx.pid")
			t = target{RowInfo: row, addr: s.Addr(), stop: func() { _ = s.Stop() }, pid: func() (int, error) {
				b, err := os.ReadFile(pidFile)
				if err != nil {
					return 0, fmt.Errorf("bench: nginx pid: %w", err)
				}
				return strconv.Atoi(strings.TrimSpace(string(b)))
			}}
		case "d", "d-fast", "d-std":
			front := map[string]string{"d": "loop", "d-fast": "fast", "d-std": "std"}[row.ID]
			conf, err := WardenConfig(WardenOptions{Upstream: upstream, Front: front, TokenCache: 2 * o.Accounts})
			if err != nil {
				return nil, err
			}
			if t, err = startWarden(row, conf); err != nil {
				return nil, err
			}
		case "e", "e-fast", "e-snap", "e-ledger", "e-prov", "e-canary":
			src, err := os.ReadFile(o.LabConfig)
			if err != nil {
				return nil, fmt.Errorf("bench: lab config: %w", err)
			}
			front := map[string]string{"e-fast": "fast"}[row.ID] // "": the config's own
			conf, err := DeriveLabConfig(src, upstream, front)
			if err != nil {
				return nil, err
			}
			if row.ID == "e-snap" {
				dir := filepath.Join(work, "state-e-snap")
				keys, every := cmp.Or(o.SnapshotKeys, DefaultSnapshotKeys), cmp.Or(o.SnapshotInterval, DefaultSnapshotInterval)
				logf("row e-snap: preloading %d keys into %s, snapshots every %v", keys, dir, every)
				if err := PreloadState(ctx, dir, keys, time.Now()); err != nil {
					return nil, err
				}
				if conf, err = WithStateDir(conf, dir, every); err != nil {
					return nil, err
				}
			}
			if row.ID == "e-prov" {
				if conf, err = WithProvenanceAndDetector(conf, src); err != nil {
					return nil, err
				}
			}
			if row.ID == "e-ledger" {
				if conf, err = WithLedgerDir(conf, filepath.Join(work, "ledger-e-ledger")); err != nil {
					return nil, err
				}
			}
			var extra []string
			if row.ID == "e-canary" {
				if conf, err = WithCanaries(conf, src); err != nil {
					return nil, err
				}
				key := make([]byte, 32)
				if _, err := rand.Read(key); err != nil {
					return nil, fmt.Errorf("bench: canary key: %w", err)
				}
				extra = append(extra, CanaryKeyEnv+"="+hex.EncodeToString(key))
			}
			if t, err = startWarden(row, conf, extra...); err != nil {
				return nil, err
			}
		case "f":
			raddr, stop, err := startRedis(ctx, redisBin, work)
			if err != nil {
				return nil, err
			}
			stops = append(stops, stop)
			conf, err := WardenConfig(WardenOptions{Upstream: upstream, Front: "loop", RedisAddr: raddr, TokenCache: 2 * o.Accounts})
			if err != nil {
				return nil, err
			}
			if t, err = startWarden(row, conf); err != nil {
				return nil, err
			}
		}
		stops = append(stops, t.stop)
		if err := probe(ctx, t.addr, tokens[0]); err != nil {
			return nil, fmt.Errorf("bench: row %s: %w", row.ID, err)
		}
		logf("row %s (%s) on %s", row.ID, row.Title, t.addr)
		targets = append(targets, t)
	}

	wrk := func(t target, d time.Duration) WrkRun {
		return WrkRun{Binary: wrkBin, Script: scriptPath, URL: "http://" + t.addr + "/", Threads: o.Threads, Connections: o.Connections, Duration: d}
	}
	if o.Warmup >= time.Second {
		for _, t := range targets {
			logf("warm-up %s (%v)", t.ID, o.Warmup)
			if _, _, err := wrk(t, o.Warmup).Run(ctx); err != nil {
				return nil, err
			}
		}
	}
	for r := range o.Rounds {
		for _, t := range targets {
			pid, err := t.pid()
			if err != nil {
				return nil, err
			}
			cpu0, err := CPUTime(pid)
			if err != nil {
				return nil, err
			}
			plat0, err := CPUTime(plat.PID())
			if err != nil {
				return nil, err
			}
			res, _, err := wrk(t, o.Duration).Run(ctx)
			if err != nil {
				return nil, err
			}
			cpu1, err := CPUTime(pid)
			if err != nil {
				return nil, err
			}
			plat1, err := CPUTime(plat.PID())
			if err != nil {
				return nil, err
			}
			used := cpu1.Sub(cpu0)
			rep.Runs = append(rep.Runs, RunResult{Row: t.ID, Round: r + 1, Wrk: res, CPUSeconds: used.Total(), UserSeconds: used.User,
				PlatformSeconds: plat1.Sub(plat0).Total(), LoadAvg: loadAvg()})
			logf("round %d row %-5s %8.0f req/s  p50 %6.2fms  p99 %6.2fms  non-2xx %d  cpu %.3fs/1k (user %.3f)",
				r+1, t.ID, res.RPS(), res.P50US/1000, res.P99US/1000, res.StatusErrors,
				1000*used.Total()/float64(max(res.Requests, 1)), 1000*used.User/float64(max(res.Requests, 1)))
		}
	}
	rep.summarise(rows)
	for _, t := range targets {
		if t.ID == "e" {
			// What (e) served after the rounds: masked answers show the
			// budgets at work (still 200s).
			m, n, err := sampleMasked(ctx, t.addr, tokens, o.Profiles, 200)
			if err != nil {
				return nil, fmt.Errorf("bench: row e sample: %w", err)
			}
			rep.EMasked = fmt.Sprintf("%d of %d", m, n)
			logf("row e after the rounds: %d of %d answers masked (header %s)", m, n, inspect.MaskedHeader)
		}
	}

	if o.OpenLoop > 0 {
		if err := rep.openLoop(ctx, o, targets, tokens, logf); err != nil {
			return nil, err
		}
	}
	if o.Profile || len(o.ProfileRows) > 0 {
		rep.profile(ctx, o, targets, wrk, logf)
	}
	rep.Machine.LoadEnd = loadAvg()
	rep.Finished = time.Now().UTC()
	if err := rep.Write(o.OutDir); err != nil {
		return nil, err
	}
	return rep, nil
}

func selectRows(ids []string) ([]RowInfo, error) {
	if len(ids) == 0 {
		return AllRows, nil
	}
	var out []RowInfo
	for _, r := range AllRows {
		if slices.Contains(ids, r.ID) {
			out = append(out, r)
		}
	}
	for _, id := range ids {
		if !slices.ContainsFunc(AllRows, func(r RowInfo) bool { return r.ID == id }) {
			return nil, fmt.Errorf("bench: unknown row %q (rows: a, b, b-fast, c, d, d-fast, d-std, e, e-fast, e-snap, e-ledger, e-prov, e-canary, f)", id)
		}
	}
	return out, nil
}

// mintTokens signs tokens for n accounts spread over the profile range,
// created two years ago (old accounts: the full budgets apply).
func mintTokens(profiles, n int, now time.Time) ([]string, error) {
	n = min(n, profiles)
	created := now.Add(-2 * 365 * 24 * time.Hour)
	out := make([]string, 0, n)
	for i := range n {
		id := 1 + i*profiles/n
		t, err := platform.MintToken(labSecret, strconv.Itoa(id), created, now)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// probe checks that a row answers a profile with 200 before it is measured.
func probe(ctx context.Context, addr, token string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/users/1", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probe: GET /v1/users/1: status %d", resp.StatusCode)
	}
	return nil
}

// sampleMasked sends n look-ups (bounded, sequential) and counts answers
// carrying warden's masking header.
func sampleMasked(ctx context.Context, addr string, tokens []string, profiles, n int) (masked, total int, err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for i := range n {
		id := 1 + (i*7919+13)%profiles
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/v1/users/%d", addr, id), nil)
		if err != nil {
			return masked, total, err
		}
		req.Header.Set("Authorization", "Bearer "+tokens[(i*31)%len(tokens)])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return masked, total, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		total++
		if resp.Header.Get(inspect.MaskedHeader) != "" {
			masked++
		}
	}
	return masked, total, nil
}

// startRedis runs a throw-away redis-server on a free loopback port with
// persistence off.
func startRedis(ctx context.Context, bin, work string) (string, func(), error) {
	var lastErr error
	for range 5 {
		addr, err := freeAddr()
		if err != nil {
			return "", nil, err
		}
		port := addr[strings.LastIndexByte(addr, ':')+1:]
		dir := filepath.Join(work, "redis")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", nil, fmt.Errorf("bench: redis dir: %w", err)
		}
		// redis-server prints "Ready to accept connections tcp"; wait
		// by dialling instead.
		c, _, err := startChild(ctx, "redis-server", nil, "/bin/sh", "-c",
			fmt.Sprintf("echo listening on %s; exec %s --bind 127.0.0.1 --port %s --save '' --appendonly no --dir %s --protected-mode yes", addr, bin, port, dir))
		if err != nil {
			lastErr = err
			continue
		}
		if err := waitRedis(ctx, addr); err != nil {
			c.Stop()
			lastErr = err
			continue
		}
		return addr, c.Stop, nil
	}
	return "", nil, errors.Join(errors.New("bench: redis-server did not start"), lastErr)
}
