package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/warden-gw/warden/internal/store"
)

var _ store.Detections = (*Store)(nil)

// observeScript adds observations to windowed sets (sorted sets, member ->
// time in µs) and returns per observation the set's size after it. Each set
// is trimmed to the window before the observation's time and capped at
// limit+1 members, the oldest dropped; a member seen again keeps the later
// time (ZADD GT: calls from gateways whose clocks are a little apart never
// shorten a member's life). A key expires a minute past its longest window
// on the server's clock, which only collects garbage.
// A tally (Observation.Tally; keep 0) is a hash, bucket number -> events,
// of at most 16 live buckets (store.Tally's rule: the latest bucket and the
// 15 before it; older ones are deleted, a late event older than them is
// not counted); its member is the event's bucket number, drawn by the
// caller.
// KEYS: the sets. ARGV: per observation: key index, member, time, window,
// limit+1 (0: a tally).
var observeScript = newScript("observe", `
local out, px = {}, {}
for i = 1, #ARGV / 5 do
  local j = 5 * (i - 1)
  local ki = tonumber(ARGV[j + 1])
  local key = KEYS[ki]
  local at, win, keep = tonumber(ARGV[j + 3]), tonumber(ARGV[j + 4]), tonumber(ARGV[j + 5])
  local n = 0
  if keep == 0 then
    local b = tonumber(ARGV[j + 2])
    local all = redis.call('HGETALL', key)
    local top = b
    for k = 1, #all, 2 do top = math.max(top, tonumber(all[k])) end
    for k = 1, #all, 2 do
      if tonumber(all[k]) <= top - 16 then redis.call('HDEL', key, all[k]) else n = n + tonumber(all[k + 1]) end
    end
    if b > top - 16 then
      redis.call('HINCRBY', key, ARGV[j + 2], 1)
      n = n + 1
    end
  else
    redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. string.format('%d', at - win))
    redis.call('ZADD', key, 'GT', ARGV[j + 3], ARGV[j + 2])
    n = redis.call('ZCARD', key)
    if n > keep then
      redis.call('ZREMRANGEBYRANK', key, 0, n - keep - 1)
      n = keep
    end
  end
  out[i] = n
  if (px[ki] or 0) < win then px[ki] = win end
end
for ki, win in pairs(px) do
  redis.call('PEXPIRE', KEYS[ki], string.format('%d', math.ceil(win / 1000) + 60000))
end
return out
`)

// offendScript records an offence unless the latest ban still holds. The
// history (a hash: n bans, until, forget) is judged by the callers' now and
// forgotten at forget, the latest ban's end plus the longest duration.
// KEYS: the history. ARGV: now, then the durations (µs).
// Returns: new (0|1), n, until.
var offendScript = newScript("offend", `
local now = tonumber(ARGV[1])
local m = redis.call('HMGET', KEYS[1], 'n', 'u', 'f')
local n, u, f = tonumber(m[1] or 0), tonumber(m[2] or 0), tonumber(m[3] or 0)
if f <= now then n, u = 0, 0 end
if n > 0 and now < u then return {0, n, u} end
local longest = 0
for i = 2, #ARGV do longest = math.max(longest, tonumber(ARGV[i])) end
local d = tonumber(ARGV[1 + math.min(n + 1, #ARGV - 1)])
n, u = n + 1, now + d
f = u + longest
redis.call('HSET', KEYS[1], 'n', n, 'u', string.format('%d', u), 'f', string.format('%d', f))
redis.call('PEXPIRE', KEYS[1], string.format('%d', math.ceil((f - now) / 1000) + 60000))
return {1, n, u}
`)

// liftOffenceScript ends the hold of a history whose ban was removed
// (warden ban rm), keeping its count. KEYS: the history.
var liftOffenceScript = newScript("liftoffence", `
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'u', '0') end
return 0
`)

// obsKey is a windowed set's key, its own hash tag.
func (s *Store) obsKey(key string) string { return s.prefix + "{d:" + key + "}" }

