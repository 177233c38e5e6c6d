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
// (interval, burst window, cost, burst, lease size) once, then each
// Admit's bans and its limits by shape. The limits of concurrent requests
// share a few shapes (one per rule), and every argument costs the script a
// Lua string and most a tonumber: sending each limit as one index instead
// of five numbers makes the script about a third cheaper.
type admitArgs struct {
	keys    []string
	shapes  []limitShape
	refunds []string // per refund: its key's index in KEYS (from 1), µs given back, floor µs
	calls   []string
	n       int // Admits added
}

type limitShape struct {
	t, bw              int64
	cost, burst, lease int
}

// add appends one Admit (or its part in one cluster slot). plans, when not
// nil, is limits' plans: the lease each asks for and what it gives back.
func (a *admitArgs) add(s *Store, now string, bans []store.BanKey, limits []*store.LimitRequest, plans []*limitPlan) {
	a.n++
	a.calls = append(a.calls, now, strconv.Itoa(len(bans)))
	for _, k := range bans {
		a.calls = append(a.calls, banField(k))
	}
	a.calls = append(a.calls, strconv.Itoa(len(limits)))
	for j, l := range limits {
		t := intervalMicros(l.Interval)
		sh := limitShape{t: t, bw: mulSpan(t, int64(l.Burst)), cost: l.Cost, burst: l.Burst}
		if plans != nil {
			sh.lease = plans[j].ask
		}
		i := slices.Index(a.shapes, sh)
		if i < 0 {
			i = len(a.shapes)
			a.shapes = append(a.shapes, sh)
		}
		a.keys = append(a.keys, s.limitKey(l.Key))
		if plans != nil && (plans[j].refund > 0 || plans[j].floor > 0) {
			a.refunds = append(a.refunds, strconv.Itoa(len(a.keys)), strconv.FormatInt(plans[j].refund, 10), strconv.FormatInt(plans[j].floor, 10))
		}
		a.calls = append(a.calls, shapeIndex(i))
	}
}

