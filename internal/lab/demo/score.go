package demo

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/warden-gw/warden/internal/lab/sim"
)

// writeScore prints the comparison and writes the files o asks for.
func writeScore(o Options, names, labels []string, reps []*sim.Report) error {
	fmt.Fprintf(o.Stdout, "\n%s, %d profiles, %s per run\n\n", strings.Join(names, ","), o.Profiles, o.Duration)
	if err := sim.WriteComparison(o.Stdout, labels, reps); err != nil {
		return err
	}
	fmt.Fprintln(o.Stdout, "\nharvest: distinct real profiles whose true email and phone reached the harvester (% of all).")
	fmt.Fprintln(o.Stdout, "harm: users (and requests) of a legitimate population that got a refusal or a masked field.")
	if o.JSON != "" {
		if err := writeJSON(o.JSON, map[string]any{"labels": labels, "reports": reps}); err != nil {
			return err
		}
	}
	if o.Markdown != "" {
		if err := writeMarkdown(o.Markdown, o.Command, labels, reps); err != nil {
			return err
		}
	}
	return nil
}

func writeJSON(path string, v any) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	enc := json.NewEncoder(f)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

func writeMarkdown(path, command string, labels []string, reps []*sim.Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Command: `%s`\n\n", command)
	if len(reps) > 0 {
		fmt.Fprintf(&b, "%d profiles, mix %s, %s per run, %s, %s.\n\n", reps[0].Profiles, strings.Join(reps[0].Scenarios, ","),
			reps[0].DurationBound, time.Now().UTC().Format("2006-01-02"), machine())
	}
	if err := sim.WriteComparison(&b, labels, reps); err != nil {
		return err
	}
	b.WriteString("\nharvest: distinct real profiles whose true email and phone reached the harvester, as % of all profiles (count).\n")
	b.WriteString("harm: % of a legitimate population's active users (and of its requests) that got a refusal (403/429/503) or a masked email/phone.\n")
	b.WriteString("Targets: *without protection* is the lab platform itself; *nginx* is Debian's nginx with `limit_req` per client address " +
		"(nodelay, 429) and upstream keep-alive; *ban list* adds `deny` for every address nginx refused at least --ban-min (default 20) times in the nginx run " +
		"(what an operator reading the logs would ban), except the approved partner's servers; *warden* is `warden serve` with examples/lab.yaml.\n")
	b.WriteString("Harvesters are paced (see `go doc ./internal/lab/sim`), so columns differ by the protection, not by load; " +
		"on a busy machine a paced population may fall short of its rate, so compare requests too.\n")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// machine describes this machine in a few words for a result file.
func machine() string {
	cpu := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				_, cpu, _ = strings.Cut(l, ": ")
				break
			}
		}
	}
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			load = ", load average " + strings.Join(f[:3], " ") + " at the end"
		}
	}
	return fmt.Sprintf("%d CPUs (%s)%s", runtime.NumCPU(), strings.TrimSpace(cpu), load)
}
