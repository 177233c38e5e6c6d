package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/warden-gw/warden/internal/lab/nginx"
	"github.com/warden-gw/warden/internal/lab/proc"
	"github.com/warden-gw/warden/internal/lab/sim"
)

// Options configures a demo; cmd/warden's flags fill it.
type Options struct {
	Warden       string            // the warden binary, for the children
	Duration     time.Duration     // of each run
	Mix          string            // scenario names, comma-separated, or all
	Params       map[string]string // scenario parameters NAME.KEY
	Profiles     int
	Seed         int64
	JWTSecret    string // the lab platform's token secret
	PlatformAddr string
	Listen       string // warden's address
	AdminListen  string
	Config       string   // warden's config file; empty: examples/lab.yaml as embedded
	Compare      []string // platform, nginx, nginx-ban, warden: in the order they run
	NginxRate    float64  // requests/s per IP
	NginxBurst   int
	BanMin       int64 // nginx-ban bans addresses refused this often by nginx
	MaxRequests  int64 // per population per run
	JSON         string
	Markdown     string
	Exit         bool // end after the score instead of serving until ctx ends
	// LedgerDir, when set, is where warden keeps the demo's ledger (it
	// must not exist yet: the figures count one run), kept after the
	// demo; else a directory of the run's, removed with it.
	LedgerDir string
	// KeepState runs a Config of the user's with its state directories
	// (store.memory.dir, ledger.dir) as written, so bans, limits and
	// budgets of earlier runs apply; else they move into the run's own
	// directory, removed with it, as the embedded config's are.
	KeepState bool
	Command   string // as typed, for the Markdown file

	Stdout, Stderr io.Writer          // the score; progress
	Progress       func(sim.Progress) // during each run
	ProgressEnd    func()             // after each run
}