// args is ARGV of the script; banKeys says KEYS begins with the ban keys.
func (a *admitArgs) args(banKeys bool) []string {
	out := make([]string, 0, 4+5*len(a.shapes)+len(a.refunds)+len(a.calls))
	has := "0"
	if banKeys {
		has = "1"
	}
	out = append(out, has, strconv.Itoa(a.n), strconv.Itoa(len(a.shapes)), strconv.Itoa(len(a.refunds)/3))
	for _, sh := range a.shapes {
		out = append(out, strconv.FormatInt(sh.t, 10), strconv.FormatInt(sh.bw, 10), strconv.Itoa(sh.cost), strconv.Itoa(sh.burst), strconv.Itoa(sh.lease))
	}
	out = append(out, a.refunds...)
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

// limitReply is one limit's values in the script's reply (times in µs).
type limitReply struct {
	allowed                 bool
	remaining, retry, reset int64
	leased                  int
}

// decodeAdmit reads one call's reply from arr: the ban (nil when none) or,
// when none matched, len(out) limit replies into out. It returns the rest
// of arr.
func decodeAdmit(arr []rueidis.RedisMessage, out []limitReply) (*store.Ban, []rueidis.RedisMessage, error) {
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
	nlim := len(out)
	if len(arr) < 5*nlim {
		return nil, nil, unavailable(errBadReply)
	}
	for i := range nlim {
		v := arr[5*i : 5*i+5]
		allowed, _ := v[0].AsInt64()
		rem, _ := v[1].AsInt64()
		retry, _ := v[2].AsInt64()
		reset, _ := v[3].AsInt64()
		leased, _ := v[4].AsInt64()
		out[i] = limitReply{allowed: allowed == 1, remaining: rem, retry: retry, reset: reset, leased: int(leased)}
	}
	return nil, arr[5*nlim:], nil
}

// result is the limit result of a reply with no lease in it.
func (r limitReply) result() store.LimitResult {
	lr := store.LimitResult{Allowed: r.allowed, Remaining: int(r.remaining), ResetAfter: microsDuration(r.reset)}
	if r.retry < 0 {
		lr.RetryAfter = -1
	} else {
		lr.RetryAfter = microsDuration(r.retry)
	}
	return lr
}

func microsDuration(us int64) time.Duration { return time.Duration(us) * time.Microsecond }

// plan decides each limit of req from this Store's leases where it can;
// all says every limit was (nothing to send). A limit whose key has a lease
// call in flight waits for it (at most leaseWaits times, and not past ctx)
// and the request is planned again.
func (s *Store) plan(ctx context.Context, us int64, req *store.AdmitRequest) (plans []limitPlan, all bool) {
	plans = make([]limitPlan, len(req.Limits))
	for try := 0; ; try++ {
		wait := s.tryPlan(us, req, plans, try < leaseWaits && ctx.Err() == nil)
		if wait == nil {
			break
		}
		select {
		case <-wait:
		case <-ctx.Done():
		}
	}
	all = true
	for i := range plans {
		all = all && plans[i].local
	}
	return plans, all
}

// tryPlan plans req's limits into plans, or, when one may wait for a lease
// call in flight, undoes what it planned and returns that call's channel.
func (s *Store) tryPlan(us int64, req *store.AdmitRequest, plans []limitPlan, wait bool) chan struct{} {
	for i := range req.Limits {
		l := &req.Limits[i]
		t := intervalMicros(l.Interval)
		bw := mulSpan(t, int64(l.Burst))
		if l.Cost > l.Burst {
			plans[i] = limitPlan{t: t, bw: bw} // never passes: asked as is
			continue
		}
		plans[i] = s.leases.take(l.Key, t, bw, l.Burst, l.Cost, us, wait)
		if ch := plans[i].wait; ch != nil {
			for j := range i {
				p := &plans[j]
				if p.local {
					s.leases.unspend(req.Limits[j].Key, p.t, p.bw, req.Limits[j].Cost)
				} else if p.ask > 0 {
					s.leases.finish(req.Limits[j].Key, p, 0, 0, 0)
				}
			}
			return ch
		}
	}
	return nil
}

// settle fills out (one result per limit of req) from the plans' local
// results and the replies of the limits sent (in order), recording the
// leases Redis granted. A result is what one gateway deciding exactly
// would answer: a granted lease's unspent cells, and those this Store
// holds, are not counted as spent.
func (s *Store) settle(us int64, req *store.AdmitRequest, plans []limitPlan, sent []limitReply, out []store.LimitResult) {
	j := 0
	for i := range req.Limits {
		if plans != nil && plans[i].local {
			out[i] = plans[i].res
			continue
		}
		r := sent[j]
		j++
		out[i] = r.result()
		if plans == nil {
			continue
		}
		p := &plans[i]
		l := &req.Limits[i]
		if p.ask > 0 {
			s.leases.finish(l.Key, p, r.leased, us+r.reset, us)
		}
		switch {
		case r.leased > 0:
			out[i] = gcraAfter(us, us+r.reset-int64(r.leased)*p.t, p.t, p.bw)
		case l.Cost == 0:
			// Redis counts the cells this Store holds as spent, and
			// may have refilled past those it spent: a look answers as
			// one gateway charging each request when it came would.
			if tat, ok := s.leases.view(l.Key, p.t, p.bw, us+r.reset); ok {
				out[i] = gcraPeek(us, tat, p.t, p.bw)
			}
		}
	}
}

// release finishes the lease calls of plans that got no reply (a failed
// call, or a caller that stopped waiting), so requests waiting for them go
// on.
func (s *Store) release(req *store.AdmitRequest, plans []limitPlan) {
	for i := range plans {
		if plans[i].ask > 0 {
			s.leases.finish(req.Limits[i].Key, &plans[i], 0, 0, 0)
		}
	}
}

// gcraPeek is the result of a cost-0 look at a key whose TAT is tat, as the
// admit script computes it.
func gcraPeek(now, tat, t, bw int64) store.LimitResult {
	tat = max(tat, now)
	r := store.LimitResult{Remaining: int(max(0, now+bw-tat) / t), ResetAfter: microsDuration(tat - now)}
	if at := tat + t - bw; now >= at {
		r.Allowed = true
	} else {
		r.RetryAfter = microsDuration(at - now)
	}
	return r
}

// admitCall is one Admit waiting in the batcher.
type admitCall struct {
	now      string
	us       int64
	req      *store.AdmitRequest
	plans    []limitPlan // nil: no leases, bans judged in Redis
	sendBans bool
	res      store.AdmitResult
	waiter
}

// Admit checks bans, then charges each limit on its own: here, from the
// ban mirror and token leases, when they can decide (doc.go, "Leases"),
// else in one round trip. See doc.go for batching and for how a Redis
// Cluster splits it.
func (s *Store) Admit(ctx context.Context, now time.Time, req *store.AdmitRequest) (store.AdmitResult, error) {
	if req == nil || (len(req.Bans) == 0 && len(req.Limits) == 0) {
		return store.AdmitResult{}, nil
	}
	for i := range req.Limits {
		if err := req.Limits[i].Validate(); err != nil {
			return store.AdmitResult{}, fmt.Errorf("redis: admit: limit %d: %w", i, err)
		}
	}
	if res, ok := s.AdmitLocal(now, req); ok {
		return res, nil
	}
	us := micros(now)
	s.observe(us)
	var plans []limitPlan
	sendBans := len(req.Bans) > 0
	if s.local() {
		if b := s.mirror.match(req.Bans, us); b != nil {
			return store.AdmitResult{Ban: b}, nil
		}
		sendBans = false
		var all bool
		if plans, all = s.plan(ctx, us, req); all {
			out := make([]store.LimitResult, len(plans))
			for i := range plans {
				out[i] = plans[i].res
			}
			return store.AdmitResult{Limits: out}, nil
		}
	}
	nowArg := strconv.FormatInt(us, 10)
	if s.cluster {
		res, err := s.admitCluster(ctx, nowArg, us, req, plans, sendBans)
		if err != nil {
			s.release(req, plans)
		}
		return res, err
	}
	c := &admitCall{now: nowArg, us: us, req: req, plans: plans, sendBans: sendBans, waiter: waiter{done: make(chan struct{})}}
	s.admits.submit(c)
	if err := c.wait(ctx); err != nil {
		s.release(req, plans)
		return store.AdmitResult{}, fmt.Errorf("redis: admit: %w", err)
	}
	return c.res, nil
}

// AdmitLocal decides req without a round trip when it can: a ban in the
// mirror, or every limit spent from a live lease. Otherwise it changes
// nothing and returns false (Admit then asks Redis). The guard calls it
// first, so a decision made here skips the per-call timeout and breaker.
func (s *Store) AdmitLocal(now time.Time, req *store.AdmitRequest) (store.AdmitResult, bool) {
	if req == nil || !s.local() {
		return store.AdmitResult{}, false
	}
	us := micros(now)
	if b := s.mirror.match(req.Bans, us); b != nil {
		s.observe(us)
		return store.AdmitResult{Ban: b}, true
	}
	out := make([]store.LimitResult, len(req.Limits))
	for i := range req.Limits {
		l := &req.Limits[i]
		ok := l.Validate() == nil && l.Cost > 0 && l.Cost <= l.Burst
		if ok {
			t := intervalMicros(l.Interval)
			out[i], ok = s.leases.spend(l.Key, t, mulSpan(t, int64(l.Burst)), l.Cost, us)
		}
		if !ok {
			for j := range i {
				lj := &req.Limits[j]
				t := intervalMicros(lj.Interval)
				s.leases.unspend(lj.Key, t, mulSpan(t, int64(lj.Burst)), lj.Cost)
			}
			return store.AdmitResult{}, false
		}
	}
	s.observe(us)
	return store.AdmitResult{Limits: out}, true
}

// sentLimits appends to limits (and plans, when c has plans) the limits of
// req that go to Redis: all but those spent from a lease.
func sentLimits(req *store.AdmitRequest, reqPlans []limitPlan, limits []*store.LimitRequest, plans []*limitPlan) ([]*store.LimitRequest, []*limitPlan) {
	for i := range req.Limits {
		if reqPlans != nil {
			if reqPlans[i].local {
				continue
			}
			plans = append(plans, &reqPlans[i])
		}
		limits = append(limits, &req.Limits[i])
	}
	return limits, plans
}

// flushAdmits sends a batch of Admits as one script call.
func (s *Store) flushAdmits(batch []*admitCall) {
	batch = live(batch, func(c *admitCall) *waiter { return &c.waiter })
	if len(batch) == 0 {
		return
	}
	a := admitArgs{keys: []string{s.bansE, s.bansD}}
	limits := make([]*store.LimitRequest, 0, 4)
	var plans []*limitPlan
	for _, c := range batch {
		limits, plans = sentLimits(c.req, c.plans, limits[:0], plans[:0])
		var bans []store.BanKey
		if c.sendBans {
			bans = c.req.Bans
		}
		if c.plans == nil {
			a.add(s, c.now, bans, limits, nil)
		} else {
			a.add(s, c.now, bans, limits, plans)
		}
	}
	res, err := s.run(context.Background(), []call{{sc: admitScript, keys: a.keys, args: a.args(true)}})
	var arr []rueidis.RedisMessage
	if err == nil {
		arr, err = res[0].ToArray()
		if err != nil {
			err = unavailable(errBadReply)
		}
	}
	var sent []limitReply
	for _, c := range batch {
		if err == nil {
			limits, _ = sentLimits(c.req, c.plans, limits[:0], nil)
			sent = slices.Grow(sent[:0], len(limits))[:len(limits)]
			var ban *store.Ban
			var derr error
			ban, arr, derr = decodeAdmit(arr, sent)
			switch {
			case derr != nil:
				c.err = derr
				err = derr // the rest of the reply cannot be trusted
			case ban != nil:
				c.res = store.AdmitResult{Ban: ban}
			default:
				out := make([]store.LimitResult, len(c.req.Limits))
				s.settle(c.us, c.req, c.plans, sent, out)
				c.res = store.AdmitResult{Limits: out}
			}
		} else {
			c.err = err
		}
		close(c.done)
	}
}

// admitCluster sends one script per slot in one pipelined round trip; a
// matched ban then refunds limits charged in other slots. With plans (the
// ban mirror current), bans were judged here and only the limits not spent
// from a lease are sent.
func (s *Store) admitCluster(ctx context.Context, nowArg string, us int64, req *store.AdmitRequest, plans []limitPlan, sendBans bool) (store.AdmitResult, error) {
	// With bans, group 0 is the bans' slot; limits in that slot join it.
	groups := make([]slotGroup, 0, 2)
	if sendBans {
		groups = append(groups, slotGroup{slot: s.bansSlot})
	}
	for i := range req.Limits {
		if plans != nil && plans[i].local {
			continue
		}
		groups = addToSlot(groups, s.slot(s.limitKey(req.Limits[i].Key)), i)
	}
	calls := make([]call, len(groups))
	for gi, g := range groups {
		var a admitArgs
		var bans []store.BanKey
		banKeys := sendBans && gi == 0
		if banKeys {
			a.keys = append(a.keys, s.bansE, s.bansD)
			bans = req.Bans
		}
		limits := make([]*store.LimitRequest, len(g.idx))
		var gp []*limitPlan
		for j, i := range g.idx {
			limits[j] = &req.Limits[i]
			if plans != nil {
				gp = append(gp, &plans[i])
			}
		}
		a.add(s, nowArg, bans, limits, gp)
		calls[gi] = call{sc: admitScript, keys: a.keys, args: a.args(banKeys)}
	}
	res, err := s.run(ctx, calls)
	if err != nil {
		return store.AdmitResult{}, fmt.Errorf("redis: admit: %w", err)
	}
	replies := make([]limitReply, len(req.Limits)) // by limit index
	var ban *store.Ban
	var charged []int // limits admitted in groups without the ban
	part := make([]limitReply, 0, len(req.Limits))
	for gi, g := range groups {
		arr, err := res[gi].ToArray()
		if err != nil {
			return store.AdmitResult{}, fmt.Errorf("redis: admit: %w", unavailable(errBadReply))
		}
		part = part[:len(g.idx)]
		b, _, err := decodeAdmit(arr, part)
		if err != nil {
			return store.AdmitResult{}, fmt.Errorf("redis: admit: %w", err)
		}
		if b != nil {
			ban = b
			continue
		}
		for j, i := range g.idx {
			replies[i] = part[j]
			if part[j].allowed && req.Limits[i].Cost > 0 {
				charged = append(charged, i)
			}
		}
	}
	if ban == nil {
		sent := replies[:0]
		for i, r := range replies {
			if plans == nil || !plans[i].local {
				sent = append(sent, r)
			}
		}
		out := store.AdmitResult{Limits: make([]store.LimitResult, len(req.Limits))}
		s.settle(us, req, plans, sent, out.Limits)
		return out, nil
	}
	// A ban matched, but limits in other slots were charged in the same
	// round trip: take those charges back. (Only without plans: with them
	// no ban is sent, so none matches here.)
	if len(charged) > 0 {
		if err := s.refund(ctx, nowArg, req.Limits, charged); err != nil {
			s.log.WarnContext(ctx, "redis store: refund of limits charged beside a ban failed", "err", err)
		}
	}
	return store.AdmitResult{Ban: ban}, nil
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