// Observe adds each observation to its set, in one script call per
// cluster slot (one in all on a standalone server), sent in one round
// trip. See store.Detections.
func (s *Store) Observe(ctx context.Context, obs []store.Observation) ([]int, error) {
	for i := range obs {
		if err := obs[i].Validate(); err != nil {
			return nil, fmt.Errorf("redis: observe: observation %d: %w", i, err)
		}
	}
	out := make([]int, len(obs))
	if len(obs) == 0 {
		return out, nil
	}
	var groups []slotGroup
	keys := make([]string, len(obs))
	for i := range obs {
		keys[i] = s.obsKey(obs[i].Key)
		groups = addToSlot(groups, s.slot(keys[i]), i)
		s.observe(micros(obs[i].At))
	}
	calls := make([]call, len(groups))
	for gi, g := range groups {
		c := call{sc: observeScript, args: make([]string, 0, 5*len(g.idx))}
		index := map[string]int{}
		for _, i := range g.idx {
			o := &obs[i]
			ki, ok := index[keys[i]]
			if !ok {
				c.keys = append(c.keys, keys[i])
				ki = len(c.keys)
				index[keys[i]] = ki
			}
			win := min((int64(o.Window)+999)/1000, maxSpan)
			member, keep := strconv.FormatUint(o.Member, 10), strconv.Itoa(o.Limit+1)
			if o.Tally {
				member, keep = strconv.FormatInt(store.TallyBucket(o.At.UnixNano(), store.TallyWidth(o.Window)), 10), "0"
			}
			c.args = append(c.args, strconv.Itoa(ki), member,
				strconv.FormatInt(micros(o.At), 10), strconv.FormatInt(win, 10), keep)
		}
		calls[gi] = c
	}
	res, err := s.run(ctx, calls)
	if err != nil {
		return nil, fmt.Errorf("redis: observe: %w", err)
	}
	for gi, g := range groups {
		arr, err := res[gi].AsIntSlice()
		if err != nil || len(arr) != len(g.idx) {
			return nil, fmt.Errorf("redis: observe: %w", unavailable(errBadReply))
		}
		for j, i := range g.idx {
			out[i] = int(arr[j])
		}
	}
	return out, nil
}

// offenceKey is a facet value's ban history, its own hash tag.
func (s *Store) offenceKey(k store.BanKey) string { return s.prefix + "{o:" + banField(k) + "}" }

// Offend records an offence of k at now; see store.Detections.
func (s *Store) Offend(ctx context.Context, now time.Time, k store.BanKey, durations []time.Duration) (store.Offence, error) {
	if err := store.ValidateDurations(durations); err != nil {
		return store.Offence{}, fmt.Errorf("redis: offend on facet %s: %w", k.Facet, err)
	}
	us := micros(now)
	s.observe(us)
	args := make([]string, 0, 1+len(durations))
	args = append(args, strconv.FormatInt(us, 10))
	for _, d := range durations {
		args = append(args, strconv.FormatInt(min((int64(d)+999)/1000, maxSpan), 10))
	}
	res, err := s.run(ctx, []call{{sc: offendScript, keys: []string{s.offenceKey(k)}, args: args}})
	if err != nil {
		return store.Offence{}, fmt.Errorf("redis: offend on facet %s: %w", k.Facet, err)
	}
	arr, err := res[0].AsIntSlice()
	if err != nil || len(arr) != 3 {
		return store.Offence{}, fmt.Errorf("redis: offend on facet %s: %w", k.Facet, unavailable(errBadReply))
	}
	return store.Offence{New: arr[0] == 1, N: int(arr[1]), Until: time.UnixMicro(arr[2]).In(now.Location())}, nil
}

// Observe waits for the connection like every other call.
func (p *pending) Observe(ctx context.Context, obs []store.Observation) ([]int, error) {
	s, err := p.store()
	if err != nil {
		return nil, err
	}
	return s.Observe(ctx, obs)
}

// Offend waits for the connection like every other call.
func (p *pending) Offend(ctx context.Context, now time.Time, k store.BanKey, durations []time.Duration) (store.Offence, error) {
	s, err := p.store()
	if err != nil {
		return store.Offence{}, err
	}
	return s.Offend(ctx, now, k, durations)
}
