package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/warden-gw/warden/internal/store"
)

var (
	errWindow = errors.New("window must be positive")
	errLimit  = errors.New("limit must not be negative")
	errTTL    = errors.New("ttl must be positive")
)

// expirySlack keeps keys a minute past their logical end, so a gateway
// whose clock lags a little still finds them.
const expirySlack = time.Minute

// windowStart aligns now to a multiple of w since the Unix epoch (ns).
func windowStart(now, w int64) int64 {
	m := now % w
	if m < 0 {
		m += w
	}
	return now - m
}

// budgetKeys are a budget's exact set and HyperLogLog in the window that
// starts at start (Unix ns); both share the hash tag {s:key}.
func (s *Store) budgetKeys(key string, start int64) (string, string) {
	base := s.prefix + "{s:" + key + "}:" + strconv.FormatInt(start, 10)
	return base + ":x", base + ":h"
}

// appendSpend encodes one budget for the spend script, its window taken
// from now (Unix ns).
func (s *Store) appendSpend(keys, args []string, ns int64, r *store.SpendRequest) ([]string, []string) {
	w := int64(r.Window)
	start := windowStart(ns, w)
	kx, kh := s.budgetKeys(r.Key, start)
	px := (start+w-ns+int64(time.Millisecond)-1)/int64(time.Millisecond) + expirySlack.Milliseconds()
	keys = append(keys, kx, kh)
	args = append(args, strconv.Itoa(r.Limit), strconv.FormatInt(px, 10), strconv.Itoa(len(r.Subjects)))
	for _, subj := range r.Subjects {
		args = append(args, strconv.FormatUint(subj, 10))
	}
	return keys, args
}

// decodeSpend reads one budget's reply (count, flags) from arr.
func decodeSpend(arr []rueidis.RedisMessage, r *store.SpendRequest) (store.SpendResult, []rueidis.RedisMessage, error) {
	if len(arr) < 2 {
		return store.SpendResult{}, nil, unavailable(errBadReply)
	}
	count, _ := arr[0].AsInt64()
	flags, _ := arr[1].ToString()
	if len(flags) != len(r.Subjects) {
		return store.SpendResult{}, nil, unavailable(errBadReply)
	}
	allowed := make([]bool, len(flags))
	for k := range flags {
		allowed[k] = flags[k] == '1'
	}
	return store.SpendResult{Allowed: allowed, Count: int(count)}, arr[2:], nil
}

// spendCall is one Spend waiting in the batcher.
type spendCall struct {
	ns   int64
	reqs []store.SpendRequest
	res  []store.SpendResult
	waiter
}

// Spend offers each request's subjects to its budget, in one round trip:
// batched with concurrent calls on a standalone server, one script per slot
// in a cluster. See doc.go.
func (s *Store) Spend(ctx context.Context, now time.Time, reqs []store.SpendRequest) ([]store.SpendResult, error) {
	for i := range reqs {
		switch {
		case reqs[i].Window <= 0:
			return nil, fmt.Errorf("redis: spend: budget %d: %w", i, errWindow)
		case reqs[i].Limit < 0:
			return nil, fmt.Errorf("redis: spend: budget %d: %w", i, errLimit)
		}
	}
	if len(reqs) == 0 {
		return []store.SpendResult{}, nil
	}
	ns := now.UnixNano()
	s.observe(micros(now))
	if s.cluster {
		return s.spendCluster(ctx, ns, reqs)
	}
	c := &spendCall{ns: ns, reqs: reqs, waiter: waiter{done: make(chan struct{})}}
	s.spends.submit(c)
	if err := c.wait(ctx); err != nil {
		return nil, fmt.Errorf("redis: spend: %w", err)
	}
	return c.res, nil
}

// flushSpends sends a batch of Spends as one script call: the script takes
// any number of budgets, decided one after the other.
func (s *Store) flushSpends(batch []*spendCall) {
	batch = live(batch, func(c *spendCall) *waiter { return &c.waiter })
	if len(batch) == 0 {
		return
	}
	var keys, args []string
	args = append(args, strconv.Itoa(s.exactMax))
	for _, c := range batch {
		for i := range c.reqs {
			keys, args = s.appendSpend(keys, args, c.ns, &c.reqs[i])
		}
	}
	res, err := s.run(context.Background(), []call{{sc: spendScript, keys: keys, args: args}})
	var arr []rueidis.RedisMessage
	if err == nil {
		if arr, err = res[0].ToArray(); err != nil {
			err = unavailable(errBadReply)
		}
	}
	for _, c := range batch {
		if err == nil {
			c.res = make([]store.SpendResult, len(c.reqs))
			for i := range c.reqs {
				if c.res[i], arr, err = decodeSpend(arr, &c.reqs[i]); err != nil {
					break
				}
			}
		}
		if err != nil {
			c.res, c.err = nil, err
		}
		close(c.done)
	}
}

func (s *Store) spendCluster(ctx context.Context, ns int64, reqs []store.SpendRequest) ([]store.SpendResult, error) {
	var groups []slotGroup
	for i := range reqs {
		kx, _ := s.budgetKeys(reqs[i].Key, 0)
		groups = addToSlot(groups, s.slot(kx), i)
	}
	calls := make([]call, len(groups))
	exactArg := strconv.Itoa(s.exactMax)
	for gi, g := range groups {
		c := call{sc: spendScript, args: []string{exactArg}}
		for _, i := range g.idx {
			c.keys, c.args = s.appendSpend(c.keys, c.args, ns, &reqs[i])
		}
		calls[gi] = c
	}
	res, err := s.run(ctx, calls)
	if err != nil {
		return nil, fmt.Errorf("redis: spend: %w", err)
	}
	out := make([]store.SpendResult, len(reqs))
	for gi, g := range groups {
		arr, err := res[gi].ToArray()
		if err != nil {
			return nil, fmt.Errorf("redis: spend: %w", unavailable(errBadReply))
		}
		for _, i := range g.idx {
			if out[i], arr, err = decodeSpend(arr, &reqs[i]); err != nil {
				return nil, fmt.Errorf("redis: spend: %w", err)
			}
		}
	}
	return out, nil
}
