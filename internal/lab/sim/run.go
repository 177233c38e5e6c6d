package sim

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure one run.
type Options struct {
	// Target is the base URL: the platform, or a gateway in front of it.
	// It must be on loopback.
	Target string
	// Scenarios are names from Names(), or "all".
	Scenarios []string
	// Params are NAME.KEY=VALUE settings (see the package doc).
	Params map[string]string
	// Duration bounds the run; MaxRequests bounds each population.
	Duration    time.Duration
	MaxRequests int64
	// Truth is the target platform's ground truth (its profiles and seed).
	Truth *Truth
	// JWTSecret is the lab platform's token secret.
	JWTSecret string
	// Seed makes the populations repeatable.
	Seed uint64
	// Progress, when set, is called about once a second and once at the
	// end.
	Progress func(Progress)
	// RequestTimeout bounds each request; 0 means 10 s.
	RequestTimeout time.Duration
	// RootCAs verify an https target (a gateway terminating TLS with a
	// certificate of its own); nil: the system's roots.
	RootCAs *x509.CertPool
	// Authors are the authors whose reach the clients count
	// (Report.Served): the distinct accounts served their posts.
	Authors []string
	// Take, when set, receives what the harvesters' clients received, one
	// NDJSON record a line ({"id","username","email","phone"}) as it
	// arrives (Report.Taken says who took what).
	Take io.Writer
}

