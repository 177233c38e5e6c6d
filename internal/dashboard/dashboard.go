package dashboard

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"math/big"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/privacy"
	"github.com/warden-gw/warden/internal/trace"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Options configures a Dashboard. Token and Gatherer are required.
type Options struct {
	Token    string              // the admin token the sign-in form takes
	Gatherer prometheus.Gatherer // the process's metrics, for the now page
	// LedgerDir is the ledger directory ("" without a ledger: the pages
	// that read it say so).
	LedgerDir string
	// LedgerCache keeps the ledger's open hour read between pages (nil: New
	// makes one): the server gives the admin API's ledger queries the same,
	// so that the pages they answer share it.
	LedgerCache *ledger.Cache
	// DerivedSkipped counts the day rollups and author indexes the pages'
	// own ledger readers (identities, transparency, trace) passed over,
	// each also logged at warn level naming the file: the answer is
	// computed exactly from the hours, but the file wants rebuilding.
	// warden serve gives the counter its admin API's ledger queries count
	// in (warden_ledger_derived_skipped_total). nil: logged only.
	DerivedSkipped Counter
	// Fleet, when the gateway writes a fleet's shared ledger (ClickHouse),
	// is that ledger and the budgets kept beside it: the transparency page
	// then counts every gateway's Accesses and charges the fleet's one
	// budget, so each gateway publishes the same figures under one
	// guarantee (a budget per gateway would release the same people's
	// figures once per gateway). The identities page then ranks the
	// fleet's identities (every gateway's, not the Watch's) and counts
	// their budgets there (the rows shown only: a query each), the reach
	// page shows the fleet's researchers' budgets, and the trace page
	// replays the fleet's Accesses.
	Fleet *Fleet
	// Config returns the config in force (budgets, registered apps,
	// privacy limits); read per request so it follows reloads.
	Config func() *config.Config
	// Watch nominates the identities page's candidates from a directory
	// (nil: the page lists none); a fleet's page ranks the fleet's own.
	Watch  *Watch
	Logger *slog.Logger     // nil: discard
	Now    func() time.Time // nil: time.Now

	// TransparencyEpsilon is the privacy cost of one day's transparency
	// release (default 0.25: rho 1/32 a day from the "transparency"
	// budget).
	TransparencyEpsilon *big.Rat
	// SessionTTL bounds a session's life (default 8h).
	SessionTTL time.Duration

	// TraceMaxBytes bounds an upload to the trace page (default
	// DefaultTraceMaxBytes); TraceTimeout bounds reading it and replaying
	// the ledger (default DefaultTraceTimeout): the config's
	// dashboard.trace_max_bytes and trace_timeout.
	TraceMaxBytes int64
	TraceTimeout  time.Duration
	// LoginFailures failed sign-ins from one client address within
	// LoginWindow (default 5 in a minute: dashboard.login_failures and
	// login_window) make /login answer 429 until the window has passed.
	LoginFailures int
	LoginWindow   time.Duration
	// LookupEnv reads the canary key variable the config names, for the
	// trace page (nil: os.LookupEnv).
	LookupEnv func(string) (string, bool)
}

// Counter is what the dashboard asks of a metric it counts in
// (prometheus.Counter is one).
type Counter interface{ Inc() }

// Fleet is a fleet's shared ledger and its researchers' budgets.
type Fleet struct {
	Ledger  FleetLedger
	Budgets FleetBudgets
}

// FleetLedger is a fleet's ledger as the pages read it: its queries (the
// identities and transparency pages), its top identities (the identities
// page), its refused identities (the transparency page), and its Accesses replayed in time order (the trace page).
// ClickHouse's client is one.
type FleetLedger interface {
	ledger.Source
	trace.Replayer
	// Top ranks facet by's values by the distinct subjects of class
	// served unmasked to each in win (Distinct; class "": every record),
	// most first, then by value: the first n, with their counts.
	Top(ctx context.Context, win ledger.Window, by identify.Facet, class string, n int) ([]string, []int, error)
	// RefusedIdentities counts the distinct identities refused in win by
	// one of rules, each as its refusal named it (the transparency page's
	// harvesting stopped: ledger.Reader.RefusedIdentities).
	RefusedIdentities(ctx context.Context, win ledger.Window, rules []string) (int, error)
}