// Run runs the demo (see the package doc).
func Run(ctx context.Context, o Options) error {
	for _, t := range o.Compare {
		switch t {
		case "platform", "nginx", "nginx-ban", "warden":
		default:
			return fmt.Errorf("--compare: unknown target %q", t)
		}
	}
	// Bounds, scenario parameters and the order of --compare are checked
	// before anything starts: a bad one found by the first run came after
	// the platform's start and the truth's reckoning.
	switch {
	case o.Duration <= 0 || o.MaxRequests <= 0:
		return fmt.Errorf("--duration %v and --max-requests %d must both be positive", o.Duration, o.MaxRequests)
	case o.NginxRate < 0 || o.NginxBurst < 0:
		return fmt.Errorf("--nginx-rate %v and --nginx-burst %d must not be negative", o.NginxRate, o.NginxBurst)
	case o.BanMin < 1:
		return fmt.Errorf("--ban-min %d must be at least 1", o.BanMin)
	}
	names, err := sim.ParseScenarios(o.Mix)
	if err != nil {
		return err
	}
	if err := sim.CheckParams(names, o.Params); err != nil {
		return err
	}
	if i := slices.Index(o.Compare, "nginx-ban"); i >= 0 && !slices.Contains(o.Compare[:i], "nginx") {
		return errors.New("--compare: nginx-ban needs an nginx run before it (its ban list is what nginx refused most)")
	}
	if o.KeepState && o.Config == "" {
		return errors.New("--keep-state needs --config FILE: the embedded config's state is always the run's own")
	}
	params := maps.Clone(o.Params)
	if params == nil {
		params = map[string]string{}
	}
	needWarden := !o.Exit || slices.Contains(o.Compare, "warden")
	cfgName := "examples/lab.yaml"
	if o.Config != "" {
		cfgName = filepath.Base(o.Config)
	}
	ledgerDir := ""
	if o.LedgerDir != "" {
		if ledgerDir, err = filepath.Abs(o.LedgerDir); err != nil {
			return fmt.Errorf("--ledger-dir: %w", err)
		}
		if _, err := os.Lstat(ledgerDir); err == nil {
			return fmt.Errorf("--ledger-dir: %s exists; the demo's ledger figures count one run: give a directory that does not exist yet", ledgerDir)
		}
	}
	dir, err := os.MkdirTemp("", "warden-demo-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	tokenFile := filepath.Join(dir, "admin-token")
	serveLedger := []string{}
	if ledgerDir == "" {
		ledgerDir = LedgerDir(dir) // the embedded config's (wardenConfig)
	} else {
		serveLedger = []string{"--ledger-dir", ledgerDir} // overrides any config's ledger.dir
	}

	var children []*proc.Process
	defer func() {
		for i := len(children) - 1; i >= 0; i-- {
			children[i].Stop()
		}
	}()
	fmt.Fprintf(o.Stderr, "starting the lab platform (%d profiles, seed %d) on %s\n", o.Profiles, o.Seed, o.PlatformAddr)
	plat, platAddr, err := startChild(ctx, "lab-platform", o.Warden, []string{"lab-platform", "--addr", o.PlatformAddr,
		"--profiles", strconv.Itoa(o.Profiles), "--seed", strconv.FormatInt(o.Seed, 10), "--jwt-secret", o.JWTSecret},
		nil, platformReady, 2*time.Minute)
	if err != nil {
		return err
	}
	children = append(children, plat)
	platURL := "http://" + platAddr

	// The approved partner's app key: registered with warden through the
	// variable its config names, and sent by the simulated partner.
	partnerKey, err := partnerKey(params)
	if err != nil {
		return err
	}
	if slices.Contains(names, "partner") {
		params["partner.key"] = partnerKey
	}

	gwURL, adminURL := "", ""
	var cfg string
	var env []string
	if needWarden {
		var moved []string
		cfg, env, moved, err = wardenConfig(o.Config, dir, tokenFile, o.JWTSecret, partnerKey, o.KeepState)
		if err != nil {
			return err
		}
		fmt.Fprintf(o.Stderr, "starting warden on %s (config %s)\n", o.Listen, cfgName)
		if o.Config != "" {
			fmt.Fprintln(o.Stderr, stateNote(cfgName, o.KeepState, moved))
			if o.LedgerDir == "" && !slices.Contains(moved, "ledger.dir") {
				// The file's own, as written (--keep-state), or none.
				if ledgerDir = configLedgerDir(o.Config); ledgerDir != "" {
					ledgerDir, _ = filepath.Abs(ledgerDir)
				}
			}
		}
		gw, gwAddr, err := startChild(ctx, "warden serve", o.Warden, append([]string{"serve", "--config", cfg, "--listen", o.Listen,
			"--upstream", platURL, "--admin-listen", o.AdminListen}, serveLedger...), env, gatewayReady, 30*time.Second)
		if err != nil {
			if cfg != o.Config {
				// The copy's lines and columns are the file's.
				return errors.New(strings.ReplaceAll(err.Error(), cfg, o.Config))
			}
			return err
		}
		children = append(children, gw)
		gwURL = "http://" + gwAddr
		adminURL = "http://" + o.AdminListen
		if m := gw.Ready(); m[2] != "" {
			adminURL = "http://" + m[2]
		}
	}

	fmt.Fprintln(o.Stderr, "computing ground truth")
	truth, err := sim.TruthOf(o.Profiles, o.Seed)
	if err != nil {
		return err
	}
	// The named authors whose reach the clients count and the ledger is
	// asked (ledger.go).
	authors, err := NamedAuthors(o.Profiles, o.Seed, namedAuthors)
	if err != nil {
		return err
	}

	var reps []*sim.Report
	var labels []string
	var lastNginx, wardenRep *sim.Report
	for _, t := range o.Compare {
		target := ""
		var ng *nginx.Server
		switch t {
		case "platform":
			target = platURL
		case "warden":
			target = gwURL
		case "nginx", "nginx-ban":
			var deny []string
			if t == "nginx-ban" {
				if lastNginx == nil {
					return errors.New("--compare: nginx-ban needs an nginx run before it (its ban list is what nginx refused most)")
				}
				deny = banList(lastNginx, o.BanMin)
			}
			ng, err = nginx.Start(ctx, nginx.Config{Listen: "127.0.0.1:0", Upstream: platURL,
				RatePerSecond: o.NginxRate, Burst: o.NginxBurst, Deny: deny, Dir: filepath.Join(dir, t), Workers: 1})
			if err != nil {
				return err
			}
			target = ng.URL()
		}
		label := targetLabel(t, o.NginxRate, o.NginxBurst, cfgName)
		// The harvesters' take through warden, traced after the run
		// against the ledger (only the embedded config's, whose
		// directory the demo chose).
		var take io.Writer
		if t == "warden" && o.Config == "" {
			f, err := os.Create(takeFile(dir))
			if err != nil {
				return fmt.Errorf("take file: %w", err)
			}
			defer f.Close()
			take = f
		}
		fmt.Fprintf(o.Stderr, "running %s for %s against %s (%s)\n", strings.Join(names, ","), o.Duration, label, target)
		rep, err := sim.Run(ctx, sim.Options{Target: target, Scenarios: names, Params: params, Duration: o.Duration,
			MaxRequests: o.MaxRequests, Truth: truth, JWTSecret: o.JWTSecret, Seed: uint64(o.Seed), Progress: o.Progress,
			Authors: authors, Take: take})
		if o.ProgressEnd != nil {
			o.ProgressEnd()
		}
		if ng != nil {
			ng.Stop()
		}
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return errors.New("interrupted")
		}
		if t == "nginx" {
			lastNginx = rep
		}
		if t == "warden" {
			wardenRep = rep
		}
		if t == "nginx-ban" {
			label += fmt.Sprintf(" (%d addresses)", len(banList(lastNginx, o.BanMin)))
		}
		reps = append(reps, rep)
		labels = append(labels, label)
	}

	if err := writeScore(o, names, labels, reps); err != nil {
		return err
	}
	// What warden's ledger says beside what the clients counted: only
	// with the embedded config, whose ledger directory the demo chose.
	if wardenRep != nil && o.Config == "" {
		tok, _ := os.ReadFile(tokenFile)
		fmt.Fprintln(o.Stderr, "waiting for warden's ledger to take the run's last Accesses")
		dropped := awaitLedger(ctx, adminURL, strings.TrimSpace(string(tok)))
		fig, err := LedgerFigures(ledgerDir, o.Profiles, wardenRep.Served, dropped)
		if err != nil {
			return fmt.Errorf("ledger figures: %w", err)
		}
		fig.Write(o.Stdout)
		if wardenRep.Taken != nil {
			c, err := demoCanaries(cfg, env)
			if err != nil {
				fmt.Fprintf(o.Stderr, "tracing without canaries: %v\n", err)
			}
			tr, err := TraceTake(takeFile(dir), ledgerDir, c, wardenRep.Taken)
			if err != nil {
				return err
			}
			tr.Write(o.Stdout)
		}
	}
	if o.Exit {
		if needWarden && o.LedgerDir != "" {
			fmt.Fprintf(o.Stdout, "\nledger kept in %s (warden ledger verify --ledger %s)\n", ledgerDir, ledgerDir)
		}
		return nil
	}
	fmt.Fprintf(o.Stdout, "\nlab platform: %s\n", platURL)
	if gwURL != "" {
		fmt.Fprintf(o.Stdout, "warden:       %s (admin %s, token in %s)\n", gwURL, adminURL, tokenFile)
		kept := "removed when the demo ends; --ledger-dir DIR keeps it"
		if o.LedgerDir != "" {
			kept = "kept after the demo"
		} else if o.KeepState {
			kept = "the config's ledger.dir, kept (--keep-state)"
		}
		// Where to point the query commands while the demo serves.
		if ledgerDir == "" {
			fmt.Fprintf(o.Stdout, "ledger:       none (%s sets no ledger.dir)\n", cfgName)
		} else {
			fmt.Fprintf(o.Stdout, "ledger:       %s (%s; warden reach --authors ID,... --ledger %s)\n", ledgerDir, kept, ledgerDir)
		}
	}
	fmt.Fprintln(o.Stdout, "serving until Ctrl-C")
	<-ctx.Done()
	return nil
}