// ParseScenarios splits a comma-separated mix and checks the names.
func ParseScenarios(s string) ([]string, error) {
	known := map[string]bool{}
	for _, n := range Names() {
		known[n] = true
	}
	var out []string
	seen := map[string]bool{}
	for _, n := range strings.Split(s, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		names := []string{n}
		if n == "all" {
			names = Names()
		} else if !known[n] {
			return nil, fmt.Errorf("sim: unknown scenario %q (known: %s, all)", n, strings.Join(Names(), ", "))
		}
		for _, m := range names {
			if !seen[m] {
				seen[m] = true
				out = append(out, m)
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("sim: no scenario given")
	}
	return out, nil
}

// checkLoopback refuses targets that are not on this machine.
func checkLoopback(target string) (string, error) {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("sim: target %q is not an http(s) URL", target)
	}
	h := u.Hostname()
	if h == "localhost" {
		h = "127.0.0.1"
	}
	a, err := netip.ParseAddr(h)
	if err != nil || !a.IsLoopback() {
		return "", fmt.Errorf("sim: target %q is not a loopback address (the lab only sends to this machine)", target)
	}
	if !a.Is4() {
		return "", fmt.Errorf("sim: target %q: IPv4 loopback needed (clients bind 127.x.y.z)", target)
	}
	host := a.String()
	if p := u.Port(); p != "" {
		host = net.JoinHostPort(host, p)
	}
	return u.Scheme + "://" + host + strings.TrimRight(u.Path, "/"), nil
}

// reachable dials the target once: with nothing listening there every
// request would fail and every harvest read 0, a score of nothing.
func reachable(ctx context.Context, base string) error {
	u, err := url.Parse(base)
	if err != nil {
		return fmt.Errorf("sim: target %q: %w", base, err)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return fmt.Errorf("sim: target %s does not answer (is the platform or the gateway running there?): %w", base, err)
	}
	return c.Close()
}

// CheckParams reports what Run would refuse in the scenario parameters of
// a run of names: a parameter of no scenario of the run, an unknown key, a
// value out of range. The demo checks them before it starts anything.
func CheckParams(names []string, params map[string]string) error {
	return buildScenarios(names, params, &env{}, func(scenario, runner) {})
}

// buildScenarios builds the scenarios of names with their parameters,
// in the order of scenarios(), and hands each to add. The builders read
// only their parameters, not e.
func buildScenarios(names []string, params map[string]string, e *env, add func(scenario, runner)) error {
	chosen := map[string]bool{}
	for _, n := range names {
		chosen[n] = true
	}
	for k := range params {
		n, _, ok := strings.Cut(k, ".")
		if !ok || !chosen[n] {
			return fmt.Errorf("sim: parameter %q names no scenario of this run", k)
		}
	}
	for _, sc := range scenarios() {
		if !chosen[sc.name] {
			continue
		}
		r, err := sc.build(newParams(sc.name, params), e)
		if err != nil {
			return err
		}
		add(sc, r)
	}
	return nil
}

// Run drives the chosen populations at the target until the duration ends
// or every population has spent its request bound, and scores them.
func Run(ctx context.Context, o Options) (*Report, error) {
	base, err := checkLoopback(o.Target)
	if err != nil {
		return nil, err
	}
	if o.Truth == nil || o.Truth.Profiles() == 0 {
		return nil, errors.New("sim: no ground truth")
	}
	if o.Duration <= 0 || o.MaxRequests <= 0 {
		return nil, fmt.Errorf("sim: duration %v and max requests %d must both be positive", o.Duration, o.MaxRequests)
	}
	names := o.Scenarios
	if len(names) == 0 {
		names, _ = ParseScenarios(DefaultMix)
	}
	timeout := o.RequestTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	e := &env{base: base, truth: o.Truth, secret: []byte(o.JWTSecret), net: newNetwork(timeout, o.RootCAs),
		profiles: o.Truth.Profiles(), seed: o.Seed, refused: map[netip.Addr]int64{}, tally: newTally(o.Authors, func(id string) bool { _, ok := o.Truth.real(id); return ok })}
	defer e.net.close()
	if o.Take != nil {
		e.take = newTake(o.Take, e.tally)
	}

	type built struct {
		p *pop
		r runner
	}
	var runs []built
	err = buildScenarios(names, o.Params, e, func(sc scenario, r runner) {
		runs = append(runs, built{newPop(sc.name, sc.harvester, o.MaxRequests, e.profiles, r.users), r})
	})
	if err != nil {
		return nil, err
	}

	if err := reachable(ctx, base); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	start := time.Now()
	pops := make([]*pop, len(runs))
	var wg sync.WaitGroup
	for i, b := range runs {
		pops[i] = b.p
		b.p.start = start
		pctx, stop := context.WithCancel(ctx)
		b.p.stop = stop
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer stop()
			b.r.run(pctx, e, b.p)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last time.Time
loop:
	for {
		select {
		case <-done:
			break loop
		case last = <-tick.C:
			if o.Progress != nil {
				o.Progress(progress(start, o.Duration, pops))
			}
		}
	}
	elapsed := time.Since(start)
	if o.Progress != nil && time.Since(last) > 100*time.Millisecond {
		o.Progress(progress(start, o.Duration, pops))
	}
	rep := &Report{Target: base, Profiles: e.profiles, Seed: o.Seed, Scenarios: names,
		Seconds: round(elapsed.Seconds(), 2), MaxRequests: o.MaxRequests, DurationBound: o.Duration.String()}
	for _, p := range pops {
		rep.Populations = append(rep.Populations, p.result(e.profiles))
	}
	rep.TruthMismatch = e.misnamed.Load()
	rep.TruthMissing = e.missing.Load()
	rep.Served = e.tally.served(o.Authors)
	if e.take != nil {
		if rep.Taken, err = e.take.close(); err != nil {
			return nil, err
		}
	}
	for a, n := range e.refused {
		rep.RefusedAddrs = append(rep.RefusedAddrs, AddrCount{a.String(), n})
	}
	sort.Slice(rep.RefusedAddrs, func(i, j int) bool {
		a, b := rep.RefusedAddrs[i], rep.RefusedAddrs[j]
		return a.Refused > b.Refused || (a.Refused == b.Refused && a.Addr < b.Addr)
	})
	if len(rep.RefusedAddrs) > maxReportedAddrs {
		rep.RefusedAddrs = rep.RefusedAddrs[:maxReportedAddrs]
	}
	return rep, nil
}

// maxReportedAddrs bounds the refused addresses a report lists.
const maxReportedAddrs = 1000

// Progress is a snapshot of a running run.
type Progress struct {
	Elapsed, Duration time.Duration
	Populations       []ProgressRow
}

// ProgressRow is one population's counts so far.
type ProgressRow struct {
	Name      string
	Harvester bool
	Requests  int64
	Refused   int64
	Masked    int64
	Harvested int64 // harvesters: distinct real profiles taken
	Harmed    int64 // legitimate: users harmed
}

func progress(start time.Time, d time.Duration, pops []*pop) Progress {
	pr := Progress{Elapsed: time.Since(start), Duration: d}
	for _, p := range pops {
		r := ProgressRow{Name: p.name, Harvester: p.harvester, Requests: p.sent.Load(),
			Refused: p.refused.Load(), Masked: p.masked.Load(), Harvested: p.nHarvest.Load()}
		for i := range p.harmed {
			if p.harmed[i].Load() {
				r.Harmed++
			}
		}
		pr.Populations = append(pr.Populations, r)
	}
	return pr
}

// String is one line: elapsed time and each population's figures.
func (pr Progress) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%3.0fs/%.0fs", pr.Elapsed.Seconds(), pr.Duration.Seconds())
	for _, r := range pr.Populations {
		if r.Harvester {
			fmt.Fprintf(&b, " | %s %d req, %d taken", r.Name, r.Requests, r.Harvested)
		} else {
			fmt.Fprintf(&b, " | %s %d req, %d harmed", r.Name, r.Requests, r.Harmed)
		}
		if r.Refused > 0 {
			fmt.Fprintf(&b, ", %d refused", r.Refused)
		}
	}
	return b.String()
}

func round(f float64, digits int) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'f', digits, 64), 64)
	return v
}
