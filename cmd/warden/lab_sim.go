package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/warden-gw/warden/internal/lab/sim"
)

// paramFlags collects repeated NAME.KEY=VALUE scenario parameters.
type paramFlags map[string]string

func (p paramFlags) String() string { return "" }

func (p paramFlags) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || !strings.Contains(k, ".") {
		return fmt.Errorf("want NAME.KEY=VALUE, got %q", s)
	}
	p[k] = v
	return nil
}

// runLabSim drives simulated users and harvesters at a URL and prints the
// score.
func runLabSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("lab-sim", stderr)
	target := fs.String("target", "http://127.0.0.1:8080", "base URL to drive (the gateway, or the platform directly); loopback only")
	scen := fs.String("scenario", sim.DefaultMix, "comma-separated scenarios: "+strings.Join(sim.Names(), ", ")+", or all")
	dur := fs.Duration("duration", time.Minute, "how long to run")
	maxReq := fs.Int64("max-requests", 2_000_000, "most requests per population")
	profiles := fs.Int("profiles", 100_000, "the platform's --profiles")
	seed := fs.Int64("seed", 1, "the platform's --seed (also seeds the populations)")
	secret := fs.String("jwt-secret", "lab-secret", "the platform's --jwt-secret")
	truthFile := fs.String("truth", "", "ground truth CSV (`lab-platform truth`); default: computed from --profiles and --seed")
	jsonOut := fs.String("json", "", "write the score as JSON to this file")
	quiet := fs.Bool("quiet", false, "no progress display")
	caFile := fs.String("ca", "", "PEM `FILE` of the certificates an https target's is verified with (a gateway's own); default: the system's")
	params := paramFlags{}
	fs.Var(params, "p", "scenario parameter NAME.KEY=VALUE (repeatable; see the sim package doc)")
	if err := fs.Parse(args); err != nil {
		return errUsage // the flag package has said what was wrong
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "warden lab-sim: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	names, err := sim.ParseScenarios(*scen)
	if err != nil {
		return err
	}
	truth, err := loadTruth(*truthFile, *profiles, *seed)
	if err != nil {
		return err
	}
	opts := sim.Options{
		Target: *target, Scenarios: names, Params: params, Duration: *dur, MaxRequests: *maxReq,
		Truth: truth, JWTSecret: *secret, Seed: uint64(*seed),
	}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return fmt.Errorf("--ca: %w", err)
		}
		opts.RootCAs = x509.NewCertPool()
		if !opts.RootCAs.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--ca: no PEM certificate in %s", *caFile)
		}
	}
	if !*quiet {
		opts.Progress = progressPrinter(stderr)
	}
	rep, err := sim.Run(ctx, opts)
	if err != nil {
		return err
	}
	if !*quiet {
		endProgress(stderr)
	}
	if err := rep.WriteTable(stdout); err != nil {
		return err
	}
	if *jsonOut != "" {
		if err := writeReportJSON(*jsonOut, rep); err != nil {
			return err
		}
	}
	if rep.Void() { // the table says why; the exit status says the score is void
		return fmt.Errorf("the run measured nothing (see the warnings above)")
	}
	return nil
}

func writeReportJSON(path string, rep *sim.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write score: %w", err)
	}
	if err := rep.WriteJSON(f); err != nil {
		f.Close()
		return fmt.Errorf("write score %s: %w", path, err)
	}
	return f.Close()
}

// loadTruth reads the ground truth from a CSV file, or computes it as the
// platform does from its profile count and seed.
func loadTruth(file string, profiles int, seed int64) (*sim.Truth, error) {
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("truth: %w", err)
		}
		defer f.Close()
		return sim.ReadTruth(f)
	}
	return sim.TruthOf(profiles, seed)
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressPrinter shows progress as one updating line on a terminal, one
// line per second otherwise.
func progressPrinter(w io.Writer) func(sim.Progress) {
	tty := isTerminal(w)
	return func(p sim.Progress) {
		if tty {
			fmt.Fprintf(w, "\r\033[K%s", p)
		} else {
			fmt.Fprintln(w, p)
		}
	}
}

func endProgress(w io.Writer) {
	if isTerminal(w) {
		fmt.Fprintln(w)
	}
}
