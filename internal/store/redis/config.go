package redis

import (
	"github.com/warden-gw/warden/internal/backendauth"

	"errors"
	"fmt"
	"strings"
	"time"
)

// Config is the `store.redis` section of warden's configuration. It holds
// where the password comes from, never the password itself, so it is safe
// to log.
type Config struct {
	// Addrs: one host:port is a standalone server, several are the seeds of
	// a Redis Cluster.
	Addrs        []string  `yaml:"addrs"`
	Username     string    `yaml:"username"`
	PasswordFile string    `yaml:"password_file"`
	PasswordEnv  string    `yaml:"password_env"`
	TLS          TLSConfig `yaml:"tls"`
	// DB selects a logical database; a cluster has only 0.
	DB int `yaml:"db"`
	// PoolSize is the number of pipelined connections per node, rounded up
	// to a power of two (at most 256). Default 4.
	PoolSize    int           `yaml:"pool_size"`
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// ReadTimeout bounds each call (applied as a context deadline, since
	// replies of many callers share one pipelined connection).
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writes to a connection and detects a dead server.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// KeyPrefix starts every key warden writes. Default "warden:".
	KeyPrefix string `yaml:"key_prefix"`
	// Lease: token leases and the ban mirror (doc.go, "Leases").
	Lease LeaseConfig `yaml:"lease"`
}

// LeaseConfig is `store.redis.lease`: how many cells of a rate limit a
// gateway may take ahead and spend without a round trip, while the bucket
// is far from empty.
type LeaseConfig struct {
	// Tokens is the most cells one lease takes (also at most a sixteenth
	// of the limit's burst). 1 turns leases off: every request is one
	// exact call to Redis, bans read there too. Default 256.
	Tokens int `yaml:"tokens"`
	// TTL is how long a lease's cells may be spent; the unspent rest is
	// given back on the key's next call. Default 5s.
	TTL time.Duration `yaml:"ttl"`
}

// TLSConfig enables TLS to Redis.
type TLSConfig = backendauth.TLS

const (
	defaultPoolSize     = 4
	defaultDialTimeout  = 2 * time.Second
	defaultReadTimeout  = 500 * time.Millisecond
	defaultWriteTimeout = 500 * time.Millisecond
	defaultKeyPrefix    = "warden:"
	maxPoolSize         = 256
	defaultLeaseTokens  = 256
	maxLeaseTokens      = 4096
	defaultLeaseTTL     = 5 * time.Second
	minLeaseTTL         = time.Millisecond
	maxLeaseTTL         = time.Minute
)

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.PoolSize == 0 {
		c.PoolSize = defaultPoolSize
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = defaultDialTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = defaultReadTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = defaultWriteTimeout
	}
	if c.KeyPrefix == "" {
		c.KeyPrefix = defaultKeyPrefix
	}
	if c.Lease.Tokens == 0 {
		c.Lease.Tokens = defaultLeaseTokens
	}
	if c.Lease.TTL == 0 {
		c.Lease.TTL = defaultLeaseTTL
	}
}

// Validate reports every problem, each starting with its YAML path relative
// to this section.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.Addrs) == 0 {
		add("addrs: at least one host:port is required")
	}
	errs = append(errs, backendauth.CheckAddrs(c.Addrs)...)
	if c.PasswordFile != "" && c.PasswordEnv != "" {
		add("password_file: set either password_file or password_env, not both")
	}
	if c.DB < 0 {
		add("db: %d is negative", c.DB)
	}
	if len(c.Addrs) > 1 && c.DB != 0 {
		add("db: a cluster (several addrs) has only database 0, got %d", c.DB)
	}
	if c.PoolSize < 1 || c.PoolSize > maxPoolSize {
		add("pool_size: %d is outside 1..%d", c.PoolSize, maxPoolSize)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"dial_timeout", c.DialTimeout}, {"read_timeout", c.ReadTimeout}, {"write_timeout", c.WriteTimeout}} {
		if d.v < 0 {
			add("%s: %v is negative", d.name, d.v)
		}
	}
	if strings.ContainsAny(c.KeyPrefix, "{}") {
		add("key_prefix: %q must not contain { or }: they would change the Redis Cluster hash tags", c.KeyPrefix)
	}
	if c.Lease.Tokens < 1 || c.Lease.Tokens > maxLeaseTokens {
		add("lease.tokens: %d is outside 1..%d (1: no leases)", c.Lease.Tokens, maxLeaseTokens)
	}
	if c.Lease.TTL < minLeaseTTL || c.Lease.TTL > maxLeaseTTL {
		add("lease.ttl: %v is outside %v..%v", c.Lease.TTL, minLeaseTTL, maxLeaseTTL)
	}
	errs = append(errs, c.TLS.Check()...)
	return errors.Join(errs...)
}
