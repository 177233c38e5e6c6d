package redis

import (
	"crypto/sha1"
	"encoding/hex"
)

// script is a Lua script sent by EVALSHA, with EVAL as the fallback when the
// server does not know it yet (after a restart or a failover).
type script struct {
	name string
	src  string
	sha  string
}

func newScript(name, src string) *script {
	h := sha1.Sum([]byte(src))
	return &script{name: name, src: src, sha: hex.EncodeToString(h[:])}
}

// Times are Unix microseconds in every script: Lua numbers are doubles,
// exact to 2^53, which microseconds since 1970 stay well under (and
// nanoseconds do not). Keys' Redis expiry is relative (PX), so it does not
// depend on the server's clock agreeing with the callers'; it only collects
// garbage, a small slack after the logical expiry the scripts judge by now.

// admitScript decides one or more Admit calls (a batch of concurrent
// requests, or one request's part in one cluster slot), each as: its bans
// in order, then, when none matched, each limit (GCRA). It reads every
// call's bans with one ZMSCORE and every limit's TAT with one MGET, then
// decides the calls one after the other on those values (a key that two
// calls share carries the first call's charge into the second), writing
// each charged TAT with one SET: redis.call, not the commands themselves,
// is most of a small script's cost (bench/results/redis-store.txt). Times
// are written with %d (exact to 2^53 on a 64-bit server, and half the cost
// of %.0f).
// ARGV: has ban keys (0|1), number of calls, number of limit shapes, then
// per shape: interval, burst window (interval·burst, capped), cost, burst;
// then per call: now, nbans, the ban fields, nlimits, then per limit its
// shape (from 1).
// KEYS: [bans:e, bans:d] when ARGV[1] is 1, then every call's limit keys.
// Returns per call: ban index (0: none), ban JSON (” when none), then per
// limit (none when banned): allowed, remaining, retry (-1: never), reset.
var admitScript = newScript("admit", `
local k0 = 1
if ARGV[1] == '1' then k0 = 3 end
local ncalls = tonumber(ARGV[2])
local shapes = {}
for i = 1, tonumber(ARGV[3]) do
  local j = 4 * i
  shapes[i] = {tonumber(ARGV[j]), tonumber(ARGV[j + 1]), tonumber(ARGV[j + 2]), tonumber(ARGV[j + 3])}
end
local first = 4 + 4 * #shapes
local fields = {}
local a = first
for op = 1, ncalls do
  local nb = tonumber(ARGV[a + 1])
  for i = 1, nb do fields[#fields + 1] = ARGV[a + 1 + i] end
  a = a + 3 + nb + tonumber(ARGV[a + 2 + nb])
end
-- In parts of at most 1000: unpack is bounded by Lua's C stack.
local scores = {}
for from = 1, #fields, 1000 do
  local to = math.min(from + 999, #fields)
  local v = redis.call('ZMSCORE', KEYS[1], unpack(fields, from, to))
  for i = from, to do scores[i] = v[i - from + 1] end
end
local tats = {}
for from = k0, #KEYS, 1000 do
  local to = math.min(from + 999, #KEYS)
  local v = redis.call('MGET', unpack(KEYS, from, to))
  for i = from, to do tats[KEYS[i]] = tonumber(v[i - from + 1] or 0) end
end
-- Expiry only collects garbage: PXAT on the server's clock, a minute past
-- the logical end (SET's PX costs Redis 7 a rewrite to PXAT per call).
local time = redis.call('TIME')
local ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local out = {}
local f, k = 0, k0
a = first
for op = 1, ncalls do
  local now = tonumber(ARGV[a])
  local nb = tonumber(ARGV[a + 1])
  a = a + 2
  local banned = 0
  for i = 1, nb do
    local u = scores[f + i]
    if u and tonumber(u) > now then banned = i; break end
  end
  f = f + nb
  local nl = tonumber(ARGV[a + nb])
  if banned > 0 then
    out[#out + 1] = banned
    out[#out + 1] = redis.call('HGET', KEYS[2], ARGV[a + banned - 1]) or ''
    a = a + nb + 1 + nl
    k = k + nl
  else
    out[#out + 1] = 0
    out[#out + 1] = ''
    a = a + nb + 1
    for i = 1, nl do
      local key = KEYS[k]
      local sh = shapes[tonumber(ARGV[a])]
      local t, bw, c, b = sh[1], sh[2], sh[3], sh[4]
      local tat = tats[key]
      if tat < now then tat = now end
      local allowed, retry, rtat = 0, 0, tat
      if c > b then
        retry = -1
      elseif c == 0 then
        local at = tat + t - bw
        if now >= at then allowed = 1 else retry = at - now end
      else
        local nt = tat + math.min(c * t, bw)
        local at = nt - bw
        if now >= at then
          allowed, rtat = 1, nt
          tats[key] = nt
          redis.call('SET', key, string.format('%d', nt), 'PXAT', string.format('%d', ms + math.ceil((nt - now) / 1000) + 60000))
        else
          retry = at - now
        end
      end
      out[#out + 1] = allowed
      out[#out + 1] = math.floor(math.max(0, now + bw - rtat) / t)
      out[#out + 1] = retry
      out[#out + 1] = rtat - now
      a, k = a + 1, k + 1
    end
  end
end
return out
`)

