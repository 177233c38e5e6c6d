package redis

import (
	"github.com/warden-gw/warden/internal/backendauth"

	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"github.com/warden-gw/warden/internal/store"
)

var _ store.Store = (*Store)(nil)

// Options tune the store beyond its configuration. Zero values take the
// defaults named on each field.
type Options struct {
	// ExactMax is how many subjects a budget counts exactly per window
	// before it also counts in a HyperLogLog. Default 1024.
	ExactMax int
	// LinkCapacity is the number of ids one link-memory generation holds
	// exactly; past it an identity is saturated (see store.Provenance).
	// Default 4096.
	LinkCapacity int
	// Logger receives connection-level messages. Default slog.Default().
	Logger *slog.Logger
	// Batches is how many batched script calls of one kind (Admit, Spend)
	// may be in flight at once on a standalone server. Default 4.
	Batches int
}

const (
	batchMax            = 128 // calls per batched script call
	defaultBatches      = 4
	defaultExactMax     = 1024
	defaultLinkCapacity = 4096
)

// Store is the Redis state store. It is safe for concurrent use.
type Store struct {
	client      rueidis.Client
	cluster     bool
	prefix      string
	readTimeout time.Duration
	exactMax    int
	linkCap     int
	bansE       string // ZSET: ban field -> until (µs)
	bansD       string // HASH: ban field -> JSON
	bansN       string // channel: a ban changed (the mirrors reload)
	bansSlot    uint16
	leases      *leaseTable // nil: leases off (lease.tokens 1)
	mirror      *banMirror
	stop        context.CancelFunc // ends the mirror's goroutines
	lastNow     atomic.Int64       // latest now a caller passed, µs: RemoveBan's clock
	log         *slog.Logger
	admits      batcher[admitCall]
	spends      batcher[spendCall]
}

// New connects to Redis as cfg says (call cfg.SetDefaults and Validate
// first) and loads the scripts on every node.
func New(ctx context.Context, cfg Config, opts Options) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("redis: config: %w", err)
	}
	if opts.ExactMax <= 0 {
		opts.ExactMax = defaultExactMax
	}
	if opts.LinkCapacity <= 0 {
		opts.LinkCapacity = defaultLinkCapacity
	}
	if opts.Batches <= 0 {
		opts.Batches = defaultBatches
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	password, err := backendauth.Password(cfg.PasswordFile, cfg.PasswordEnv)
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	tlsCfg, err := cfg.TLS.Config()
	if err != nil {
		return nil, fmt.Errorf("redis: %w", err)
	}
	co := rueidis.ClientOption{
		InitAddress:       cfg.Addrs,
		Username:          cfg.Username,
		Password:          password,
		TLSConfig:         tlsCfg,
		SelectDB:          cfg.DB,
		ForceSingleClient: len(cfg.Addrs) == 1,
		DisableCache:      true,
		// Scripts change state: a retry after a lost reply could charge
		// twice, so a failed call is reported, never repeated.
		DisableRetry:      true,
		PipelineMultiplex: bits.Len(uint(max(cfg.PoolSize, 1) - 1)),
		ConnWriteTimeout:  cfg.WriteTimeout,
		Dialer:            netDialer(cfg.DialTimeout),
		ClientName:        "warden",
	}
	client, err := rueidis.NewClient(co)
	if err != nil {
		if tlsCfg != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded)) {
			// A plain Redis port takes the TLS hello for a command and
			// waits: say so rather than only "deadline exceeded".
			err = fmt.Errorf("no TLS handshake within dial_timeout (is the port serving TLS?): %w", err)
		}
		return nil, fmt.Errorf("redis: connect to %s: %w", strings.Join(cfg.Addrs, ","), unavailable(err))
	}
	s := &Store{
		client:      client,
		cluster:     len(cfg.Addrs) > 1,
		prefix:      cfg.KeyPrefix,
		readTimeout: cfg.ReadTimeout,
		exactMax:    opts.ExactMax,
		linkCap:     opts.LinkCapacity,
		log:         opts.Logger,
	}
	s.bansE = s.prefix + "{bans}:e"
	s.bansD = s.prefix + "{bans}:d"
	s.bansN = s.prefix + "{bans}:n"
	s.mirror = newBanMirror()
	s.bansSlot = s.slot(s.bansE)
	slots := max(1, opts.Batches)
	s.admits = batcher[admitCall]{slots: slots, max: batchMax, flush: s.flushAdmits}
	s.spends = batcher[spendCall]{slots: slots, max: batchMax, flush: s.flushSpends}
	if err := s.loadScripts(ctx); err != nil {
		client.Close()
		return nil, err
	}
	if cfg.Lease.Tokens > 1 {
		s.leases = newLeaseTable(cfg.Lease.Tokens, max(1, cfg.Lease.TTL.Microseconds()))
		// The mirror's goroutines outlive New's ctx: they end at Close.
		wctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		s.stop = stop
		go s.watchBans(wctx)
		go s.reloadBans(wctx)
		// Wait a little for the first load, so the first requests can be
		// decided here; until then they go to Redis.
		select {
		case <-s.mirror.ready:
		case <-time.After(banMirrorWait):
		case <-ctx.Done():
		}
	}
	return s, nil
}

