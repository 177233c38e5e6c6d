package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/warden-gw/warden/internal/admin"
	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/dashboard"
	"github.com/warden-gw/warden/internal/gateway"
	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/ledger/clickhouse"
	"github.com/warden-gw/warden/internal/ration"
	"github.com/warden-gw/warden/internal/store"
	"github.com/warden-gw/warden/internal/store/guard"
	"github.com/warden-gw/warden/internal/store/memory"
	"github.com/warden-gw/warden/internal/store/memory/disk"
	"github.com/warden-gw/warden/internal/store/redis"
)

// runServe runs the gateway until SIGINT/SIGTERM, reloading on SIGHUP.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	path := fs.String("config", "examples/lab.yaml", "config file")
	listen := fs.String("listen", "", "gateway address (overrides the config)")
	upstream := fs.String("upstream", "", "upstream URL (overrides the config)")
	adminListen := fs.String("admin-listen", "", "admin address (overrides the config)")
	ledgerDir := fs.String("ledger-dir", "", "ledger directory (overrides ledger.dir; --ledger-dir \"\" turns the ledger off)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	// An empty --ledger-dir given on the command line is an override too:
	// the ledger off, as ledger.dir: "" has it, not the config's left on.
	ledgerSet := false
	fs.Visit(func(f *flag.Flag) { ledgerSet = ledgerSet || f.Name == "ledger-dir" })
	if fs.NArg() > 0 { // a config named without --config would be ignored for examples/lab.yaml
		fmt.Fprintf(stderr, "warden serve: unexpected argument %q (the config is --config FILE)\n", fs.Arg(0))
		return errUsage
	}
	over := func(c *config.Config) error {
		if *listen != "" {
			c.Listen = *listen
		}
		if *upstream != "" {
			c.Upstream.URL = *upstream
		}
		if *adminListen != "" {
			c.Admin.Listen = *adminListen
		}
		if ledgerSet {
			c.Ledger.Dir = *ledgerDir
		}
		return c.Validate()
	}
	cfg, err := config.Load(*path)
	if err == nil {
		err = over(cfg)
	}
	if err != nil {
		return err
	}
	logOut := newLogWriter(stderr)
	defer logOut.Close(2 * time.Second)
	log, err := newLogger(cfg.Log, logOut)
	if err != nil {
		return err
	}
	token, err := admin.LoadToken(cfg.Admin.TokenFile, cfg.Admin.TokenEnv)
	if err != nil {
		return err // "admin token: ..."
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "warden_log_lines_dropped_total",
			Help: "Log lines dropped because the log output (stderr) did not keep up and the backlog was full.",
		}, func() float64 { return float64(logOut.Dropped()) }))
	gm, err := gateway.NewMetrics(reg)
	if err != nil {
		return err
	}
	rm := ration.NewMetrics(reg)
	st, ks, err := openStore(ctx, cfg, reg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	if ks != nil {
		// Snapshots run beside the gateway; a last one is taken once it has
		// drained (deferred: after the requests, before the store closes).
		sctx, scancel := context.WithCancel(context.WithoutCancel(ctx))
		snapDone := make(chan struct{})
		go func() { defer close(snapDone); ks.disk.Run(sctx, ks.mem) }()
		defer func() {
			scancel()
			<-snapDone
			begin := time.Now()
			if err := ks.disk.Close(context.WithoutCancel(ctx), ks.mem); err != nil {
				log.Error("last snapshot failed", slog.String("error", err.Error()))
				return
			}
			log.Info("state saved", slog.String("dir", cfg.Store.Memory.Dir), slog.Duration("took", time.Since(begin)))
		}()
	}
	recm := gateway.NewRecordingMetrics(reg) // one set for every recorder
	// The dashboard's candidate identities, ranked by the directory's
	// counts: without a ledger there is nothing to rank, and a fleet's
	// ledger in ClickHouse ranks every gateway's identities itself. The
	// Watch is fed by the ledger's recording, after the ledger: a
	// recording of its own cost the request path a second hand-off per
	// inspected answer.
	var watch *dashboard.Watch
	var alsoLedger []gateway.Recorder
	// The Watch is seeded with the ledger's Accesses from before this
	// start (seedTo): it counts every later one as the gateway records it.
	seedTo := time.Now()
	if cfg.Ledger.Dir != "" && cfg.Ledger.Backend != config.LedgerClickHouse {
		watch = dashboard.NewWatch(0)
		alsoLedger = append(alsoLedger, watch)
	}
	recs, closeLedger, err := openLedger(cfg, reg, recm, log, alsoLedger...)
	if err != nil {
		return err
	}
	defer closeLedger() // after the gateway has drained, before the store closes
	detRec, det, closeDetector, err := openDetector(cfg, st, ks, reg, recm, rm.Shadow(), log)
	if err != nil {
		return err
	}
	defer closeDetector() // after the gateway has drained, before the store closes
	if detRec != nil {
		recs = append(recs, detRec)
	}
	deps := gateway.Deps{Store: st, Inspect: inspect.NewMetrics(reg), Ration: rm, Metrics: gm, Logger: log, Recordings: recs}
	if deps.Responders, deps.Seeders, err = openCanaries(cfg, log); err != nil {
		return err
	}

	pctx, pcancel := context.WithCancel(ctx)
	p, err := gateway.NewPipeline(pctx, cfg, deps)
	if err != nil {
		pcancel()
		return err
	}
	gw, err := gateway.New(cfg, p, gm, log)
	if err != nil {
		pcancel()
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		pcancel()
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	aln, err := net.Listen("tcp", cfg.Admin.Listen)
	if err != nil {
		pcancel()
		ln.Close()
		return fmt.Errorf("admin listen %s: %w", cfg.Admin.Listen, err)
	}
	if t := cfg.Admin.TLS; t.Enabled() {
		// HTTPS: the admin token and the dashboard's session (its
		// cookie then Secure) never cross the network in clear.
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			pcancel()
			ln.Close()
			aln.Close()
			return fmt.Errorf("admin.tls: %w", err)
		}
		aln = tls.NewListener(aln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	var ready sync.Mutex // held while draining: not ready
	draining := false
	// One cache of the ledger's open hour for the dashboard and the admin
	// API's ledger queries (the pages ask through both).
	ledgerCache := ledger.NewCache(cfg.Dashboard.LedgerCacheAccesses)
	// A fleet's ledger in ClickHouse: one client for the dashboard's pages
	// and the admin API's ledger queries.
	var ch *clickhouse.Client
	var fleet *dashboard.Fleet
	if cfg.Ledger.Backend == config.LedgerClickHouse {
		if ch, err = clickhouseSource(cfg, ""); err != nil {
			pcancel()
			return err
		}
		fleet = &dashboard.Fleet{Ledger: ch, Budgets: clickhouse.NewBudgets(ch, func(name string) *big.Rat {
			return gw.Pipeline().Config().Ledger.Privacy.Limit(name) // the config in force, across reloads
		})}
	}
	// The day rollups and author indexes passed over by the dashboard's
	// own readers and the admin API's ledger queries, counted as one.
	skipped := derivedSkipped(reg)
	dash, err := dashboard.New(dashboard.Options{Token: token, Gatherer: reg, LedgerDir: cfg.Ledger.Dir, LedgerCache: ledgerCache, Fleet: fleet, Watch: watch, Logger: log,
		DerivedSkipped: skipped,
		TraceMaxBytes:  cfg.Dashboard.TraceMaxBytes, TraceTimeout: cfg.Dashboard.TraceTimeout,
		LoginFailures: cfg.Dashboard.LoginFailures, LoginWindow: cfg.Dashboard.LoginWindow,
		Config: func() *config.Config { return gw.Pipeline().Config() }})
	if err != nil {
		pcancel()
		return err
	}
	adm, err := admin.New(admin.Options{
		Dashboard: dash,
		Token:     token, Gatherer: reg, Bans: st, Logger: log,
		Limits: facetViewer{gw},
		Ledger: ledgerQueries(ch, cfg.Ledger.Dir, ledgerCache, func() *config.Config { return gw.Pipeline().Config() }, log, skipped),
		Ready: func(ctx context.Context) error {
			ready.Lock()
			d := draining
			ready.Unlock()
			if d {
				return errors.New("shutting down")
			}
			// A store that can fail (Redis) must answer: while it does
			// not, every decision fails in the failure mode.
			if p, ok := st.(guard.Pinger); ok {
				if err := p.Ping(ctx); err != nil {
					return fmt.Errorf("store: %w", err)
				}
			}
			return nil
		},
		NetBits: func() (int, int) {
			c := gw.Pipeline().Config()
			return c.Identity.Net.IPv4Prefix, c.Identity.Net.IPv6Prefix
		},
		Matchable: func(facet, value string) error { return banMatchable(gw.Pipeline().Config(), facet, value) },
	})
	if err != nil {
		pcancel()
		return err
	}
	// SIGHUP is caught before the readiness line, so a reload sent the
	// moment warden says it is ready never kills it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	actx, acancel := context.WithCancel(context.WithoutCancel(ctx))
	defer acancel()
	adminDone := make(chan error, 1)
	go func() { adminDone <- adm.Serve(actx, aln) }()
	go dash.Run(actx)
	if watch != nil {
		// The identities page ranks 24 hours: a restart must not forget
		// who took the most before it. Beside the serving, once.
		go func() {
			begin := time.Now()
			n, err := watch.Seed(actx, cfg.Ledger.Dir, ledger.Window{From: seedTo.Add(-24 * time.Hour), To: seedTo})
			if err != nil && actx.Err() == nil {
				log.Warn("dashboard: identities not seeded from the ledger (the page lists the identities seen since the start)", slog.String("error", err.Error()))
				return
			}
			log.Info("dashboard: identities seeded from the ledger", slog.Int("accesses", n), slog.Duration("took", time.Since(begin)))
		}()
	}
	serveDone := make(chan error, 1)
	go func() { serveDone <- gw.Serve(ln) }()

	fmt.Fprintf(stdout, "warden listening on %s (upstream %s, admin %s, front %s)\n", ln.Addr(), cfg.Upstream.URL, aln.Addr(), gw.Front())
	log.Info("serving", slog.String("listen", ln.Addr().String()), slog.String("upstream", cfg.Upstream.URL),
		slog.String("admin", aln.Addr().String()), slog.String("front", gw.Front()), slog.String("store", string(cfg.Store.Backend)))

	build := func(ctx context.Context, c *config.Config) (*gateway.Pipeline, error) {
		return gateway.NewPipeline(ctx, c, deps)
	}
	rl := reloader{path: *path, over: over, build: build, count: gm.Reloaded}
	for {
		select {
		case <-hup:
			next, np, stop, err := rl.reload(ctx, cfg)
			if err != nil {
				log.Error("config reload refused; the running config stays", slog.String("error", err.Error()))
				continue
			}
			gw.Swap(np)
			if det != nil {
				det.SetAllows(detectAllows(next.Allow)) // allow is reloadable; the detector's rules are not
			}
			// The old pipeline's background work (JWKS refresh) ends once
			// requests still on it had time to finish.
			time.AfterFunc(cfg.Server.ShutdownTimeout, pcancel)
			pcancel, cfg = stop, next
			log.Info("config reloaded", slog.String("config", *path))
		case err := <-serveDone:
			pcancel()
			return err
		case <-ctx.Done():
			ready.Lock()
			draining = true
			ready.Unlock()
			log.Info("shutting down: draining requests in flight", slog.Duration("timeout", cfg.Server.ShutdownTimeout))
			sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
			err := gw.Shutdown(sctx)
			cancel()
			<-serveDone
			acancel()
			<-adminDone
			pcancel()
			if err != nil {
				return fmt.Errorf("shutdown: %w", err)
			}
			log.Info("stopped")
			return nil
		}
	}
}

// kept is the memory store and the disk that keeps its state across
// restarts (store.memory.dir).
type kept struct {
	mem  *memory.Store
	disk *disk.Disk
}

// openStore opens the configured store. A remote one (Redis) runs behind the
// guard (timeout, breaker, failure mode); the in-process memory store cannot
// be unreachable, so it is used bare, sparing every decision a timer. With
// store.memory.dir the memory store is restored from its directory first;
// the caller runs the snapshots (kept).
func openStore(ctx context.Context, cfg *config.Config, reg prometheus.Registerer, log *slog.Logger) (store.Store, *kept, error) {
	switch cfg.Store.Backend {
	case config.StoreRedis:
		guardM, err := guard.NewMetrics(reg)
		if err != nil {
			return nil, nil, err
		}
		// Connect, not New: a gateway started while Redis is down serves in
		// its failure mode and connects when Redis comes up.
		s, err := redis.Connect(ctx, cfg.Store.Redis, redis.Options{ExactMax: cfg.Store.Memory.ExactMax, Logger: log})
		if err != nil {
			return nil, nil, fmt.Errorf("store: %w", err)
		}
		g, err := guard.New(s, cfg.Store.Failure, guardM, log)
		if err != nil {
			s.Close()
			return nil, nil, err
		}
		return g, nil, nil
	default:
		mc := cfg.Store.Memory
		opts := memory.Options{MaxKeys: mc.MaxKeys, Shards: mc.Shards, ExactMax: mc.ExactMax}
		if mc.Dir == "" {
			log.Warn("store state in memory only: bans, budgets and rate limits are lost when warden stops; set store.memory.dir to keep them")
			return memory.New(opts), nil, nil
		}
		dm, err := disk.NewMetrics(reg)
		if err != nil {
			return nil, nil, err
		}
		d, err := disk.Open(disk.Options{Dir: mc.Dir, Interval: mc.SnapshotInterval, Logger: log, Metrics: dm})
		if err != nil {
			return nil, nil, fmt.Errorf("store: %w", err)
		}
		opts.HashKey, opts.Bans = d.HashKey(), d
		m := memory.New(opts)
		sum, err := d.Restore(ctx, m)
		if err != nil {
			m.Close()
			d.Close(ctx, nil)
			return nil, nil, fmt.Errorf("store: %w", err)
		}
		attrs := []any{slog.String("dir", mc.Dir), slog.Int("limits", sum.Restored.Limits), slog.Int("budgets", sum.Restored.Budgets),
			slog.Int("link_filters", sum.Restored.Links), slog.Int("expired_dropped", sum.Restored.Dropped), slog.Int("bans", sum.Bans),
			slog.Int("ban_log_records", sum.BanLog), slog.Int("detector_ban_histories", sum.DetectOffences), slog.Int("detector_tracks", sum.DetectTracks),
			slog.Duration("took", sum.Took)}
		if !sum.Snapshot.IsZero() {
			attrs = append(attrs, slog.Time("snapshot", sum.Snapshot), slog.Duration("snapshot_age", time.Since(sum.Snapshot).Round(time.Millisecond)),
				slog.Int64("snapshot_bytes", sum.SnapBytes))
		} else {
			attrs = append(attrs, slog.String("snapshot", "none"))
		}
		log.Info("state restored", attrs...)
		return m, &kept{mem: m, disk: d}, nil
	}
}

func newLogger(c config.Log, w io.Writer) (*slog.Logger, error) {
	lvl, err := config.ParseLevel(c.Level)
	if err != nil {
		return nil, err
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if c.Format == config.LogText {
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	opts.ReplaceAttr = msDurations
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}

// msDurations writes a duration in a JSON log line as milliseconds, a
// number, under its name with _ms appended ("took_ms": 1.5): slog's JSON
// handler writes nanoseconds as an integer under the bare name
// ("took": 1500000), a unit a reader has to know. Text lines keep Go's
// duration string (took=1.5ms), which says its unit.
func msDurations(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.Float64(a.Key+"_ms", float64(a.Value.Duration())/float64(time.Millisecond))
	}
	return a
}

// facetViewer answers the admin API's facet state from the pipeline in force.
type facetViewer struct{ gw *gateway.Gateway }

func (v facetViewer) FacetState(ctx context.Context, facet, value string) (any, error) {
	limits, ban, err := v.gw.Pipeline().Admitter().FacetState(ctx, time.Now(), facet, value)
	if err != nil {
		return nil, err
	}
	return struct {
		Facet  string     `json:"facet"`
		Value  string     `json:"value"`
		Ban    *store.Ban `json:"ban"`
		Limits any        `json:"limits"`
	}{facet, value, ban, limits}, nil
}

// banMatchable says why a ban on facet's value could never match a request
// under cfg: any account when no token is verified, an account its
// subject_pattern refuses (the request is refused before any ban is read),
// an app its registered keys never name (with keys, the app facet is a
// registered app's name). nil otherwise.
func banMatchable(cfg *config.Config, facet, value string) error {
	switch facet {
	case identify.FacetAccount.String():
		if !cfg.Identity.Account.Verifies() {
			return fmt.Errorf("account ban %q would never match: no request has an account (identity.account has no secret, public key or JWKS to verify tokens)", value)
		}
		// Matched as identify matches it: the whole subject.
		re, err := cfg.Identity.Account.SubjectRE()
		if err == nil && re != nil && !re.MatchString(value) {
			return fmt.Errorf("account ban %q would never match: verified subjects match identity.account.subject_pattern %s", value, cfg.Identity.Account.SubjectPattern)
		}
	case identify.FacetApp.String():
		keys := cfg.Identity.App.Keys
		if len(keys) == 0 {
			return nil
		}
		names := make([]string, len(keys))
		for i, k := range keys {
			if k.App == value {
				return nil
			}
			names[i] = k.App
		}
		return fmt.Errorf("app ban %q would never match: identity.app.keys registers %s", value, strings.Join(names, ", "))
	}
	return nil
}