// stateNote says where a config of the user's keeps warden's state in
// this run: moved (the keys freshState moved into the run's directory),
// or as written with --keep-state.
func stateNote(cfgName string, keep bool, moved []string) string {
	switch {
	case keep:
		return "warden's state: " + cfgName + "'s store.memory.dir and ledger.dir as written (--keep-state): bans, limits and budgets of earlier runs apply"
	case len(moved) == 0:
		return "warden's state: " + cfgName + " keeps none on disk (no store.memory.dir or ledger.dir)"
	}
	return "warden's state: " + cfgName + "'s " + strings.Join(moved, " and ") + " replaced by the run's own directory, removed with it (--keep-state uses them as written)"
}

// namedAuthors is the size of the demo's named set of authors.
const namedAuthors = 10

var (
	platformReady = regexp.MustCompile(`lab-platform listening on (\S+)`)
	// The admin address is optional here so that a change to the line's
	// tail falls back to --admin-listen rather than failing the start.
	gatewayReady = regexp.MustCompile(`warden listening on (\S+)(?:.*admin (\d[^\s,)]*))?`)
)

// startChild runs exe args and waits for a line matching ready, whose
// first group is the address the child listens on.
func startChild(ctx context.Context, name, exe string, args, env []string, ready *regexp.Regexp, timeout time.Duration) (*proc.Process, string, error) {
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), env...)
	// Errors show the last 20 lines; the children serve until Ctrl-C, so
	// what is kept stays small.
	c, err := proc.Start(ctx, cmd, proc.Options{Name: name, Ready: ready, Timeout: timeout, Keep: 64 << 10})
	if err != nil {
		return nil, "", err
	}
	addr := c.Ready()[1]
	if _, _, err := net.SplitHostPort(addr); err != nil {
		c.Stop()
		return nil, "", fmt.Errorf("%s: readiness line has no address: %q", name, addr)
	}
	return c, addr, nil
}

// banList is what an operator would ban after reading nginx's logs: the
// addresses refused at least min times, except the approved partner's
// servers, which the operator knows.
func banList(rep *sim.Report, min int64) []string {
	var out []string
	for _, a := range rep.Offenders(min) {
		if sim.ScenarioOf(a) != "partner" {
			out = append(out, a)
		}
	}
	return out
}

func targetLabel(t string, rate float64, burst int, cfg string) string {
	switch t {
	case "platform":
		return "without protection"
	case "nginx":
		return fmt.Sprintf("nginx limit_req %g r/s per IP, burst %d", rate, burst)
	case "nginx-ban":
		return fmt.Sprintf("nginx limit_req %g r/s, burst %d, ban list", rate, burst)
	}
	return "with warden (" + cfg + ")"
}
