package config

import (
	"errors"
	"fmt"
	"time"
)

// Dashboard bounds the web dashboard on the admin listener
// (internal/dashboard): the trace page's uploads and the sign-in form.
type Dashboard struct {
	// TraceMaxBytes bounds an upload to the trace page, the whole
	// multipart body (default 2 GiB; 413 past it): larger copies go to
	// `warden trace` on the host.
	TraceMaxBytes int64 `yaml:"trace_max_bytes"`
	// TraceTimeout bounds reading an upload and replaying the ledger
	// (default 30m); it lifts the admin listener's deadlines for that
	// request only.
	TraceTimeout time.Duration `yaml:"trace_timeout"`
	// LoginFailures is how many failed sign-ins a client address may make
	// within LoginWindow (default 5 in 1m); past them /login answers 429
	// with Retry-After until the window has passed.
	LoginFailures int           `yaml:"login_failures"`
	LoginWindow   time.Duration `yaml:"login_window"`
	// LedgerCacheAccesses bounds the Accesses of the open hour the
	// dashboard and the admin API keep decoded between queries (default
	// 2,000,000, about 650 MiB: 25 minutes of the lab's traffic): past it, that hour's log is read whole by
	// each query (seconds a page) until it is sealed.
	LedgerCacheAccesses int `yaml:"ledger_cache_accesses"`
}

// Bounds of the dashboard's keys.
const (
	DefaultTraceMaxBytes = 2 << 30
	DefaultTraceTimeout  = 30 * time.Minute
	minTraceMaxBytes     = 1 << 20 // a form and a small copy
	maxTraceMaxBytes     = 1 << 40
	maxTraceTimeout      = 24 * time.Hour
	maxLoginFailures     = 1000
	maxLoginWindow       = 24 * time.Hour
	minLedgerCache       = 1000
	maxLedgerCache       = 100_000_000
)

func (d *Dashboard) setDefaults() {
	def(&d.TraceMaxBytes, DefaultTraceMaxBytes)
	def(&d.TraceTimeout, DefaultTraceTimeout)
	def(&d.LoginFailures, 5)
	def(&d.LoginWindow, time.Minute)
	def(&d.LedgerCacheAccesses, 2_000_000) // ledger.CacheAccesses
}

// Validate returns every problem, each starting with its key.
func (d Dashboard) Validate() error {
	var errs []error
	if d.TraceMaxBytes < minTraceMaxBytes || d.TraceMaxBytes > maxTraceMaxBytes {
		errs = append(errs, fmt.Errorf("trace_max_bytes: %d is not between %d (1 MiB) and %d (1 TiB)", d.TraceMaxBytes, minTraceMaxBytes, int64(maxTraceMaxBytes)))
	}
	if d.TraceTimeout < time.Second || d.TraceTimeout > maxTraceTimeout {
		errs = append(errs, fmt.Errorf("trace_timeout: %v is not between 1s and 24h", d.TraceTimeout))
	}
	if d.LoginFailures < 1 || d.LoginFailures > maxLoginFailures {
		errs = append(errs, fmt.Errorf("login_failures: %d is not between 1 and %d", d.LoginFailures, maxLoginFailures))
	}
	if d.LoginWindow < time.Second || d.LoginWindow > maxLoginWindow {
		errs = append(errs, fmt.Errorf("login_window: %v is not between 1s and 24h", d.LoginWindow))
	}
	if d.LedgerCacheAccesses < minLedgerCache || d.LedgerCacheAccesses > maxLedgerCache {
		errs = append(errs, fmt.Errorf("ledger_cache_accesses: %d is not between %d and %d", d.LedgerCacheAccesses, minLedgerCache, maxLedgerCache))
	}
	return errors.Join(errs...)
}
