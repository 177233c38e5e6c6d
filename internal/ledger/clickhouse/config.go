package clickhouse

import (
	"github.com/warden-gw/warden/internal/backendauth"

	"errors"
	"fmt"
	"regexp"
	"time"
)

// Config is the ledger's ClickHouse (config: ledger.clickhouse).
type Config struct {
	// Addrs are host:port of ClickHouse's HTTP interface (8123, or 8443
	// with TLS); a request goes to the first that answers.
	Addrs    []string `yaml:"addrs"`
	Database string   `yaml:"database"` // default "warden"
	User     string   `yaml:"user"`     // default "default"
	// PasswordEnv or PasswordFile holds the password; never the file.
	PasswordEnv  string    `yaml:"password_env"`
	PasswordFile string    `yaml:"password_file"`
	TLS          TLSConfig `yaml:"tls"`
	// BatchSize Accesses, or what came within BatchInterval, go in one
	// insert.
	BatchSize     int           `yaml:"batch_size"`     // default 20000
	BatchInterval time.Duration `yaml:"batch_interval"` // default 1s
	// Timeout bounds one request to ClickHouse (an insert included).
	Timeout time.Duration `yaml:"timeout"` // default 30s
	// Spool keeps batches on disk while ClickHouse is slow or down.
	Spool SpoolConfig `yaml:"spool"`
}

// SpoolConfig is the on-disk spool: batches wait there, oldest sent
// first, while ClickHouse does not take them; past MaxBytes a batch is
// dropped and counted.
type SpoolConfig struct {
	Dir      string `yaml:"dir"`       // required with the clickhouse backend; made 0700
	MaxBytes int64  `yaml:"max_bytes"` // default 1 GiB
}

// TLSConfig turns on HTTPS to ClickHouse.
type TLSConfig = backendauth.TLS

// SetDefaults fills what is unset.
func (c *Config) SetDefaults() {
	if c.Database == "" {
		c.Database = "warden"
	}
	if c.User == "" {
		c.User = "default"
	}
	if c.BatchSize == 0 {
		c.BatchSize = 20000
	}
	if c.BatchInterval == 0 {
		c.BatchInterval = time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if c.Spool.MaxBytes == 0 {
		c.Spool.MaxBytes = 1 << 30
	}
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// Validate reports every problem, each starting with its key.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if len(c.Addrs) == 0 {
		bad("addrs: at least one host:port is required")
	}
	errs = append(errs, backendauth.CheckAddrs(c.Addrs)...)
	if !identRE.MatchString(c.Database) {
		bad("database: %q is not a plain identifier", c.Database)
	}
	if c.PasswordEnv != "" && c.PasswordFile != "" {
		bad("password_env: give password_env or password_file, not both")
	}
	if c.BatchSize < 1 || c.BatchSize > 1_000_000 {
		bad("batch_size: %d is not between 1 and 1000000", c.BatchSize)
	}
	if c.BatchInterval < 10*time.Millisecond {
		bad("batch_interval: %v is below 10ms", c.BatchInterval)
	}
	if c.Timeout < 100*time.Millisecond {
		bad("timeout: %v is below 100ms", c.Timeout)
	}
	if c.Spool.MaxBytes < 0 {
		bad("spool.max_bytes: must not be negative")
	}
	// TLS settings while TLS is off were ignored: the password went to
	// ClickHouse in cleartext to a config that named a CA.
	errs = append(errs, c.TLS.Check()...)
	return errors.Join(errs...)
}
