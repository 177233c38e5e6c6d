package bench

import (
	"fmt"
	"strings"
)

// Markdown renders the report for bench/results.
func (r *Report) Markdown() string {
	var b strings.Builder
	m := r.Machine
	fmt.Fprintf(&b, "# warden bench, %s\n\n", r.Started.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "Command: `%s`\n\n", r.Command)
	fmt.Fprintf(&b, "Machine: %d CPUs (%s), %s memory, Linux %s; %s, %s, %s", m.CPUs, m.CPUModel, m.MemTotal, m.Kernel, m.Go, m.Wrk, orNone(m.Nginx, "nginx not run"))
	if m.Redis != "" {
		fmt.Fprintf(&b, ", %s", m.Redis)
	}
	fmt.Fprintf(&b, ". Load average %s at the start, %s at the end (other work on the machine shows here).\n\n", m.LoadAvg, m.LoadEnd)
	fmt.Fprintf(&b, "Load: `wrk -t%d -c%d` (keep-alive, loopback) on `GET /v1/users/{id}`, ids uniform over 1..%d, "+
		"HS256 bearer tokens of %d accounts; %d rounds of %.0fs per row, rows alternating within each round; "+
		"req/s and latency are medians of the rounds, counts are sums, CPU is over all rounds. "+
		"nginx runs %d worker(s). Rate limits are %s with burst %d in every row that has them, "+
		"so each request looks them up and spends them but none is refused: the rows measure the path, not refusals.\n\n",
		r.Threads, r.Connections, r.Profiles, r.Accounts, r.Rounds, r.DurationS, r.NginxWorkers, r.LimitRate, r.LimitBurst)

	b.WriteString("| row | what | req/s | p50 ms | p99 ms | non-2xx | socket errors | CPU s per 1k req | of it user | req/s per round |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, s := range r.Rows {
		fmt.Fprintf(&b, "| (%s) | %s | %.0f | %.2f | %.2f | %d | %d | %.4f | %.4f | %s |\n",
			s.ID, s.Title, s.RPS, s.P50MS, s.P99MS, s.Non2xx, s.SocketErrs, s.CPUPer1k, s.UserPer1k, joinRounds("%.0f", s.RoundsRPS))
	}
	b.WriteString("\nCPU s per 1k req: user+system CPU seconds of the proxy's process (nginx: master and workers; row (a): the platform) per 1,000 requests, from /proc/PID/stat before and after each run; of it user: the part in user space, the rest is the kernel's (system calls, loopback TCP, scheduling).\n\n")
	b.WriteString("The whole machine's CPU per 1,000 requests, in seconds: the proxy, the lab platform behind it (what the proxy's requests cost the upstream) and wrk (from the operating system when it exits). The proxy, the platform and wrk share the machine's CPUs, so the sum is what sets req/s.\n\n")
	b.WriteString("| row | proxy | platform | wrk | all |\n| --- | ---: | ---: | ---: | ---: |\n")
	for _, s := range r.Rows {
		proxy := fmt.Sprintf("%.4f", s.CPUPer1k)
		if s.ID == "a" {
			proxy = "(none)"
		}
		fmt.Fprintf(&b, "| (%s) | %s | %.4f | %.4f | %.4f |\n", s.ID, proxy, s.PlatformPer1k, s.WrkPer1k, s.MachinePer1k)
	}
	b.WriteString("\n")

	if len(r.Ratios) > 0 {
		b.WriteString("| ratio | req/s | CPU per request | req/s, round by round | target (req/s) |\n| --- | ---: | ---: | --- | --- |\n")
		for _, q := range r.Ratios {
			t := ""
			if q.Met != nil {
				verdict := "met"
				if !*q.Met {
					verdict = fmt.Sprintf("**missed** by %.0f%%", 100*(q.Target-q.RPS)/q.Target)
				}
				t = fmt.Sprintf("≥ %gx: %s", q.Target, verdict)
			}
			fmt.Fprintf(&b, "| %s | %.2fx | %.2fx | %s | %s |\n", q.Name, q.RPS, q.CPU, joinRounds("%.2f", q.Rounds), t)
		}
		b.WriteString("\n")
	}
	if lt := r.Latency; lt != nil {
		fmt.Fprintf(&b, "## Latency at 50%% of (a)'s peak\n\nOpen-loop constant rate of %.0f req/s (half of (a)'s median req/s) for %.0fs per run, %d keep-alive connections, "+
			"latency counted from each request's due time (no coordinated omission), (a) and (d) alternating, two runs each; the Go generator runs in the bench process.\n\n",
			lt.Rate, lt.DurationS, lt.Conns)
		latencyTable(&b, lt.Runs)
		verdict := "met"
		if !lt.Met {
			verdict = fmt.Sprintf("**missed** by %.3f ms", lt.AddedP99MS-1)
		}
		fmt.Fprintf(&b, "\np99 added by warden (d) over (a): **%.3f ms** (median of runs; p50 added %.3f ms). Target: under 1 ms: %s.\n\n", lt.AddedP99MS, lt.AddedP50MS, verdict)
	}
	if lt := r.Latency; lt != nil && lt.OwnRate > 0 {
		fmt.Fprintf(&b, "When (d)'s latencies above run to seconds, half of (a)'s peak is more than (d) sustains beside the generator on this machine; "+
			"the same test at half of **(d)'s own** peak, %.0f req/s (informative, not the target's definition):\n\n", lt.OwnRate)
		latencyTable(&b, lt.OwnRuns)
		fmt.Fprintf(&b, "\np99 added by (d) over (a) at %.0f req/s: **%.3f ms** (p50 added %.3f ms).\n\n", lt.OwnRate, lt.OwnAddedP99MS, lt.OwnAddedP50MS)
	}
	if len(r.ProfilesTaken) > 0 {
		b.WriteString("## Profiles of rows that missed a target\n\n")
		for _, p := range r.ProfilesTaken {
			fmt.Fprintf(&b, "Row (%s), full profile in `%s`; top of the self time:\n\n```\n%s```\n\n", p.Row, p.File, p.Top)
		}
	}
	fmt.Fprintf(&b, "Row (e) runs examples/lab.yaml with only the rate limits raised, without the detector and the budgets naming provenances (row e-prov has them) and without canaries (row e-canary has them): inspection and budgets run as written, so once a budget is spent answers are masked (rewritten, still 200) — that is the path (e) measures. All other rows answer the platform's bytes unchanged.")
	if r.EMasked != "" {
		fmt.Fprintf(&b, " A sample of look-ups sent to (e) after the rounds: %s answers masked.", r.EMasked)
	}
	b.WriteString("\n")
	return b.String()
}

func orNone(s, none string) string {
	if s == "" {
		return none
	}
	return s
}

func latencyTable(b *strings.Builder, runs []LatencyRun) {
	b.WriteString("| run | row | sent | non-2xx | errors | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |\n| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for i, run := range runs {
		x := run.Result
		fmt.Fprintf(b, "| %d | (%s) | %d | %d | %d | %.3f | %.3f | %.3f | %.3f | %.3f |\n", i+1, run.Row, x.Sent, x.Non2xx, x.Errors, ms(x.P50), ms(x.P90), ms(x.P99), ms(x.P999), ms(x.Max))
	}
}

// joinRounds renders per-round figures in format, comma-separated.
func joinRounds(format string, xs []float64) string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = fmt.Sprintf(format, x)
	}
	return strings.Join(out, ", ")
}
