package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// profile records a CPU profile (perf, call graphs) of every warden row
// that missed a target (when o.Profile) and of o.ProfileRows, under the
// same wrk load, and writes the top of each to OUT/profile-ROW.txt.
func (r *Report) profile(ctx context.Context, o Options, targets []target, wrk func(target, time.Duration) WrkRun, logf func(string, ...any)) {
	var rows []string
	for _, id := range o.ProfileRows {
		if id != "" && !contains(rows, id) {
			rows = append(rows, id)
		}
	}
	for _, q := range r.Ratios {
		if o.Profile && q.Met != nil && !*q.Met && !contains(rows, q.Num) {
			rows = append(rows, q.Num)
		}
	}
	if len(rows) == 0 {
		return
	}
	perf, err := ensureTool(ctx, toolPerf, logf)
	if err != nil {
		logf("no profile taken: %v", err)
		return
	}
	for _, id := range rows {
		var t *target
		for i := range targets {
			if targets[i].ID == id {
				t = &targets[i]
			}
		}
		if t == nil {
			continue
		}
		file, top, err := r.perfRow(ctx, o, *t, perf, wrk)
		if err != nil {
			logf("profile of row %s: %v", id, err)
			continue
		}
		logf("profile of row %s written to %s", id, file)
		r.ProfilesTaken = append(r.ProfilesTaken, ProfileNote{Row: id, File: filepath.Base(file), Top: top})
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func (r *Report) perfRow(ctx context.Context, o Options, t target, perf string, wrk func(target, time.Duration) WrkRun) (string, string, error) {
	pid, err := t.pid()
	if err != nil {
		return "", "", err
	}
	data, err := os.CreateTemp("", "warden-bench-perf-*.data")
	if err != nil {
		return "", "", fmt.Errorf("perf data: %w", err)
	}
	data.Close()
	defer os.Remove(data.Name())
	secs := int(o.Duration / time.Second)
	rec := exec.CommandContext(ctx, perf, "record", "-F", "499", "-g", "-p", strconv.Itoa(pid), "-o", data.Name(), "--", "sleep", strconv.Itoa(secs))
	var recOut strings.Builder
	rec.Stdout, rec.Stderr = &recOut, &recOut
	if err := rec.Start(); err != nil {
		return "", "", fmt.Errorf("perf record: %w", err)
	}
	res, _, werr := wrk(t, o.Duration).Run(ctx)
	if err := rec.Wait(); err != nil {
		return "", "", fmt.Errorf("perf record: %w: %s", err, lastLines([]byte(recOut.String()), 3))
	}
	if werr != nil {
		return "", "", werr
	}
	report := func(args ...string) (string, error) {
		out, err := exec.CommandContext(ctx, perf, append([]string{"report", "-i", data.Name(), "--stdio", "-g", "none", "--sort", "symbol"}, args...)...).Output()
		if err != nil {
			return "", fmt.Errorf("perf report: %w", err)
		}
		return trimPerf(string(out), 60), nil
	}
	self, err := report("--no-children", "--percent-limit", "0.4")
	if err != nil {
		return "", "", err
	}
	cum, err := report("--children", "--percent-limit", "3")
	if err != nil {
		return "", "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "CPU profile of row (%s) %s under the benchmark's load\n", t.ID, t.Title)
	fmt.Fprintf(&b, "taken by `warden bench` (%s) at %s: perf record -F 499 -g -p PID for %ds while wrk -t%d -c%d ran\n",
		o.Command, time.Now().UTC().Format(time.RFC3339), secs, o.Threads, o.Connections)
	fmt.Fprintf(&b, "during the profile: %.0f req/s, p99 %.2f ms (perf costs a few %%)\n", res.RPS(), res.P99US/1000)
	fmt.Fprintf(&b, "samples are of the whole process: kernel time (syscalls, TCP) shows as [k] symbols\n\n")
	b.WriteString("== self time (where the CPU is) ==\n")
	b.WriteString(self)
	b.WriteString("\n== cumulative time (callers included, above 3%) ==\n")
	b.WriteString(cum)
	file := filepath.Join(o.OutDir, "profile-"+t.ID+".txt")
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return "", "", fmt.Errorf("results dir: %w", err)
	}
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		return "", "", fmt.Errorf("write %s: %w", file, err)
	}
	return file, trimPerf(self, 15), nil
}

// perfPad is the padding and empty columns perf prints after a symbol.
var perfPad = regexp.MustCompile(`(\s+-)*\s*$`)

// trimPerf drops perf's comment lines and blank lines, keeping n entries.
func trimPerf(s string, n int) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue
		}
		out = append(out, perfPad.ReplaceAllString(line, ""))
		if len(out) == n {
			break
		}
	}
	return strings.Join(out, "\n") + "\n"
}