// FleetBudgets are a fleet's researchers' budgets: charged by the
// transparency page, shown by the reach page. ClickHouse's Budgets is one.
type FleetBudgets interface {
	privacy.Keeper
	// Standing is a researcher's account without asking anything.
	Standing(ctx context.Context, researcher string) (privacy.Account, error)
}

// Dashboard serves the pages. Run samples the metrics for the charts.
type Dashboard struct {
	opts      Options
	tokenHash [sha256.Size]byte
	pages     map[string]*template.Template
	sessions  *sessions
	samples   *samples
	api       http.Handler
	tracing   chan struct{} // held while a trace runs: one at a time
	logins    *loginLimit
	released  releaseCache // the transparency page's answer of the day
	// budgetChecked is the UTC day Run last checked the transparency
	// page's budget (checkTransparencyBudget); Run's goroutine only.
	budgetChecked string
}

// TransparencyResearcher is the privacy budget the transparency page is
// charged to (ledger.privacy.researchers.transparency sets its total).
const TransparencyResearcher = "transparency"

const (
	sampleEvery    = 5 * time.Second
	sampleCapacity = int(time.Hour / sampleEvery)
)

// New checks opts and parses the templates.
func New(opts Options) (*Dashboard, error) {
	switch {
	case len(opts.Token) < 16:
		return nil, errors.New("dashboard: the admin token (at least 16 bytes) is required")
	case opts.Gatherer == nil:
		return nil, errors.New("dashboard: a metrics gatherer is required")
	}
	if opts.Config == nil {
		opts.Config = func() *config.Config { return nil }
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.LedgerCache == nil {
		opts.LedgerCache = ledger.NewCache(0)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.TransparencyEpsilon == nil {
		opts.TransparencyEpsilon = big.NewRat(1, 4)
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 8 * time.Hour
	}
	if opts.TraceMaxBytes <= 0 {
		opts.TraceMaxBytes = DefaultTraceMaxBytes
	}
	if opts.TraceTimeout <= 0 {
		opts.TraceTimeout = DefaultTraceTimeout
	}
	if opts.LoginFailures <= 0 {
		opts.LoginFailures = 5
	}
	if opts.LoginWindow <= 0 {
		opts.LoginWindow = time.Minute
	}
	d := &Dashboard{opts: opts, tokenHash: sha256.Sum256([]byte(opts.Token)), pages: map[string]*template.Template{},
		sessions: newSessions(maxSessions), samples: newSamples(sampleCapacity), tracing: make(chan struct{}, 1),
		logins: newLoginLimit(opts.LoginFailures, opts.LoginWindow)}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if n == "templates/layout.html" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("dashboard: template %s: %w", n, err)
		}
		d.pages[n[len("templates/"):len(n)-len(".html")]] = t
	}
	return d, nil
}

// Mount registers the dashboard's routes on mux, beside the admin API.
// api is the admin API's handler without its token check: the dashboard
// calls it in process, a valid session standing for the token.
func (d *Dashboard) Mount(mux *http.ServeMux, api http.Handler) {
	d.api = api
	page := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, d.secure(d.requireSession(h))) }
	form := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, d.secure(d.requireForm(h))) }

	mux.Handle("GET /login", d.secure(http.HandlerFunc(d.loginPage)))
	mux.Handle("POST /login", d.secure(http.HandlerFunc(d.login)))
	mux.Handle("GET /transparency", d.secure(http.HandlerFunc(d.transparency)))
	mux.Handle("GET /assets/", d.secure(http.StripPrefix("/assets/", assets())))
	form("POST /logout", d.logout)

	page("GET /{$}", d.now)
	page("GET /api/now", d.nowJSON)
	page("GET /identities", d.identities)
	page("GET /identities/took-by", d.tookBy)
	page("GET /bans", d.bans)
	form("POST /bans/add", d.addBan)
	form("POST /bans/remove", d.removeBan)
	page("GET /explain", d.explain)
	page("GET /reach", d.reach)
	form("POST /reach/dp", d.reachDP)
	page("GET /person", d.person)
	page("GET /trace", d.tracePage)
	// The upload checks its own session and CSRF token: the token is the
	// multipart form's first part, not a urlencoded field.
	mux.Handle("POST /trace", d.secure(http.HandlerFunc(d.traceUpload)))
}

