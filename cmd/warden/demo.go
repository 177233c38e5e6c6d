package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/warden-gw/warden/internal/lab/demo"
	"github.com/warden-gw/warden/internal/lab/sim"
)

// runDemo starts the lab platform and warden in front of it as child
// processes, drives the same mix at both (without and with warden), prints
// the scores side by side, then keeps both serving until interrupted.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	dur := fs.Duration("duration", 30*time.Second, "length of each run (one without warden, one with)")
	scen := fs.String("scenario", sim.DefaultMix, "the mix: "+strings.Join(sim.Names(), ", ")+", or all")
	profiles := fs.Int("profiles", 100_000, "profiles on the lab platform")
	seed := fs.Int64("seed", 1, "lab platform seed")
	secret := fs.String("jwt-secret", "lab-secret", "lab platform token secret")
	platAddr := fs.String("platform-addr", "127.0.0.1:8081", "lab platform address")
	gwAddr := fs.String("listen", "127.0.0.1:8080", "warden address")
	adminAddr := fs.String("admin-listen", "127.0.0.1:9090", "warden admin address")
	configFile := fs.String("config", "", "warden config (default: the embedded copy of examples/lab.yaml); its store.memory.dir and ledger.dir are replaced by the run's own directory, removed with it, unless --keep-state")
	compare := fs.String("compare", "platform,warden", "targets to run the mix against, in order: platform (no protection), nginx (limit_req per IP), nginx-ban (limit_req and a ban list of the addresses nginx refused most), warden")
	nginxRate := fs.Float64("nginx-rate", 10, "nginx limit_req rate per IP (requests/s)")
	nginxBurst := fs.Int("nginx-burst", 20, "nginx limit_req burst")
	banMin := fs.Int64("ban-min", 20, "nginx-ban: ban addresses refused at least this often in the nginx run")
	maxReq := fs.Int64("max-requests", 2_000_000, "most requests per population per run")
	jsonOut := fs.String("json", "", "write the scores as JSON to this file")
	mdOut := fs.String("markdown", "", "write the comparison table (Markdown, with the command) to this file")
	exit := fs.Bool("exit", false, "exit after the score instead of serving until interrupted")
	ledgerDir := fs.String("ledger-dir", "", "keep warden's ledger in DIR (must not exist yet), to query after the demo; default: a directory of the run's, removed with it")
	keepState := fs.Bool("keep-state", false, "with --config: use its store.memory.dir and ledger.dir as written, so bans, limits and budgets of earlier runs apply (default: each demo starts afresh)")
	params := paramFlags{}
	fs.Var(params, "p", "scenario parameter NAME.KEY=VALUE (repeatable)")
	if err := fs.Parse(args); err != nil {
		return errUsage // the flag package has said what was wrong
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "warden demo: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	return demo.Run(ctx, demo.Options{
		Warden: self, Duration: *dur, Mix: *scen, Params: params, Profiles: *profiles, Seed: *seed, JWTSecret: *secret,
		PlatformAddr: *platAddr, Listen: *gwAddr, AdminListen: *adminAddr, Config: *configFile,
		Compare: strings.Split(*compare, ","), NginxRate: *nginxRate, NginxBurst: *nginxBurst, BanMin: *banMin,
		MaxRequests: *maxReq, JSON: *jsonOut, Markdown: *mdOut, Exit: *exit, LedgerDir: *ledgerDir, KeepState: *keepState,
		Command: "warden demo " + strings.Join(args, " "),
		Stdout:  stdout, Stderr: stderr, Progress: progressPrinter(stderr), ProgressEnd: func() { endProgress(stderr) },
	})
}
