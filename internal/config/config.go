package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/warden-gw/warden/internal/canary"
	"github.com/warden-gw/warden/internal/detect"
	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/ration"
	"github.com/warden-gw/warden/internal/refusal"
	"github.com/warden-gw/warden/internal/store/guard"
	"github.com/warden-gw/warden/internal/store/redis"
)

// Config is one warden configuration file, after defaults.
type Config struct {
	Listen   string          `yaml:"listen"`
	Front    string          `yaml:"front"` // FrontAuto, FrontLoop, FrontFast or FrontStd
	TLS      TLS             `yaml:"tls"`
	Upstream Upstream        `yaml:"upstream"`
	Server   Server          `yaml:"server"`
	Admin    Admin           `yaml:"admin"`
	Log      Log             `yaml:"log"`
	Identity identify.Config `yaml:"identity"`
	Store    Store           `yaml:"store"`
	Allow    []Allow         `yaml:"allow"`
	Limits   []Limit         `yaml:"rate_limits"`
	Inspect  inspect.Config  `yaml:"inspect"`
	Ration   ration.Config   `yaml:"ration"`
	Ledger   Ledger          `yaml:"ledger"`
	Detect   detect.Config   `yaml:"detect"`
	Canary   canary.Config   `yaml:"canary"`

	// Dashboard bounds the admin listener's web dashboard.
	Dashboard Dashboard `yaml:"dashboard"`
}

// Fronts: fast is fasthttp (HTTP/1.1 cleartext, the hot path), std is
// net/http (needed for TLS termination with HTTP/2, and h2c), loop is
// warden's own event loop (cleartext HTTP/1.1 on both sides). They stay
// untyped: the gateway names its front by these strings.
const (
	FrontAuto = "auto"
	FrontFast = "fast"
	FrontStd  = "std"
	FrontLoop = "loop"
)

// TLS terminates TLS at warden when both files are set.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Enabled reports whether TLS is configured.
func (t TLS) Enabled() bool { return t.CertFile != "" }

// Upstream is the one API warden protects.
type Upstream struct {
	URL                   string        `yaml:"url"`
	DialTimeout           time.Duration `yaml:"dial_timeout"`
	ResponseHeaderTimeout time.Duration `yaml:"response_header_timeout"`
	IdleConns             int           `yaml:"idle_conns"`
	MaxConns              int           `yaml:"max_conns"`
	IdleTimeout           time.Duration `yaml:"idle_timeout"`
}

