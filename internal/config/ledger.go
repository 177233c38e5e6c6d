package config

import (
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/ledger/clickhouse"
)

// Ledger is where every Access is kept (internal/ledger): Dir empty
// keeps none.
type Ledger struct {
	// Backend is where Accesses go: "local" (Dir, the default) or
	// "clickhouse" (ClickHouse, shared by a fleet; Dir may be set too, to
	// keep a local copy as well).
	Backend    string            `yaml:"backend"`
	ClickHouse clickhouse.Config `yaml:"clickhouse"`
	// Dir is made 0700, its files 0600; one gateway per directory. A
	// relative path is from the working directory.
	Dir string `yaml:"dir"`
	// FsyncInterval bounds what a machine that stops loses (a process
	// killed loses at most the 100 ms write buffer and the queue).
	FsyncInterval time.Duration `yaml:"fsync_interval"`
	// PartitionAccesses cuts an hour's log into parts of at most this
	// many Accesses, each sealed when full: what sealing holds in memory
	// (about 400 bytes an Access live, 1,000 allocated) is bounded by a
	// part, whatever the gateway's rate. Default
	// ledger.DefaultPartitionAccesses (150,000: about 60 MiB live while a
	// part is sealed).
	PartitionAccesses int `yaml:"partition_accesses"`
	// Queue is how many Accesses wait for the ledger's writer; past it
	// they are dropped and counted (warden_recorder_dropped_total), by
	// default never waited for: the request path is not slowed by the
	// disk (see QueueFull).
	Queue int `yaml:"queue"`
	// QueueFull is what a request that finds the queue full does: "drop"
	// (the default: the Access is dropped and counted, the request never
	// waits) or "wait" (it waits up to QueueWait for a slot, then drops
	// and counts). Waiting trades the request path's latency for a
	// complete ledger while the writer lags: every waiting request holds
	// its connection and goroutine, and is late by up to QueueWait.
	QueueFull string          `yaml:"queue_full"`
	QueueWait time.Duration   `yaml:"queue_wait"` // with wait (default 50ms)
	Retention LedgerRetention `yaml:"retention"`
	Privacy   LedgerPrivacy   `yaml:"privacy"`
}

// LedgerPrivacy bounds what researchers may be told with differential
// privacy (warden reach/audience --dp-epsilon|--dp-rho --researcher):
// each researcher's total budget in zCDP rho, exact decimals. An answer at
// epsilon costs epsilon^2/2, at rho costs rho; past the budget answers
// are refused. Spending is kept in the ledger directory.
type LedgerPrivacy struct {
	Budget      string            `yaml:"budget_rho"`  // every researcher's (default 1)
	Researchers map[string]string `yaml:"researchers"` // a researcher's own, over budget_rho
}

// Limit is researcher's budget in rho.
func (p LedgerPrivacy) Limit(researcher string) *big.Rat {
	s := p.Budget
	if r, ok := p.Researchers[researcher]; ok {
		s = r
	}
	v, ok := new(big.Rat).SetString(s)
	if !ok {
		return big.NewRat(1, 1)
	}
	return v
}

// What a request does when the ledger's queue is full (ledger.queue_full).
const (
	QueueDrop = "drop"
	QueueWait = "wait"
)

// LedgerRetention bounds the ledger: sealed hour partitions older than
// MaxAge go (default 720h), then the oldest while the directory is over
// MaxBytes (0: no size bound). MaxAge is a pointer so that an explicit 0
// is told from none: 0 is refused, where max_bytes' 0 means no bound (a
// reader writing 0 for "keep everything" would lose all but 30 days).
type LedgerRetention struct {
	MaxAge   *time.Duration `yaml:"max_age"`
	MaxBytes int64          `yaml:"max_bytes"`
}

// Age is MaxAge, set by the defaults.
func (r LedgerRetention) Age() time.Duration {
	if r.MaxAge == nil {
		return DefaultMaxAge
	}
	return *r.MaxAge
}

// DefaultMaxAge is retention.max_age when the config gives none.
const DefaultMaxAge = 30 * 24 * time.Hour

// Ledger backends.
const (
	LedgerLocal      = "local"
	LedgerClickHouse = "clickhouse"
)