// Run samples the metrics every five seconds for the now page's charts
// (the last hour), until ctx ends.
func (d *Dashboard) Run(ctx context.Context) {
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	d.samples.add(d.sample())
	d.checkTransparencyBudget(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.samples.add(d.sample())
			d.checkTransparencyBudget(ctx)
		}
	}
}

func assets() http.Handler {
	sub, err := fs.Sub(assetFS, "assets")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return http.FileServerFS(sub)
}

// csp allows the dashboard's own script and style only: no inline script,
// no inline style, no frames, forms posting to itself.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// secure sets the headers every dashboard answer carries.
func (d *Dashboard) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin") // no-referrer would make a form's Origin "null"
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		if !isAsset(r) {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

func isAsset(r *http.Request) bool { return len(r.URL.Path) > 8 && r.URL.Path[:8] == "/assets/" }

// view is what every page's template gets.
type view struct {
	Title   string
	Nav     string // the page, for the menu
	CSRF    string // "" without a session
	Signed  bool
	Error   string
	Notice  string
	Data    any
	Elapsed string
}

// render writes page with v; the body is built first so that a template
// error is a 500, not half a page.
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, code int, page string, v view) {
	if s := sessionOf(r); s != nil {
		v.CSRF, v.Signed = s.csrf, true
	}
	t := d.pages[page]
	var buf bytes.Buffer
	if t == nil {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	if err := t.Execute(&buf, v); err != nil {
		d.opts.Logger.LogAttrs(r.Context(), slog.LevelError, "dashboard: render", slog.String("page", page), slog.String("error", err.Error()))
		http.Error(w, "render failed (see the gateway's log)", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// config is the config in force, or nil.
func (d *Dashboard) config() *config.Config { return d.opts.Config() }

// openLedger opens a reader of the ledger directory over win through the
// shared cache. A day rollup or author index it passes over (damaged: the
// hours answer, the same) is logged at warn level, the error naming the
// file, and counted (Options.DerivedSkipped), so that someone rebuilds it.
func (d *Dashboard) openLedger(ctx context.Context, win ledger.Window) (*ledger.Reader, error) {
	return ledger.OpenReader(d.opts.LedgerDir, win, ledger.WithCache(d.opts.LedgerCache), ledger.WithWarnings(func(err error) {
		if d.opts.DerivedSkipped != nil {
			d.opts.DerivedSkipped.Inc()
		}
		d.opts.Logger.LogAttrs(ctx, slog.LevelWarn, "dashboard: ledger derived file passed over", slog.String("error", err.Error()))
	}))
}

// keeper keeps the transparency page's budget: the fleet's, else the
// ledger directory's.
func (d *Dashboard) keeper() privacy.Keeper {
	if d.opts.Fleet != nil {
		return d.opts.Fleet.Budgets
	}
	return d.budgets()
}

// errNoBudgets: the gateway keeps no researchers' budgets (no ledger).
var errNoBudgets = errors.New("no ledger, no researchers' budgets")

// standing is a researcher's budget as the reach page shows it: the
// fleet's, else the ledger directory's.
func (d *Dashboard) standing(ctx context.Context, researcher string) (privacy.Account, error) {
	switch {
	case d.opts.Fleet != nil:
		return d.opts.Fleet.Budgets.Standing(ctx, researcher)
	case d.opts.LedgerDir != "":
		return d.budgets().Standing(researcher)
	}
	return privacy.Account{}, errNoBudgets
}

// budgets are the researchers' budgets in the ledger directory, with the
// totals the config says.
func (d *Dashboard) budgets() *privacy.Budgets {
	limit := func(string) *big.Rat { return privacy.DefaultLimit }
	if c := d.config(); c != nil {
		limit = c.Ledger.Privacy.Limit
	}
	return privacy.NewBudgets(d.opts.LedgerDir, limit)
}
