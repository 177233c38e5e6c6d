package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/warden-gw/warden/internal/store"
)

// maxSpan caps interval·burst (µs) so now+span stays exact in a double:
// 2^51 µs is about 71 years.
const maxSpan = int64(1) << 51

var (
	errBadReply = errors.New("unexpected script reply")
)

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

// admitArgs builds one call of the admit script: the distinct limit shapes
// (interval, burst window, cost, burst) once, then each Admit's bans and
// its limits by shape. The limits of concurrent requests share a few
// shapes (one per rule), and every argument costs the script a Lua string
// and most a tonumber: sending each limit as one index instead of four
// numbers makes the script about a third cheaper.
type admitArgs struct {
	keys   []string
	shapes []limitShape
	calls  []string
	n      int // Admits added
}

type limitShape struct {
	t, bw       int64
	cost, burst int
}

// add appends one Admit (or its part in one cluster slot).
func (a *admitArgs) add(s *Store, now string, bans []store.BanKey, limits []*store.LimitRequest) {
	a.n++
	a.calls = append(a.calls, now, strconv.Itoa(len(bans)))
	for _, k := range bans {
		a.calls = append(a.calls, banField(k))
	}
	a.calls = append(a.calls, strconv.Itoa(len(limits)))
	for _, l := range limits {
		t := intervalMicros(l.Interval)
		sh := limitShape{t: t, bw: mulSpan(t, int64(l.Burst)), cost: l.Cost, burst: l.Burst}
		i := slices.Index(a.shapes, sh)
		if i < 0 {
			i = len(a.shapes)
			a.shapes = append(a.shapes, sh)
		}
		a.keys = append(a.keys, s.limitKey(l.Key))
		a.calls = append(a.calls, shapeIndex(i))
	}
}

// args is ARGV of the script; banKeys says KEYS begins with the ban keys.
func (a *admitArgs) args(banKeys bool) []string {
	out := make([]string, 0, 3+4*len(a.shapes)+len(a.calls))
	has := "0"
	if banKeys {
		has = "1"
	}
	out = append(out, has, strconv.Itoa(a.n), strconv.Itoa(len(a.shapes)))
	for _, sh := range a.shapes {
		out = append(out, strconv.FormatInt(sh.t, 10), strconv.FormatInt(sh.bw, 10), strconv.Itoa(sh.cost), strconv.Itoa(sh.burst))
	}
	return append(out, a.calls...)
}

var shapeIndexes = [...]string{"1", "2", "3", "4", "5", "6", "7", "8"}

// shapeIndex is shape i's index in the script (from 1).
func shapeIndex(i int) string {
	if i < len(shapeIndexes) {
		return shapeIndexes[i]
	}
	return strconv.Itoa(i + 1)
}

// decodeAdmit reads one call's reply from arr: the ban (nil when none) or,
// when none matched, nlim results into out. It returns the rest of arr.
func decodeAdmit(arr []rueidis.RedisMessage, nlim int, out []store.LimitResult) (*store.Ban, []rueidis.RedisMessage, error) {
	if len(arr) < 2 {
		return nil, nil, unavailable(errBadReply)
	}
	if idx, _ := arr[0].AsInt64(); idx > 0 {
		raw, _ := arr[1].ToString()
		b := new(store.Ban)
		if err := json.Unmarshal([]byte(raw), b); err != nil {
			return nil, nil, fmt.Errorf("decode ban %d: %w", idx, err)
		}
		return b, arr[2:], nil
	}
	arr = arr[2:]
	if len(arr) < 4*nlim {
		return nil, nil, unavailable(errBadReply)
	}
	for i := range nlim {
		v := arr[4*i : 4*i+4]
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
		out[i] = r
	}
	return nil, arr[4*nlim:], nil
}

// admitCall is one Admit waiting in the batcher.
type admitCall struct {
	now string
	req *store.AdmitRequest
	res store.AdmitResult
	waiter
}