// refundSrc takes back charges of limits admitted in a call that a ban
// refused (Redis Cluster only: there the ban and the limits may live on
// different nodes). KEYS: limit keys. ARGV: now, then per key the charge.
var refundScript = newScript("refund", `
local now = tonumber(ARGV[1])
for i = 1, #KEYS do
  local tat = tonumber(redis.call('GET', KEYS[i]) or 0)
  if tat > 0 then
    local nt = tat - tonumber(ARGV[i + 1])
    if nt <= now then
      redis.call('DEL', KEYS[i])
    else
      redis.call('SET', KEYS[i], string.format('%.0f', nt), 'KEEPTTL')
    end
  end
end
return 1
`)

// spendSrc offers subjects to budgets.
// KEYS: per budget its exact set and its HyperLogLog.
// ARGV: exact max, then per budget: limit, expiry (ms), n, n subjects.
// Returns per budget: count, flags ('1' allowed, '0' refused, in order).
var spendScript = newScript("spend", `
local function each(cmd, key, list)
  for from = 1, #list, 1000 do
    redis.call(cmd, key, unpack(list, from, math.min(from + 999, #list)))
  end
end
local exactMax = tonumber(ARGV[1])
local a = 2
local out = {}
for j = 1, #KEYS / 2 do
  local kx, kh = KEYS[2 * j - 1], KEYS[2 * j]
  local limit = tonumber(ARGV[a])
  local px = ARGV[a + 1]
  local n = tonumber(ARGV[a + 2])
  a = a + 3
  local card = redis.call('SCARD', kx)
  local sketch = redis.call('EXISTS', kh) == 1
  local est = 0
  if sketch then est = redis.call('PFCOUNT', kh) end
  local member = {}
  if n > 0 and card > 0 then member = redis.call('SMISMEMBER', kx, unpack(ARGV, a, a + n - 1)) end
  local inx, newx, newh = {}, {}, {}
  local added = 0
  local flags = {}
  for i = 0, n - 1 do
    local s = ARGV[a + i]
    local ok = false
    if member[i + 1] == 1 or inx[s] then
      ok = true
    elseif not sketch and card < limit and card < exactMax then
      newx[#newx + 1] = s
      inx[s], card, ok = true, card + 1, true
    else
      if not sketch and card < limit then
        -- The exact set is full: count on in a sketch seeded with it.
        each('SADD', kx, newx)
        newx = {}
        redis.call('PFADD', kh)
        each('PFADD', kh, redis.call('SMEMBERS', kx))
        sketch, est = true, card
      end
      if sketch and est + added < limit then
        -- Not provably counted: counted as new. PFADD of a subject the
        -- sketch holds does not raise the estimate, so re-views are free
        -- while there is room.
        newh[#newh + 1] = s
        added, ok = added + 1, true
      end
    end
    flags[i + 1] = ok and '1' or '0'
  end
  a = a + n
  each('SADD', kx, newx)
  each('PFADD', kh, newh)
  if added > 0 then est = math.max(est, redis.call('PFCOUNT', kh)) end
  if #newx > 0 or added > 0 then
    redis.call('PEXPIRE', kx, px)
    if sketch then redis.call('PEXPIRE', kh, px) end
  end
  local count = card
  if sketch then count = math.max(card, est) end
  out[#out + 1] = count
  out[#out + 1] = table.concat(flags)
end
return out
`)

