package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

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

type spendGroup struct {
	slot uint16
	reqs []int
}

// Spend offers each request's subjects to its budget, in one round trip
// (one script per slot, pipelined, in a cluster). See doc.go.
func (s *Store) Spend(ctx context.Context, now time.Time, reqs []store.SpendRequest) ([]store.SpendResult, error) {
	for i := range reqs {
		switch {
		case reqs[i].Window <= 0:
			return nil, fmt.Errorf("redis: spend: budget %d: %w", i, errWindow)
		case reqs[i].Limit < 0:
			return nil, fmt.Errorf("redis: spend: budget %d: %w", i, errLimit)
		}
	}
	out := make([]store.SpendResult, len(reqs))
	if len(reqs) == 0 {
		return out, nil
	}
	ns := now.UnixNano()
	s.observe(micros(now))
	var groups []spendGroup
	keys := make([][2]string, len(reqs))
	for i := range reqs {
		r := &reqs[i]
		start := windowStart(ns, int64(r.Window))
		kx, kh := s.budgetKeys(r.Key, start)
		keys[i] = [2]string{kx, kh}
		sl := s.slot(kx)
		g := -1
		for j := range groups {
			if groups[j].slot == sl {
				g = j
				break
			}
		}
		if g < 0 {
			groups = append(groups, spendGroup{slot: sl})
			g = len(groups) - 1
		}
		groups[g].reqs = append(groups[g].reqs, i)
	}
	calls := make([]call, len(groups))
	exactArg := strconv.Itoa(s.exactMax)
	for gi, g := range groups {
		n := 1
		for _, i := range g.reqs {
			n += 3 + len(reqs[i].Subjects)
		}
		c := call{sc: spendScript, keys: make([]string, 0, 2*len(g.reqs)), args: make([]string, 0, n)}
		c.args = append(c.args, exactArg)
		for _, i := range g.reqs {
			r := &reqs[i]
			end := windowStart(ns, int64(r.Window)) + int64(r.Window)
			px := (end-ns+int64(time.Millisecond)-1)/int64(time.Millisecond) + expirySlack.Milliseconds()
			c.keys = append(c.keys, keys[i][0], keys[i][1])
			c.args = append(c.args, strconv.Itoa(r.Limit), strconv.FormatInt(px, 10), strconv.Itoa(len(r.Subjects)))
			for _, subj := range r.Subjects {
				c.args = append(c.args, strconv.FormatUint(subj, 10))
			}
		}
		calls[gi] = c
	}
	res, err := s.run(ctx, calls)
	if err != nil {
		return nil, fmt.Errorf("redis: spend: %w", err)
	}
	for gi, g := range groups {
		arr, err := res[gi].ToArray()
		if err != nil || len(arr) != 2*len(g.reqs) {
			return nil, fmt.Errorf("redis: spend: %w", unavailable(errors.Join(errBadReply, err)))
		}
		for j, i := range g.reqs {
			count, _ := arr[2*j].AsInt64()
			flags, _ := arr[2*j+1].ToString()
			if len(flags) != len(reqs[i].Subjects) {
				return nil, fmt.Errorf("redis: spend: %w", unavailable(errBadReply))
			}
			allowed := make([]bool, len(flags))
			for k := range flags {
				allowed[k] = flags[k] == '1'
			}
			out[i] = store.SpendResult{Allowed: allowed, Count: int(count)}
		}
	}
	return out, nil
}