// Server holds the client-facing limits and timeouts.
type Server struct {
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	WriteTimeout      time.Duration `yaml:"write_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	MaxHeaderBytes    int           `yaml:"max_header_bytes"`
	MaxBodyBytes      int           `yaml:"max_body_bytes"`
	ShutdownTimeout   time.Duration `yaml:"shutdown_timeout"`
	// EncodedSlashes is what a path with an escaped "/" or "\" gets:
	// reject (400) or keep (matched and forwarded as one segment, for APIs
	// whose ids hold encoded slashes and whose upstream does not decode
	// them before routing).
	EncodedSlashes EncodedSlashes `yaml:"encoded_slashes"`
	// UnderscoreHeaders is what request headers whose names hold "_" get:
	// drop (as nginx does by default: CGI-style upstreams read X_App_Key as
	// X-App-Key and X_Forwarded_For as X-Forwarded-For, a second spelling
	// of headers warden sets or reads) or keep.
	UnderscoreHeaders UnderscoreHeaders `yaml:"underscore_headers"`
}

// Admin is the admin listener.
type Admin struct {
	Listen    string `yaml:"listen"`
	TokenFile string `yaml:"token_file"`
	TokenEnv  string `yaml:"token_env"`
	// TLS serves the admin API and the dashboard over HTTPS (the
	// dashboard's session cookie is then Secure); off by default, as the
	// admin listener is meant for loopback or a private network.
	TLS TLS `yaml:"tls"`
}

// Log configures log/slog output.
type Log struct {
	Format LogFormat `yaml:"format"`
	Level  string    `yaml:"level"` // debug, info, warn, error
}

// Store selects the state backend.
type Store struct {
	Backend StoreBackend `yaml:"backend"`
	Memory  MemoryStore  `yaml:"memory"`
	Redis   redis.Config `yaml:"redis"`
	Failure guard.Config `yaml:"failure"`
}

// MemoryStore bounds the in-memory backend and says where its state is
// kept across restarts: Dir empty keeps it in memory only.
type MemoryStore struct {
	MaxKeys          int           `yaml:"max_keys"`
	Shards           int           `yaml:"shards"`
	ExactMax         int           `yaml:"exact_max"`
	Dir              string        `yaml:"dir"`
	SnapshotInterval time.Duration `yaml:"snapshot_interval"`
}

// Allow exempts identities from named rate limits (all of them when Rules
// is empty). Bans still apply; budgets have their own exempt lists.
type Allow struct {
	Name     string   `yaml:"name"`
	CIDRs    []string `yaml:"cidrs"`
	Apps     []string `yaml:"apps"`
	Accounts []string `yaml:"accounts"`
	Rules    []string `yaml:"rules"`
}

// Limit is one GCRA rate limit counted per value of Facet.
type Limit struct {
	Name   string   `yaml:"name"`
	Facet  string   `yaml:"facet"`
	Rate   string   `yaml:"rate"` // "20/s", "600/m", "10000/h"
	Burst  int      `yaml:"burst"`
	Routes []string `yaml:"routes"` // ServeMux patterns; empty: every route
	// Identified: on ip, net or fingerprint, how requests with a verified
	// account count: own (default for ip and net: on [value, account], so
	// no account is refused for what its neighbours did) or shared.
	Identified ration.Identified `yaml:"identified"`
	Mode       ration.Mode       `yaml:"mode"` // enforce (default) or shadow
}

// ParseRate parses "N/s", "N/m", "N/h" or "N/d" into the emission interval.
func ParseRate(s string) (time.Duration, error) {
	n, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return 0, fmt.Errorf("rate %q: want N/s, N/m, N/h or N/d", s)
	}
	count, err := strconv.ParseFloat(strings.TrimSpace(n), 64)
	if err != nil || count <= 0 {
		return 0, fmt.Errorf("rate %q: count must be a positive number", s)
	}
	var per time.Duration
	switch strings.TrimSpace(unit) {
	case "s":
		per = time.Second
	case "m":
		per = time.Minute
	case "h":
		per = time.Hour
	case "d":
		per = 24 * time.Hour
	default:
		return 0, fmt.Errorf("rate %q: unit must be s, m, h or d", s)
	}
	iv := time.Duration(float64(per) / count)
	if iv <= 0 {
		return 0, fmt.Errorf("rate %q: too fast", s)
	}
	return iv, nil
}

// SetDefaults fills every unset field with its documented default.
func (c *Config) SetDefaults() {
	def(&c.Listen, "127.0.0.1:8080")
	def(&c.Front, FrontAuto)
	def(&c.Upstream.URL, "http://127.0.0.1:8081")
	def(&c.Upstream.DialTimeout, 5*time.Second)
	def(&c.Upstream.ResponseHeaderTimeout, 30*time.Second)
	def(&c.Upstream.IdleConns, 512)
	def(&c.Upstream.IdleTimeout, 90*time.Second)
	def(&c.Server.ReadHeaderTimeout, 10*time.Second)
	def(&c.Server.ReadTimeout, 60*time.Second)
	def(&c.Server.WriteTimeout, 60*time.Second)
	def(&c.Server.IdleTimeout, 120*time.Second)
	def(&c.Server.MaxHeaderBytes, 16<<10)
	def(&c.Server.MaxBodyBytes, 8<<20)
	def(&c.Server.ShutdownTimeout, 15*time.Second)
	def(&c.Server.EncodedSlashes, EncodedSlashesReject)
	def(&c.Server.UnderscoreHeaders, UnderscoreHeadersDrop)
	def(&c.Admin.Listen, "127.0.0.1:9090")
	if c.Admin.TokenFile == "" {
		def(&c.Admin.TokenEnv, "WARDEN_ADMIN_TOKEN")
	}
	def(&c.Log.Format, LogJSON)
	def(&c.Log.Level, "info")
	def(&c.Store.Backend, StoreMemory)
	def(&c.Store.Memory.SnapshotInterval, 30*time.Second)
	if c.Store.Backend == StoreRedis {
		c.Store.Redis.SetDefaults()
	}
	c.Store.Failure.SetDefaults()
	c.Identity.SetDefaults()
	c.Inspect.SetDefaults()
	c.Ration.SetDefaults()
	c.Ledger.setDefaults()
	c.Dashboard.setDefaults()
	c.Detect.SetDefaults()
	c.Canary.SetDefaults()
	for i := range c.Limits {
		l := &c.Limits[i]
		if l.Burst == 0 {
			l.Burst = 1
		}
		def(&l.Identified, ration.DefaultIdentified(l.Facet))
		def(&l.Mode, ration.Enforce)
	}
}

// def sets *p to v when *p is unset (zero).
func def[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// Validate returns every problem found, each error's text starting with the
// YAML path of the offending field (Load turns it into file:line:column).
func (c *Config) Validate() error {
	var errs []error
	add := func(path string, err error) {
		if err == nil {
			return
		}
		for _, e := range unjoin(err) {
			errs = append(errs, fmt.Errorf("%s.%s", path, e.Error()))
		}
	}
	bad := func(path, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{path}, a...)...))
	}
	if err := checkHostPort(c.Listen); err != nil {
		bad("listen", "%v", err)
	}
	if err := oneOf(c.Front, FrontAuto, FrontLoop, FrontFast, FrontStd); err != nil {
		bad("front", "%v", err)
	}
	if (c.Front == FrontFast || c.Front == FrontLoop) && c.TLS.Enabled() {
		bad("front", "%s serves cleartext HTTP/1.1 only; TLS needs std or auto", c.Front)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls", "cert_file and key_file go together")
	}
	if (c.Admin.TLS.CertFile == "") != (c.Admin.TLS.KeyFile == "") {
		bad("admin.tls", "cert_file and key_file go together")
	}
	u, err := url.Parse(c.Upstream.URL)
	switch {
	case err != nil:
		bad("upstream.url", "%v", err)
	case u.Scheme != "http" && u.Scheme != "https":
		bad("upstream.url", "scheme %q is not http or https", u.Scheme)
	case u.Host == "":
		bad("upstream.url", "no host")
	case u.Path != "" && u.Path != "/":
		bad("upstream.url", "a path prefix (%q) is not supported", u.Path)
	case u.Scheme == "https" && c.Front == FrontLoop:
		bad("front", "loop speaks cleartext to the upstream; an https upstream needs fast, std or auto")
	}
	for path, d := range map[string]time.Duration{
		"upstream.dial_timeout": c.Upstream.DialTimeout, "upstream.response_header_timeout": c.Upstream.ResponseHeaderTimeout,
		"upstream.idle_timeout": c.Upstream.IdleTimeout, "server.read_header_timeout": c.Server.ReadHeaderTimeout,
		"server.read_timeout": c.Server.ReadTimeout, "server.write_timeout": c.Server.WriteTimeout,
		"server.idle_timeout": c.Server.IdleTimeout, "server.shutdown_timeout": c.Server.ShutdownTimeout,
	} {
		if d < 0 {
			bad(path, "%v must not be negative", d)
		}
	}
	if c.Upstream.IdleConns < 0 || c.Upstream.MaxConns < 0 {
		bad("upstream", "idle_conns and max_conns must not be negative")
	}
	if c.Server.MaxHeaderBytes < 1024 {
		bad("server.max_header_bytes", "%d is below 1024", c.Server.MaxHeaderBytes)
	}
	if c.Server.MaxBodyBytes < 0 {
		bad("server.max_body_bytes", "must not be negative")
	}
	if err := c.Server.EncodedSlashes.Validate(); err != nil {
		bad("server.encoded_slashes", "%v", err)
	}
	if err := c.Server.UnderscoreHeaders.Validate(); err != nil {
		bad("server.underscore_headers", "%v", err)
	}
	if err := checkHostPort(c.Admin.Listen); err != nil {
		bad("admin.listen", "%v", err)
	}
	if c.Admin.TokenFile != "" && c.Admin.TokenEnv != "" {
		bad("admin", "token_file and token_env are exclusive")
	}
	if err := c.Log.Format.Validate(); err != nil {
		bad("log.format", "%v", err)
	}
	if _, err := ParseLevel(c.Log.Level); err != nil {
		bad("log.level", "%v", err)
	}
	switch c.Store.Backend {
	case StoreMemory:
		if c.Store.Memory.MaxKeys < 0 || c.Store.Memory.Shards < 0 || c.Store.Memory.ExactMax < 0 {
			bad("store.memory", "sizes must not be negative")
		}
		if c.Store.Memory.SnapshotInterval < time.Second {
			bad("store.memory.snapshot_interval", "%v is below 1s", c.Store.Memory.SnapshotInterval)
		}
		// A redis section read by nothing: written for a fleet with the
		// backend line forgotten, every gateway would ration alone.
		if !reflect.DeepEqual(c.Store.Redis, redis.Config{}) {
			bad("store.redis", "is set but store.backend is memory: the state would stay in this process, not shared (backend: redis uses it)")
		}
		// Both take their directory with a lock file named lock: in one
		// directory the second would fail to start as "in use by another
		// warden", naming no other.
		if d := c.Store.Memory.Dir; d != "" && c.Ledger.Dir != "" && sameDir(d, c.Ledger.Dir) {
			bad("store.memory.dir", "%s is also ledger.dir: the state and the ledger each need a directory of their own", d)
		}
	case StoreRedis:
		add("store.redis", c.Store.Redis.Validate())
		if c.Store.Memory.Dir != "" {
			bad("store.memory.dir", "keeps the memory store's state; with the redis backend the state is in Redis")
		}
	default:
		bad("store.backend", "%v", c.Store.Backend.Validate())
	}
	add("store.failure", c.Store.Failure.Validate())
	// ClickHouse's spool takes its directory with a lock file named lock
	// too: sharing one, the gateway would refuse to start as "in use by
	// another warden".
	if sp := c.Ledger.ClickHouse.Spool.Dir; c.Ledger.Backend == LedgerClickHouse && sp != "" {
		for _, o := range []struct{ key, dir string }{{"ledger.dir", c.Ledger.Dir}, {"store.memory.dir", c.Store.Memory.Dir}} {
			if o.dir != "" && sameDir(sp, o.dir) {
				bad("ledger.clickhouse.spool.dir", "%s is also %s: each needs a directory of its own", sp, o.key)
			}
		}
	}
	add("identity", c.Identity.Validate())
	add("inspect", c.Inspect.Validate())
	add("ration", c.Ration.Validate())
	add("ledger", c.Ledger.Validate())
	add("dashboard", c.Dashboard.Validate())
	add("detect", c.Detect.Validate())
	if c.Canary.Enabled() {
		add("canary", c.Canary.Validate())
	}

	names := map[string]bool{}
	for i, l := range c.Limits {
		p := fmt.Sprintf("rate_limits[%d]", i)
		if l.Name == "" {
			bad(p+".name", "required")
		} else if refusal.Own(l.Name) {
			bad(p+".name", "name %q is one of warden's own rules: the ledger could not tell the two apart", l.Name)
		} else if names[l.Name] {
			bad(p+".name", "duplicate rule name %q", l.Name)
		}
		names[l.Name] = true
		if _, ok := identify.ParseFacet(l.Facet); !ok {
			bad(p+".facet", "%q is not app, account, ip, net or fingerprint", l.Facet)
		}
		if _, err := ParseRate(l.Rate); err != nil {
			bad(p+".rate", "%v", err)
		}
		if l.Burst < 1 {
			bad(p+".burst", "%d must be at least 1", l.Burst)
		}
		if err := ration.CheckIdentified(l.Facet, l.Identified); err != nil {
			bad(p+".identified", "%v", err)
		}
		if err := l.Mode.Validate(); err != nil {
			bad(p+".mode", "%v", err)
		}
		for j, r := range l.Routes {
			if _, err := inspect.ParsePattern(r); err != nil {
				bad(fmt.Sprintf("%s.routes[%d]", p, j), "%v", err)
			}
		}
	}
	for i, a := range c.Allow {
		p := fmt.Sprintf("allow[%d]", i)
		if len(a.CIDRs)+len(a.Apps)+len(a.Accounts) == 0 {
			bad(p, "names no cidrs, apps or accounts")
		}
		for j, s := range a.CIDRs {
			if _, _, err := net.ParseCIDR(s); err != nil {
				bad(fmt.Sprintf("%s.cidrs[%d]", p, j), "%q is not a CIDR", s)
			}
		}
		for j, r := range a.Rules {
			if !names[r] && !slices.ContainsFunc(c.Detect.Rules, func(d detect.Rule) bool { return d.Name == r }) {
				bad(fmt.Sprintf("%s.rules[%d]", p, j), "no rate limit is named %q", r)
			}
		}
		checkApps(bad, c.Identity.App, p+".apps", a.Apps)
	}
	for i, b := range c.Ration.Budgets {
		checkApps(bad, c.Identity.App, fmt.Sprintf("ration.budgets[%d].exempt.apps", i), b.Exempt.Apps)
	}
	checkClasses(bad, c)
	checkAccounts(bad, c)
	if u := c.Ration.Unreferenced; u != nil {
		checkApps(bad, c.Identity.App, "ration.unreferenced.exempt.apps", u.Exempt.Apps)
	}
	if f := c.Ration.FanoutCap; f != nil {
		checkApps(bad, c.Identity.App, "ration.fanout_cap.exempt.apps", f.Exempt.Apps)
	}
	checkApps(bad, c.Identity.App, "detect.exempt.apps", c.Detect.Exempt.Apps)
	return errors.Join(errs...)
}

// checkClasses refuses a data class that no route of the route map
// defines, wherever a rule names one: a budget, scope, the unreferenced
// rule, the fan-out cap or the detector on a misspelt class would never
// see it served, and say nothing. A config without a route map (one
// read by warden explain or replay for its rules) is not checked.
func checkClasses(bad func(path, format string, args ...any), c *Config) {
	if len(c.Inspect.Routes) == 0 {
		return
	}
	defined := c.Inspect.ClassNames()
	check := func(at, class string) {
		if class != "" && !slices.Contains(defined, class) {
			bad(at, "class %q is not a class of any route in inspect.routes", class)
		}
	}
	for i, b := range c.Ration.Budgets {
		check(fmt.Sprintf("ration.budgets[%d].class", i), b.Class)
	}
	for i, sc := range c.Ration.Scopes {
		check(fmt.Sprintf("ration.scopes[%d].class", i), sc.Class)
	}
	if u := c.Ration.Unreferenced; u != nil {
		for j, class := range u.Classes {
			check(fmt.Sprintf("ration.unreferenced.classes[%d]", j), class)
		}
	}
	if f := c.Ration.FanoutCap; f != nil {
		for j, class := range f.Classes {
			check(fmt.Sprintf("ration.fanout_cap.classes[%d]", j), class)
		}
	}
	if c.Detect.Enabled && len(c.Detect.Rules) > 0 {
		check("detect.class", c.Detect.Class)
	}
}

// checkAccounts refuses a rule that counts accounts when identity.account
// verifies no token: no request would have an account, so the rule would
// never apply, and every credential would go upstream as it came (issue
// 18's bypass, configured). A config without a route map or rate limits
// (one read by warden explain or replay for its rules) is not checked.
func checkAccounts(bad func(path, format string, args ...any), c *Config) {
	if c.Identity.Account.Verifies() || len(c.Inspect.Routes)+len(c.Limits) == 0 {
		return
	}
	check := func(at, facet string) {
		if facet == identify.FacetAccount.String() {
			bad(at, "counts accounts, but identity.account verifies no token (no secret, public key or JWKS): no request has an account, so it would never apply")
		}
	}
	for i, l := range c.Limits {
		check(fmt.Sprintf("rate_limits[%d].facet", i), l.Facet)
	}
	for i, b := range c.Ration.Budgets {
		check(fmt.Sprintf("ration.budgets[%d].facet", i), b.Facet)
	}
	if u := c.Ration.Unreferenced; u != nil {
		check("ration.unreferenced.facet", u.Facet)
	}
	if c.Detect.Enabled {
		for i, r := range c.Detect.Rules {
			check(fmt.Sprintf("detect.rules[%d].facet", i), r.Facet)
		}
	}
	for i, a := range c.Allow {
		if len(a.Accounts) > 0 {
			bad(fmt.Sprintf("allow[%d].accounts", i), "identity.account verifies no token (no secret, public key or JWKS): no request has an account, so these never match")
		}
	}
}

// checkApps refuses an exemption that names an app unless apps are
// verified and it is registered: an unverified app key is a header anyone
// can send, and an untrusted header must never decide who is exempt.
func checkApps(bad func(path, format string, args ...any), ac identify.AppConfig, at string, apps []string) {
	for j, app := range apps {
		p := fmt.Sprintf("%s[%d]", at, j)
		switch {
		case !ac.Verified():
			bad(p, "exempts app %q, but identity.app.keys registers no app keys: anyone could send that app header", app)
		case !ac.Registered(app):
			bad(p, "%q is not an app registered in identity.app.keys", app)
		}
	}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}

func checkHostPort(s string) error {
	if _, port, err := net.SplitHostPort(s); err != nil {
		return fmt.Errorf("%q: %v", s, err)
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%q: bad port", s)
	}
	return nil
}

// sameDir reports whether two configured directories are one path once
// made absolute and clean (relative paths are from the working directory).
func sameDir(a, b string) bool {
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == bb
}
