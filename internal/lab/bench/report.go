package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Report is everything one run measured.
type Report struct {
	Command       string        `json:"command"`
	Started       time.Time     `json:"started"`
	Finished      time.Time     `json:"finished"`
	Machine       Machine       `json:"machine"`
	Rounds        int           `json:"rounds"`
	DurationS     float64       `json:"duration_s"`
	Threads       int           `json:"threads"`
	Connections   int           `json:"connections"`
	Profiles      int           `json:"profiles"`
	Accounts      int           `json:"accounts"`
	NginxWorkers  int           `json:"nginx_workers"`
	LimitRate     string        `json:"limit_rate"`
	LimitBurst    int           `json:"limit_burst"`
	Runs          []RunResult   `json:"runs"`
	Rows          []RowSummary  `json:"rows"`
	Ratios        []Ratio       `json:"ratios"`
	Latency       *LatencyTest  `json:"latency,omitempty"`
	EMasked       string        `json:"e_masked_sample,omitempty"` // "k of n" answers of (e) masked after the rounds
	ProfilesTaken []ProfileNote `json:"profiles_taken,omitempty"`
}

// RunResult is one wrk run of one row.
type RunResult struct {
	Row        string    `json:"row"`
	Round      int       `json:"round"`
	Wrk        WrkResult `json:"wrk"`
	CPUSeconds float64   `json:"cpu_seconds"` // of the proxy (or, row a, the platform) process
	// UserSeconds is the part of CPUSeconds spent in user space; the rest
	// is the kernel's (system calls, loopback TCP, scheduling).
	UserSeconds float64 `json:"user_seconds"`
	// PlatformSeconds is the lab platform's CPU time during the run: what
	// the proxy's requests cost the upstream (row a: the same as
	// CPUSeconds).
	PlatformSeconds float64 `json:"platform_cpu_seconds"`
	LoadAvg         string  `json:"loadavg"`
}

// RowSummary is a row over its rounds: medians of req/s and latency, sums
// of counts, CPU over all requests.
type RowSummary struct {
	RowInfo
	RPS        float64 `json:"rps"`
	P50MS      float64 `json:"p50_ms"`
	P99MS      float64 `json:"p99_ms"`
	Requests   int64   `json:"requests"`
	Non2xx     int64   `json:"non2xx"`
	SocketErrs int64   `json:"socket_errors"`
	CPUPer1k   float64 `json:"cpu_s_per_1k"`
	UserPer1k  float64 `json:"user_s_per_1k"` // of CPUPer1k, in user space
	// PlatformPer1k and WrkPer1k are the platform's and wrk's CPU seconds
	// per 1,000 requests; MachinePer1k adds the proxy's. On a machine whose
	// CPUs all three share, MachinePer1k is what sets req/s.
	PlatformPer1k float64   `json:"platform_cpu_s_per_1k"`
	WrkPer1k      float64   `json:"wrk_cpu_s_per_1k"`
	MachinePer1k  float64   `json:"machine_cpu_s_per_1k"`
	RoundsRPS     []float64 `json:"rounds_rps"`
}

// Ratio compares two rows' req/s (and CPU per request), with a target
// where the issues set one.
type Ratio struct {
	Name string  `json:"name"`
	RPS  float64 `json:"rps_ratio"`
	CPU  float64 `json:"cpu_ratio"` // numerator's CPU per request over the denominator's
	// Rounds pairs the two rows round by round (they ran minutes apart at
	// most), which shows how much of a ratio is the machine's drift.
	Rounds   []float64 `json:"rounds_rps_ratio,omitempty"`
	Target   float64   `json:"target,omitempty"`
	Met      *bool     `json:"met,omitempty"`
	Num, Den string    `json:"-"`
}