// linkSrc adds ids with a provenance to a link memory of two generations,
// each a hash id -> provenance digit of at most cap ids; see doc.go. An id
// already there keeps the better provenance; past cap a new id is dropped
// and the generation marked full (x0/x1). KEYS: meta hash, generation 0,
// generation 1. ARGV: now, ttl, now+ttl, cap, provenance, then ids.
var linkScript = newScript("link", `
local now, ttl, exp = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local cap, p = tonumber(ARGV[4]), tonumber(ARGV[5])
local m = redis.call('HMGET', KEYS[1], 'c', 'f0', 'e0', 'f1', 'e1', 'x0', 'x1')
local c = tonumber(m[1] or 0)
local f = {tonumber(m[2] or 0), tonumber(m[4] or 0)}
local e = {tonumber(m[3] or 0), tonumber(m[5] or 0)}
local x = {tonumber(m[6] or 0), tonumber(m[7] or 0)}
local o = 1 - c
if e[o + 1] <= now then f[o + 1], e[o + 1], x[o + 1] = 0, 0, 0; redis.call('DEL', KEYS[o + 2]) end
if e[c + 1] <= now then f[c + 1], e[c + 1], x[c + 1] = 0, 0, 0; redis.call('DEL', KEYS[c + 2]) end
if f[c + 1] ~= 0 and now - f[c + 1] >= ttl and f[o + 1] == 0 then c, o = o, c end
if f[c + 1] == 0 then f[c + 1] = now end
if exp > e[c + 1] then e[c + 1] = exp end
local g = KEYS[c + 2]
local ids = {}
for i = 6, #ARGV do ids[#ids + 1] = ARGV[i] end
local function hmget(key)
  local out = {}
  for from = 1, #ids, 1000 do
    local part = redis.call('HMGET', key, unpack(ids, from, math.min(from + 999, #ids)))
    for j = 1, #part do out[from + j - 1] = part[j] end
  end
  return out
end
local have = hmget(g)
local n = redis.call('HLEN', g)
local set, seen = {}, {}
for i, id in ipairs(ids) do
  if not seen[id] then
    seen[id] = true
    local old = have[i]
    if old then
      if tonumber(old) < p then set[#set + 1] = id; set[#set + 1] = p end
    elseif n < cap then
      set[#set + 1] = id; set[#set + 1] = p; n = n + 1
    else
      x[c + 1] = 1
    end
  end
end
for from = 1, #set, 1000 do
  redis.call('HSET', g, unpack(set, from, math.min(from + 999, #set)))
end
local function s(v) return string.format('%.0f', v) end
redis.call('HSET', KEYS[1], 'c', c, 'f0', s(f[1]), 'e0', s(e[1]), 'f1', s(f[2]), 'e1', s(e[2]), 'x0', x[1], 'x1', x[2])
local px = s(math.ceil((math.max(e[1], e[2]) - now) / 1000) + 60000)
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], px) end
return 1
`)

// linkedSrc reports per id its best provenance in the live generations, as
// a string of digits (0: unreferenced). KEYS: meta, generation 0,
// generation 1. ARGV: now, then ids.
var linkedScript = newScript("linked", `
local now = tonumber(ARGV[1])
local m = redis.call('HMGET', KEYS[1], 'e0', 'e1')
local ids = {}
for i = 2, #ARGV do ids[#ids + 1] = ARGV[i] end
local best = {}
for i = 1, #ids do best[i] = 0 end
for g = 1, 2 do
  if tonumber(m[g] or 0) > now then
    local have = {}
    for from = 1, #ids, 1000 do
      local part = redis.call('HMGET', KEYS[g + 1], unpack(ids, from, math.min(from + 999, #ids)))
      for j = 1, #part do have[from + j - 1] = part[j] end
    end
    for i = 1, #ids do
      local v = tonumber(have[i] or 0)
      if v > best[i] then best[i] = v end
    end
  end
end
return table.concat(best)
`)

// putBanSrc: KEYS bans:e, bans:d. ARGV field, until, JSON.
var putBanScript = newScript("putban", `
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
`)

// removeBanSrc: KEYS bans:e, bans:d. ARGV field, latest now seen (0: none).
// Returns 1 when an unexpired ban was removed.
var removeBanScript = newScript("removeban", `
local u = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
local now = tonumber(ARGV[2])
if u and (now == 0 or tonumber(u) > now) then return 1 end
return 0
`)

// listBansSrc drops bans expired at now, then returns the rest.
// KEYS bans:e, bans:d. ARGV now.
var listBansScript = newScript("listbans", `
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1000)
for from = 1, #gone, 500 do
  local part = {unpack(gone, from, math.min(from + 499, #gone))}
  redis.call('ZREM', KEYS[1], unpack(part))
  redis.call('HDEL', KEYS[2], unpack(part))
end
return redis.call('HVALS', KEYS[2])
`)

var allScripts = []*script{admitScript, refundScript, spendScript, linkScript, linkedScript, putBanScript, removeBanScript, listBansScript, observeScript, offendScript}