func (l *Ledger) setDefaults() {
	if l.Backend == "" {
		l.Backend = LedgerLocal
	}
	if l.Backend == LedgerClickHouse {
		l.ClickHouse.SetDefaults()
	}
	if l.FsyncInterval == 0 {
		l.FsyncInterval = time.Second
	}
	if l.Queue == 0 {
		l.Queue = 8192
	}
	if l.PartitionAccesses == 0 {
		l.PartitionAccesses = ledger.DefaultPartitionAccesses
	}
	if l.QueueFull == "" {
		l.QueueFull = QueueDrop
	}
	if l.QueueFull == QueueWait && l.QueueWait == 0 {
		l.QueueWait = 50 * time.Millisecond
	}
	if l.Privacy.Budget == "" {
		l.Privacy.Budget = "1"
	}
	if l.Retention.MaxAge == nil {
		d := DefaultMaxAge
		l.Retention.MaxAge = &d
	}
}

// Validate reports every problem, each starting with its key.
func (l Ledger) Validate() error {
	var errs []error
	switch l.Backend {
	case LedgerLocal:
		if len(l.ClickHouse.Addrs) > 0 {
			// A fleet's config that forgot the backend line would keep
			// no shared ledger, and say nothing (as store.redis without
			// store.backend: redis is an error).
			errs = append(errs, fmt.Errorf("clickhouse.addrs: set, but backend is %q: a fleet's shared ledger needs backend: clickhouse (or remove the clickhouse section)", l.Backend))
		}
	case LedgerClickHouse:
		if err := l.ClickHouse.Validate(); err != nil {
			for _, e := range unjoin(err) {
				errs = append(errs, fmt.Errorf("clickhouse.%s", e.Error()))
			}
		}
		if l.ClickHouse.Spool.Dir == "" {
			errs = append(errs, errors.New("clickhouse.spool.dir: required: batches wait there while ClickHouse is down"))
		}
	default:
		errs = append(errs, fmt.Errorf("backend: %q is not local or clickhouse", l.Backend))
	}
	if l.FsyncInterval < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("fsync_interval: %v is below 10ms", l.FsyncInterval))
	}
	if l.PartitionAccesses < 100 || l.PartitionAccesses > 10_000_000 {
		errs = append(errs, fmt.Errorf("partition_accesses: %d is not between 100 and 10000000", l.PartitionAccesses))
	}
	if l.Queue < 1 || l.Queue > 1<<22 {
		errs = append(errs, fmt.Errorf("queue: %d is not between 1 and 4194304", l.Queue))
	}
	switch l.QueueFull {
	case QueueDrop:
		if l.QueueWait != 0 {
			errs = append(errs, fmt.Errorf("queue_wait: %v set with queue_full %q (it applies to wait)", l.QueueWait, l.QueueFull))
		}
	case QueueWait:
		if l.QueueWait < time.Millisecond || l.QueueWait > time.Second {
			errs = append(errs, fmt.Errorf("queue_wait: %v is not between 1ms and 1s (a request waits that long)", l.QueueWait))
		}
	default:
		errs = append(errs, fmt.Errorf("queue_full: %q is not drop or wait", l.QueueFull))
	}
	switch age := l.Retention.Age(); {
	case age == 0:
		errs = append(errs, errors.New("retention.max_age: 0 does not mean \"keep everything\" (max_bytes' 0 does): the ledger always has an age bound; give one of at least 1h (87600h is ten years), or leave it out for the default 720h"))
	case age < time.Hour:
		errs = append(errs, fmt.Errorf("retention.max_age: %v is below 1h (a partition is an hour)", age))
	}
	if l.Retention.MaxBytes < 0 {
		errs = append(errs, errors.New("retention.max_bytes: must not be negative"))
	}
	budget := func(key, s string) {
		if v, ok := new(big.Rat).SetString(s); !ok || v.Sign() < 0 {
			errs = append(errs, fmt.Errorf("%s: %q is not a non-negative number", key, s))
		}
	}
	budget("privacy.budget_rho", l.Privacy.Budget)
	for name, s := range l.Privacy.Researchers {
		budget("privacy.researchers."+name, s)
	}
	return errors.Join(errs...)
}