// Admit checks bans, then charges each limit on its own, in one round trip.
// See doc.go for batching and for how a Redis Cluster splits it.
func (s *Store) Admit(ctx context.Context, now time.Time, req *store.AdmitRequest) (store.AdmitResult, error) {
	if req == nil || (len(req.Bans) == 0 && len(req.Limits) == 0) {
		return store.AdmitResult{}, nil
	}
	for i := range req.Limits {
		if err := req.Limits[i].Validate(); err != nil {
			return store.AdmitResult{}, fmt.Errorf("redis: admit: limit %d: %w", i, err)
		}
	}
	us := micros(now)
	s.observe(us)
	nowArg := strconv.FormatInt(us, 10)
	if s.cluster {
		return s.admitCluster(ctx, nowArg, req)
	}
	c := &admitCall{now: nowArg, req: req, waiter: waiter{done: make(chan struct{})}}
	s.admits.submit(c)
	if err := c.wait(ctx); err != nil {
		return store.AdmitResult{}, fmt.Errorf("redis: admit: %w", err)
	}
	return c.res, nil
}

// flushAdmits sends a batch of Admits as one script call.
func (s *Store) flushAdmits(batch []*admitCall) {
	batch = live(batch, func(c *admitCall) *waiter { return &c.waiter })
	if len(batch) == 0 {
		return
	}
	a := admitArgs{keys: []string{s.bansE, s.bansD}}
	limits := make([]*store.LimitRequest, 0, 4)
	for _, c := range batch {
		limits = limits[:0]
		for i := range c.req.Limits {
			limits = append(limits, &c.req.Limits[i])
		}
		a.add(s, c.now, c.req.Bans, limits)
	}
	res, err := s.run(context.Background(), []call{{sc: admitScript, keys: a.keys, args: a.args(true)}})
	var arr []rueidis.RedisMessage
	if err == nil {
		arr, err = res[0].ToArray()
		if err != nil {
			err = unavailable(errBadReply)
		}
	}
	for _, c := range batch {
		if err == nil {
			out := make([]store.LimitResult, len(c.req.Limits))
			var ban *store.Ban
			var derr error
			ban, arr, derr = decodeAdmit(arr, len(c.req.Limits), out)
			switch {
			case derr != nil:
				c.err = derr
				err = derr // the rest of the reply cannot be trusted
			case ban != nil:
				c.res = store.AdmitResult{Ban: ban}
			default:
				c.res = store.AdmitResult{Limits: out}
			}
		} else {
			c.err = err
		}
		close(c.done)
	}
}

// admitCluster sends one script per slot in one pipelined round trip; a
// matched ban then refunds limits charged in other slots.
func (s *Store) admitCluster(ctx context.Context, nowArg string, req *store.AdmitRequest) (store.AdmitResult, error) {
	// With bans, group 0 is the bans' slot; limits in that slot join it.
	groups := make([]slotGroup, 0, 2)
	hasBans := len(req.Bans) > 0
	if hasBans {
		groups = append(groups, slotGroup{slot: s.bansSlot})
	}
	for i := range req.Limits {
		groups = addToSlot(groups, s.slot(s.limitKey(req.Limits[i].Key)), i)
	}
	calls := make([]call, len(groups))
	for gi, g := range groups {
		var a admitArgs
		var bans []store.BanKey
		banKeys := hasBans && gi == 0
		if banKeys {
			a.keys = append(a.keys, s.bansE, s.bansD)
			bans = req.Bans
		}
		limits := make([]*store.LimitRequest, len(g.idx))
		for j, i := range g.idx {
			limits[j] = &req.Limits[i]
		}
		a.add(s, nowArg, bans, limits)
		calls[gi] = call{sc: admitScript, keys: a.keys, args: a.args(banKeys)}
	}
	res, err := s.run(ctx, calls)
	if err != nil {
		return store.AdmitResult{}, fmt.Errorf("redis: admit: %w", err)
	}
	out := store.AdmitResult{Limits: make([]store.LimitResult, len(req.Limits))}
	var charged []int // limits admitted in groups without the ban
	part := make([]store.LimitResult, 0, len(req.Limits))
	for gi, g := range groups {
		arr, err := res[gi].ToArray()
		if err != nil {
			return store.AdmitResult{}, fmt.Errorf("redis: admit: %w", unavailable(errBadReply))
		}
		part = part[:len(g.idx)]
		ban, _, err := decodeAdmit(arr, len(g.idx), part)
		if err != nil {
			return store.AdmitResult{}, fmt.Errorf("redis: admit: %w", err)
		}
		if ban != nil {
			out.Ban = ban
			continue
		}
		for j, i := range g.idx {
			out.Limits[i] = part[j]
			if part[j].Allowed && req.Limits[i].Cost > 0 {
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