// local reports whether Admit may decide here: leases are on and the ban
// mirror is current.
func (s *Store) local() bool { return s.leases != nil && s.mirror.current() }

// loadScripts sends SCRIPT LOAD to every node, so the first calls find
// their scripts by SHA.
func (s *Store) loadScripts(ctx context.Context) error {
	for _, n := range s.client.Nodes() {
		cmds := make(rueidis.Commands, 0, len(allScripts))
		for _, sc := range allScripts {
			cmds = append(cmds, n.B().ScriptLoad().Script(sc.src).Build())
		}
		for i, r := range n.DoMulti(ctx, cmds...) {
			if err := r.Error(); err != nil {
				return fmt.Errorf("redis: load script %s: %w", allScripts[i].name, unavailable(err))
			}
		}
	}
	return nil
}

// Ping asks every node for PING within the read timeout: the gateway's
// readiness (/readyz), which no decision may otherwise probe while Redis
// is away.
func (s *Store) Ping(ctx context.Context) error {
	if s.readTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.readTimeout)
		defer cancel()
	}
	for _, n := range s.client.Nodes() {
		if err := n.Do(ctx, n.B().Ping().Build()).Error(); err != nil {
			return fmt.Errorf("redis: ping: %w", unavailable(err))
		}
	}
	return nil
}

// Close closes the connections.
func (s *Store) Close() error {
	if s.stop != nil {
		s.stop()
	}
	s.client.Close()
	return nil
}

func unavailable(err error) error {
	if errors.Is(err, store.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
}

// call is one script execution, on the node holding its keys' slot.
type call struct {
	sc   *script
	keys []string
	args []string
}

// run sends calls in one pipelined round trip (one per node in a
// cluster), retrying with EVAL those the server did not know by SHA.
func (s *Store) run(ctx context.Context, calls []call) ([]rueidis.RedisResult, error) {
	if s.readTimeout > 0 {
		if d, ok := ctx.Deadline(); !ok || time.Until(d) > s.readTimeout {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, s.readTimeout)
			defer cancel()
		}
	}
	cmds := make(rueidis.Commands, len(calls))
	for i, c := range calls {
		cmds[i] = s.client.B().Evalsha().Sha1(c.sc.sha).Numkeys(int64(len(c.keys))).Key(c.keys...).Arg(c.args...).Build()
	}
	res := s.client.DoMulti(ctx, cmds...)
	var retry []int
	for i, r := range res {
		if e, ok := rueidis.IsRedisErr(r.Error()); ok && e.IsNoScript() {
			retry = append(retry, i)
		}
	}
	if len(retry) > 0 {
		cmds = cmds[:0]
		for _, i := range retry {
			c := calls[i]
			cmds = append(cmds, s.client.B().Eval().Script(c.sc.src).Numkeys(int64(len(c.keys))).Key(c.keys...).Arg(c.args...).Build())
		}
		for j, r := range s.client.DoMulti(ctx, cmds...) {
			res[retry[j]] = r
		}
	}
	for i, r := range res {
		if err := r.Error(); err != nil {
			return nil, fmt.Errorf("script %s: %w", calls[i].sc.name, unavailable(err))
		}
	}
	return res, nil
}

// micros converts to the scripts' clock, Unix microseconds.
func micros(t time.Time) int64 { return t.UnixMicro() }

// observe remembers the latest now callers passed.
func (s *Store) observe(us int64) {
	for {
		old := s.lastNow.Load()
		if us <= old || s.lastNow.CompareAndSwap(old, us) {
			return
		}
	}
}

// slotGroup is the requests (indices) of one call whose keys share a
// cluster slot: one script may only touch keys of one slot.
type slotGroup struct {
	slot uint16
	idx  []int
}

// addToSlot files request i under slot sl, opening its group if new.
func addToSlot(groups []slotGroup, sl uint16, i int) []slotGroup {
	for j := range groups {
		if groups[j].slot == sl {
			groups[j].idx = append(groups[j].idx, i)
			return groups
		}
	}
	return append(groups, slotGroup{slot: sl, idx: []int{i}})
}

// slot is the Redis Cluster hash slot of key (CRC16 of its hash tag).
// Without a cluster every key is in slot 0, so one script takes them all.
func (s *Store) slot(key string) uint16 {
	if !s.cluster {
		return 0
	}
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return crc16(key) % 16384
}

// crc16 is CRC-16/XMODEM, as Redis Cluster uses.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

func netDialer(timeout time.Duration) net.Dialer {
	return net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
}
