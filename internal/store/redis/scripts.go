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
//
// Leases (doc.go): a shape with a lease size L > 0 charges cost+L cells
// instead of cost when the bucket keeps at least half its burst after
// that, once per key per call; the reply's fifth value per limit is the
// cells leased (0: charged exactly). Refunds, before any call is decided,
// give back the unspent cells of lapsed leases (µs of TAT) and raise the
// key's TAT to a floor: the TAT the gateway's own requests made, charged
// when they came rather than when their lease was taken.
// ARGV: has ban keys (0|1), number of calls, number of limit shapes,
// number of refunds, then per shape: interval, burst window
// (interval·burst, capped), cost, burst, lease size; then per refund: the
// index of its key in KEYS, µs given back, floor µs; then per call: now, nbans, the ban fields,
// nlimits, then per limit its shape (from 1).
// KEYS: [bans:e, bans:d] when ARGV[1] is 1, then every call's limit keys.
// Returns per call: ban index (0: none), ban JSON (empty when none), then per
// limit (none when banned): allowed, remaining, retry (-1: never), reset,
// leased.
var admitScript = newScript("admit", `
local k0 = 1
if ARGV[1] == '1' then k0 = 3 end
local ncalls = tonumber(ARGV[2])
local nref = tonumber(ARGV[4])
local shapes = {}
for i = 1, tonumber(ARGV[3]) do
  local j = 5 * i
  shapes[i] = {tonumber(ARGV[j]), tonumber(ARGV[j + 1]), tonumber(ARGV[j + 2]), tonumber(ARGV[j + 3]), tonumber(ARGV[j + 4])}
end
local rf = 5 + 5 * #shapes
local first = rf + 3 * nref
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
local refunded = {}
for i = 0, nref - 1 do
  local j = rf + 3 * i
  local key = KEYS[tonumber(ARGV[j])]
  local tat = tats[key]
  if tat > 0 then
    local nt = math.max(tat - tonumber(ARGV[j + 1]), tonumber(ARGV[j + 2]))
    if nt ~= tat then tats[key], refunded[key] = nt, true end
  end
end
-- Expiry only collects garbage: PXAT on the server's clock, a minute past
-- the logical end (SET's PX costs Redis 7 a rewrite to PXAT per call).
local time = redis.call('TIME')
local ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local out = {}
local leased = {}
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
      local t, bw, c, b, l = sh[1], sh[2], sh[3], sh[4], sh[5]
      local tat = tats[key]
      if tat < now then tat = now end
      local allowed, retry, rtat, got = 0, 0, tat, 0
      if c > b then
        retry = -1
      elseif c == 0 then
        local at = tat + t - bw
        if now >= at then allowed = 1 else retry = at - now end
      else
        local nt = tat + math.min(c * t, bw)
        if l > 0 and not leased[key] then
          local lt = tat + math.min((c + l) * t, bw)
          if 2 * (now + bw - lt) >= bw then nt, got = lt, l; leased[key] = true end
        end
        local at = nt - bw
        if now >= at then
          allowed, rtat = 1, nt
          tats[key] = nt
          refunded[key] = nil
          redis.call('SET', key, string.format('%d', nt), 'PXAT', string.format('%d', ms + math.ceil((nt - now) / 1000) + 60000))
        else
          retry, got = at - now, 0
        end
      end
      out[#out + 1] = allowed
      out[#out + 1] = math.floor(math.max(0, now + bw - rtat) / t)
      out[#out + 1] = retry
      out[#out + 1] = rtat - now
      out[#out + 1] = got
      a, k = a + 1, k + 1
    end
  end
end
for key in pairs(refunded) do
  redis.call('SET', key, string.format('%d', tats[key]), 'KEEPTTL')
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
// each a hash id -> provenance + 4 * answer tag of at most cap ids; see
// doc.go. An id already there keeps the better provenance (and the latest
// answer of it, a tag of 0 never replacing one); past cap a new id is
// dropped and the generation marked full (x0/x1). KEYS: meta hash,
// generation 0, generation 1. ARGV: now, ttl, now+ttl, cap, provenance,
// answer tag, then ids.
var linkScript = newScript("link", `
local now, ttl, exp = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local cap, p, tag = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local val = string.format('%.0f', p + 4 * tag)
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
for i = 7, #ARGV do ids[#ids + 1] = ARGV[i] end
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
      local v = tonumber(old)
      local op, ot = v % 4, math.floor(v / 4)
      if op < p or op == p and tag ~= 0 and ot ~= tag then set[#set + 1] = id; set[#set + 1] = val end
    elseif n < cap then
      set[#set + 1] = id; set[#set + 1] = val; n = n + 1
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
// a string of digits (0: unreferenced), plus 4 when the fan-out cap caps
// it. With a limit, each id whose provenance bit is in the mask and whose
// answer tag is known counts as opened from that answer in the answers
// hash (KEYS[4]: field tag -> "expires,id,id...", at most maxAnswers
// fields, and field h: held until); see store.Fanout. KEYS: meta,
// generation 0, generation 1, answers. ARGV: now, limit (0: no cap),
// window, hold, provenance mask, max answers, n, then n ids, then
// optionally n subjects (what each open counts as; default the id).
var linkedScript = newScript("linked", `
local now, limit, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local hold, mask, maxa = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local nids = tonumber(ARGV[7])
local m = redis.call('HMGET', KEYS[1], 'e0', 'e1', 'c')
local c = tonumber(m[3] or 0)
local ids, subj = {}, {}
for i = 8, 7 + nids do ids[#ids + 1] = ARGV[i] end
for i = 1, nids do subj[i] = ARGV[7 + nids + i] or ids[i] end
local best, tags = {}, {}
for i = 1, #ids do best[i] = 0; tags[i] = 0 end
-- The current generation last: its showing is the later one and wins a tie.
for _, g in ipairs({1 - c, c}) do
  if tonumber(m[g + 1] or 0) > now then
    local have = {}
    for from = 1, #ids, 1000 do
      local part = redis.call('HMGET', KEYS[g + 2], unpack(ids, from, math.min(from + 999, #ids)))
      for j = 1, #part do have[from + j - 1] = part[j] end
    end
    for i = 1, #ids do
      local v = tonumber(have[i] or 0)
      local p = v % 4
      if p > 0 and p >= best[i] then best[i] = p; tags[i] = math.floor(v / 4) end
    end
  end
end
if limit > 0 then
  local held = tonumber(redis.call('HGET', KEYS[4], 'h') or 0)
  local touched = false
  for i = 1, #ids do
    local p = best[i]
    if p > 0 and math.floor(mask / 2 ^ p) % 2 == 1 then
      local capped = false
      if held > now then
        capped = true
      elseif tags[i] ~= 0 then
        local f = string.format('%.0f', tags[i])
        local rec = redis.call('HGET', KEYS[4], f)
        local exp, opened = 0, {}
        if rec then
          for v in string.gmatch(rec, '[^,]+') do
            if exp == 0 then exp = tonumber(v) else opened[#opened + 1] = v end
          end
        end
        if exp <= now then
          opened = {}
          exp = now + window
          local function count()
            return redis.call('HLEN', KEYS[4]) - redis.call('HEXISTS', KEYS[4], 'h')
          end
          if not rec and count() >= maxa then
            -- Room: drop the expired answers, else the one expiring soonest.
            local all = redis.call('HGETALL', KEYS[4])
            local soon, soonf = nil, nil
            for j = 1, #all, 2 do
              if all[j] ~= 'h' then
                local e = tonumber(string.match(all[j + 1], '^[^,]+'))
                if e <= now then redis.call('HDEL', KEYS[4], all[j])
                elseif not soon or e < soon then soon, soonf = e, all[j] end
              end
            end
            if count() >= maxa and soonf then redis.call('HDEL', KEYS[4], soonf) end
          end
        end
        local known = false
        for _, o in ipairs(opened) do if o == subj[i] then known = true end end
        if not known then
          if #opened < limit then
            opened[#opened + 1] = subj[i]
            redis.call('HSET', KEYS[4], f, string.format('%.0f', exp) .. ',' .. table.concat(opened, ','))
            touched = true
          else
            capped = true
            if hold > 0 then
              held = now + hold
              redis.call('HSET', KEYS[4], 'h', string.format('%.0f', held))
              touched = true
            end
          end
        end
      end
      if capped then best[i] = best[i] + 4 end
    end
  end
  if touched then
    local px = math.ceil(math.max(window, hold) / 1000) + 1000
    if redis.call('PTTL', KEYS[4]) < px then redis.call('PEXPIRE', KEYS[4], px) end
  end
end
return table.concat(best)
`)

// putBanSrc: KEYS bans:e, bans:d. ARGV field, until, JSON, the notice
// channel (every Store's ban mirror reads the field's ban again).
var putBanScript = newScript("putban", `
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[1])
return 1
`)

// removeBanSrc: KEYS bans:e, bans:d. ARGV field, latest now seen (0: none),
// the notice channel. Returns 1 when an unexpired ban was removed.
var removeBanScript = newScript("removeban", `
local u = redis.call('ZSCORE', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
if redis.call('HDEL', KEYS[2], ARGV[1]) == 1 then redis.call('PUBLISH', ARGV[3], ARGV[1]) end
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

var allScripts = []*script{admitScript, refundScript, spendScript, linkScript, linkedScript, putBanScript, removeBanScript, listBansScript, observeScript, offendScript, liftOffenceScript}
