package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/warden-gw/warden/internal/store"
)

// maxSpan caps interval·burst (µs) so now+span stays exact in a double:
// 2^51 µs is about 71 years.
const maxSpan = int64(1) << 51

var (
	errInterval = errors.New("interval must be positive")
	errBurst    = errors.New("burst must be at least 1")
	errCost     = errors.New("cost must not be negative")
)

func validLimit(l *store.LimitRequest) error {
	switch {
	case l.Interval <= 0:
		return errInterval
	case l.Burst < 1:
		return errBurst
	case l.Cost < 0:
		return errCost
	}
	return nil
}

// intervalMicros rounds an emission interval up to whole microseconds.
func intervalMicros(d time.Duration) int64 {
	return max(1, (int64(d)+999)/1000)
}

func mulSpan(a, b int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	if a > maxSpan/b {
		return maxSpan
	}
	return min(a*b, maxSpan)
}

func (s *Store) limitKey(k string) string { return s.prefix + "{l:" + k + "}" }

func banField(k store.BanKey) string { return k.Facet + "\x00" + k.Value }

// admitGroup is the part of one Admit that lives in one slot.
type admitGroup struct {
	slot   uint16
	bans   bool
	limits []int // indices into the request's limits
}

// Admit checks bans, then charges each limit on its own, in one round trip.
// See doc.go for how a Redis Cluster splits it.
func (s *Store) Admit(ctx context.Context, now time.Time, req *store.AdmitRequest) (store.AdmitResult, error) {
	if req == nil || (len(req.Bans) == 0 && len(req.Limits) == 0) {
		return store.AdmitResult{}, nil
	}
	for i := range req.Limits {
		if err := validLimit(&req.Limits[i]); err != nil {
			return store.AdmitResult{}, fmt.Errorf("redis: admit: limit %d: %w", i, err)
		}
	}
	us := micros(now)
	s.observe(us)
	nowArg := strconv.FormatInt(us, 10)

	// Group by slot; the bans' group comes first. Without a cluster there
	// is one group, so bans and limits are decided atomically.
	groups := make([]admitGroup, 0, 2)
	if len(req.Bans) > 0 {
		groups = append(groups, admitGroup{slot: s.bansSlot, bans: true})
	}
	for i := range req.Limits {
		sl := s.slot(s.limitKey(req.Limits[i].Key))
		g := -1
		for j := range groups {
			if groups[j].slot == sl {
				g = j
				break
			}
		}
		if g < 0 {
			groups = append(groups, admitGroup{slot: sl})
			g = len(groups) - 1
		}
		groups[g].limits = append(groups[g].limits, i)
	}
	calls := make([]call, len(groups))
	for gi, g := range groups {
		keys := make([]string, 0, 2+len(g.limits))
		args := make([]string, 0, 2+len(req.Bans)+4*len(g.limits))
		args = append(args, nowArg)
		if g.bans {
			keys = append(keys, s.bansE, s.bansD)
			args = append(args, strconv.Itoa(len(req.Bans)))
			for _, k := range req.Bans {
				args = append(args, banField(k))
			}
		} else {
			args = append(args, "0")
		}
		for _, i := range g.limits {
			l := &req.Limits[i]
			t := intervalMicros(l.Interval)
			keys = append(keys, s.limitKey(l.Key))
			args = append(args,
				strconv.FormatInt(t, 10),
				strconv.FormatInt(mulSpan(t, int64(l.Burst)), 10),
				strconv.Itoa(l.Cost),
				strconv.Itoa(l.Burst))
		}
		calls[gi] = call{sc: admitScript, keys: keys, args: args}
	}
	res, err := s.run(ctx, calls)
	if err != nil {
		return store.AdmitResult{}, fmt.Errorf("redis: admit: %w", err)
	}
	out := store.AdmitResult{Limits: make([]store.LimitResult, len(req.Limits))}
	var charged []int // limits admitted in groups without the ban
	for gi, g := range groups {
		arr, err := res[gi].ToArray()
		if err != nil || len(arr) < 2 {
			return store.AdmitResult{}, fmt.Errorf("redis: admit: bad reply: %w", unavailable(errors.Join(errBadReply, err)))
		}
		idx, _ := arr[0].AsInt64()
		if idx > 0 {
			raw, _ := arr[1].ToString()
			var b store.Ban
			if err := json.Unmarshal([]byte(raw), &b); err != nil {
				return store.AdmitResult{}, fmt.Errorf("redis: admit: decode ban %d: %w", idx, err)
			}
			out.Ban = &b
			continue
		}
		if len(arr) != 2+4*len(g.limits) {
			return store.AdmitResult{}, fmt.Errorf("redis: admit: %w", unavailable(errBadReply))
		}
		for j, i := range g.limits {
			v := arr[2+4*j : 6+4*j]
			allowed, _ := v[0].AsInt64()
			rem, _ := v[1].AsInt64()
			retry, _ := v[2].AsInt64()
			reset, _ := v[3].AsInt64()
			r := store.LimitResult{Allowed: allowed == 1, Remaining: int(rem), ResetAfter: time.Duration(reset) * time.Microsecond}
			if retry < 0 {
				r.RetryAfter = -1
			} else {
				r.RetryAfter = time.Duration(retry) * time.Microsecond
			}
			out.Limits[i] = r
			if r.Allowed && req.Limits[i].Cost > 0 {
				charged = append(charged, i)
			}
		}
	}
	if out.Ban == nil {
		return out, nil
	}
	// A ban matched, but limits in other slots were charged in the same
	// round trip: take those charges back.
	if len(charged) > 0 {
		if err := s.refund(ctx, nowArg, req.Limits, charged); err != nil {
			s.log.WarnContext(ctx, "redis store: refund of limits charged beside a ban failed", "err", err)
		}
	}
	return store.AdmitResult{Ban: out.Ban}, nil
}

var errBadReply = errors.New("unexpected script reply")

func (s *Store) refund(ctx context.Context, nowArg string, limits []store.LimitRequest, idx []int) error {
	bySlot := map[uint16]*call{}
	var order []uint16
	for _, i := range idx {
		l := &limits[i]
		key := s.limitKey(l.Key)
		sl := s.slot(key)
		c := bySlot[sl]
		if c == nil {
			c = &call{sc: refundScript, args: []string{nowArg}}
			bySlot[sl] = c
			order = append(order, sl)
		}
		t := intervalMicros(l.Interval)
		c.keys = append(c.keys, key)
		c.args = append(c.args, strconv.FormatInt(min(mulSpan(t, int64(l.Cost)), mulSpan(t, int64(l.Burst))), 10))
	}
	calls := make([]call, 0, len(order))
	for _, sl := range order {
		calls = append(calls, *bySlot[sl])
	}
	_, err := s.run(ctx, calls)
	return err
}