// LatencyTest is the open-loop constant-rate comparison of (a) and (d).
type LatencyTest struct {
	Rate       float64      `json:"rate"`
	DurationS  float64      `json:"duration_s"`
	Conns      int          `json:"conns"`
	Runs       []LatencyRun `json:"runs"`
	AddedP50MS float64      `json:"added_p50_ms"`
	AddedP99MS float64      `json:"added_p99_ms"`
	Met        bool         `json:"met"`
	// The same at half of (d)'s own peak, when that is lower.
	OwnRate       float64      `json:"own_rate,omitempty"`
	OwnRuns       []LatencyRun `json:"own_runs,omitempty"`
	OwnAddedP50MS float64      `json:"own_added_p50_ms,omitempty"`
	OwnAddedP99MS float64      `json:"own_added_p99_ms,omitempty"`
}

// LatencyRun is one open-loop run.
type LatencyRun struct {
	Row    string         `json:"row"`
	Result OpenLoopResult `json:"result"`
}

// ProfileNote names a profile written for a row that missed its target.
type ProfileNote struct {
	Row  string `json:"row"`
	File string `json:"file"`
	Top  string `json:"top"`
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (r *Report) row(id string) *RowSummary {
	for i := range r.Rows {
		if r.Rows[i].ID == id {
			return &r.Rows[i]
		}
	}
	return nil
}

// summarise computes the row summaries and the ratios.
func (r *Report) summarise(rows []RowInfo) {
	r.Rows = r.Rows[:0]
	for _, info := range rows {
		s := RowSummary{RowInfo: info}
		var p50, p99 []float64
		var cpu, user, plat, wrk float64
		for _, run := range r.Runs {
			if run.Row != info.ID {
				continue
			}
			s.RoundsRPS = append(s.RoundsRPS, run.Wrk.RPS())
			p50 = append(p50, run.Wrk.P50US/1000)
			p99 = append(p99, run.Wrk.P99US/1000)
			s.Requests += run.Wrk.Requests
			s.Non2xx += run.Wrk.StatusErrors
			s.SocketErrs += run.Wrk.ConnectErrors + run.Wrk.ReadErrors + run.Wrk.WriteErrors + run.Wrk.Timeouts
			cpu += run.CPUSeconds
			user += run.UserSeconds
			plat += run.PlatformSeconds
			wrk += run.Wrk.CPUSeconds
		}
		s.RPS, s.P50MS, s.P99MS = median(s.RoundsRPS), median(p50), median(p99)
		if s.Requests > 0 {
			s.CPUPer1k = 1000 * cpu / float64(s.Requests)
			s.UserPer1k = 1000 * user / float64(s.Requests)
			s.PlatformPer1k = 1000 * plat / float64(s.Requests)
			s.WrkPer1k = 1000 * wrk / float64(s.Requests)
			s.MachinePer1k = s.CPUPer1k + s.PlatformPer1k + s.WrkPer1k
			if info.ID == "a" { // the proxy is the platform
				s.MachinePer1k = s.CPUPer1k + s.WrkPer1k
			}
		}
		r.Rows = append(r.Rows, s)
	}
	r.Ratios = r.Ratios[:0]
	for _, q := range []struct {
		num, den string
		target   float64
	}{{"d", "c", 0.9}, {"d", "b", 0}, {"e", "c", 0.8}, {"f", "d", 0.8}, {"d", "d-fast", 0}, {"e", "e-fast", 0}, {"e-snap", "e", 0.95}, {"e-ledger", "e", 0.95}, {"e-prov", "e", 0.95}, {"e-canary", "e", 0.98},
		{"d-fast", "c", 0}, {"e-fast", "c", 0}, {"d-std", "d-fast", 0}, {"c", "b", 0}, {"b-fast", "c", 0}, {"d-fast", "b-fast", 0}} {
		n, d := r.row(q.num), r.row(q.den)
		if n == nil || d == nil || d.RPS == 0 {
			continue
		}
		ra := Ratio{Name: fmt.Sprintf("(%s)/(%s)", q.num, q.den), RPS: n.RPS / d.RPS, Target: q.target, Num: q.num, Den: q.den}
		if d.CPUPer1k > 0 {
			ra.CPU = n.CPUPer1k / d.CPUPer1k
		}
		if len(n.RoundsRPS) == len(d.RoundsRPS) {
			for i, x := range n.RoundsRPS {
				if d.RoundsRPS[i] > 0 {
					ra.Rounds = append(ra.Rounds, x/d.RoundsRPS[i])
				}
			}
		}
		if q.target > 0 {
			met := ra.RPS >= q.target
			ra.Met = &met
		}
		r.Ratios = append(r.Ratios, ra)
	}
}

// openLoop measures p50/p99 at a fixed rate, half of (a)'s peak, against
// (a) and (d), alternating, twice each.
func (r *Report) openLoop(ctx context.Context, o Options, targets []target, tokens []string, logf func(string, ...any)) error {
	a, d := r.row("a"), r.row("d")
	if a == nil || d == nil || a.RPS == 0 {
		logf("latency test skipped: needs rows a and d")
		return nil
	}
	var ta, td target
	for _, t := range targets {
		switch t.ID {
		case "a":
			ta = t
		case "d":
			td = t
		}
	}
	reqs := make([]Request, 0, 8192)
	for i := range 8192 {
		// A fixed stride over the ids: spread, repeatable.
		id := 1 + (i*7919)%o.Profiles
		reqs = append(reqs, Request{Path: fmt.Sprintf("/v1/users/%d", id), Token: tokens[(i*31)%len(tokens)]})
	}
	pair := func(rate float64) (runs []LatencyRun, addedP50, addedP99 float64, err error) {
		count := int(rate * o.OpenLoop.Seconds())
		var pa, pd, pa50, pd50 []float64
		for round := range 2 {
			for _, t := range []target{ta, td} {
				ol := OpenLoop{Addr: t.addr, Rate: rate, Count: count, MaxDuration: o.OpenLoop + 10*time.Second, Conns: o.Connections, Requests: reqs}
				res, err := ol.Run(ctx)
				if err != nil {
					return nil, 0, 0, fmt.Errorf("bench: latency test, row %s: %w", t.ID, err)
				}
				runs = append(runs, LatencyRun{Row: t.ID, Result: res})
				logf("latency round %d row %s at %.0f req/s: p50 %.3fms p99 %.3fms (sent %d, non-2xx %d, errors %d)",
					round+1, t.ID, rate, ms(res.P50), ms(res.P99), res.Sent, res.Non2xx, res.Errors)
				if t.ID == "a" {
					pa, pa50 = append(pa, ms(res.P99)), append(pa50, ms(res.P50))
				} else {
					pd, pd50 = append(pd, ms(res.P99)), append(pd50, ms(res.P50))
				}
			}
		}
		return runs, median(pd50) - median(pa50), median(pd) - median(pa), nil
	}
	lt := &LatencyTest{Rate: math.Round(a.RPS / 2), DurationS: o.OpenLoop.Seconds(), Conns: o.Connections}
	var err error
	if lt.Runs, lt.AddedP50MS, lt.AddedP99MS, err = pair(lt.Rate); err != nil {
		return err
	}
	lt.Met = lt.AddedP99MS < 1
	if d.RPS < a.RPS {
		// Half of (a)'s peak can be above what (d) sustains, and then its
		// latency only says "overloaded"; half of (d)'s own peak shows
		// what warden adds when it is not.
		lt.OwnRate = math.Round(d.RPS / 2)
		if lt.OwnRuns, lt.OwnAddedP50MS, lt.OwnAddedP99MS, err = pair(lt.OwnRate); err != nil {
			return err
		}
	}
	r.Latency = lt
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func waitRedis(ctx context.Context, addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = c.SetDeadline(time.Now().Add(time.Second))
			_, err = io.WriteString(c, "PING\r\n")
			var line string
			if err == nil {
				line, err = bufio.NewReader(c).ReadString('\n')
			}
			c.Close()
			if err == nil && strings.HasPrefix(line, "+PONG") {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: redis on %s not answering PING after 10s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Write writes DATE-TIME.md, DATE-TIME.json and latest.md under dir.
func (r *Report) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bench: results dir: %w", err)
	}
	stamp := r.Started.Format("2006-01-02-1504")
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: results json: %w", err)
	}
	md := r.Markdown()
	for name, b := range map[string][]byte{stamp + ".json": append(js, '\n'), stamp + ".md": []byte(md), "latest.md": []byte(md)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return fmt.Errorf("bench: write %s: %w", name, err)
		}
	}
	return nil
}
