// Package redis is warden's shared state store for a fleet of gateways:
// every store.Store operation as Lua scripts on Redis (standalone or Redis
// Cluster), with the same semantics as the memory store (see
// internal/store/memory's package doc), checked by the same storetest suite.
//
// It must never read-modify-write across the network: each decision is one
// script call, pipelined with other callers' calls on shared connections
// (rueidis auto-pipelining; bench/results/redis-client.txt says why rueidis).
// It must never log or put into an error a key, a subject or a ban value:
// keys hold identities (IPs, accounts), which are personal data. It must
// never hold the Redis password in its Config (only where to read it).
//
// New connects or fails. Connect, which warden serve uses, tells a Redis
// that is not there yet (refused, unreachable, timed out) from one that
// refuses warden (password, certificate): for the first it returns a store
// that fails every call as unavailable, so the guard's failure mode applies,
// while it connects in the background; the second is an error at start.
//
// # Clock
//
// Scripts decide by the now the caller passes (Unix microseconds), never by
// the server's TIME: the conformance suite and replays need time passed in,
// and it is the same clock the memory store uses. A fleet must therefore run
// NTP: a gateway whose clock runs δ ahead of the others can admit about δ/T
// more requests on a limit of interval T (its idea of "the burst has
// refilled" comes δ early), and budgets roll to the next window up to δ
// early on it. Times are kept in microseconds (exact in Lua's doubles up to
// 2^53), so decisions have microsecond resolution; intervals round up to a
// whole microsecond. Redis key expiry (PX, relative) only collects garbage,
// a minute after the logical end the scripts judge by now.
//
// # Scripts and round trips
//
// Scripts are loaded at New on every node (SCRIPT LOAD) and called by
// EVALSHA; a NOSCRIPT reply (a restarted or failed-over server) is retried
// once with EVAL, which caches it again. Failed calls are never retried
// (rueidis retries are off): a retried script could charge twice. Every
// backend failure is wrapped in store.ErrUnavailable; invalid requests are
// not.
//
// # Batching (standalone)
//
// On a standalone server, concurrent Admit calls are sent together as one
// script call (group commit: up to Options.Batches batches in flight, 128
// calls each), and so are Spend calls; the script decides them one after
// the other, each as it would alone, so results are the same as unbatched.
// The goroutine that sends a batch yields once before taking the queue, so
// callers already runnable (a gateway loop's round of decisions, started
// together) join it: in row (f) of warden bench that took batches from
// about 4 Admits to about 9. The admit script reads every call's bans with
// one ZMSCORE and every limit with one MGET, sends each limit as the index
// of its shape (interval, burst, cost: one per rule), and writes a charged
// limit with SET ... PXAT (PX costs Redis 7 a rewrite to PXAT per call):
// Redis's CPU per Admit is mostly Lua and redis.call, not the commands.
// Measured (go test -bench BenchmarkStore/Admit2, 2026-12-06, two limits):
// Redis's CPU per Admit 12.0 -> 9.0-9.7 µs, the client's 7.1 -> 5.4 µs
// (bench/results/redis-f-2026-12-06.txt).
// A caller whose context ends before its batch is sent is left out of it
// (nothing charged) and gets an error wrapping store.ErrUnavailable; once
// sent, a call may be charged even if its caller stopped waiting.
//
// # Leases
//
// Config.Lease (store.redis.lease): while a rate limit's bucket is far from
// empty, a Store takes a few cells at once and spends them on later
// requests without a round trip (lease.go). The admit script grants a
// lease only when the bucket keeps at least half its burst after it, and
// only one per key per call; a lease is at most lease.tokens cells
// (default 256) and a sixteenth of the burst (bursts under 32 are never
// leased); it is sized by the key's traffic (twice the requests since the
// previous lease, four times when that one ran out), lives lease.ttl
// (default 5s), and what is left when it lapses is given back on the
// key's next call. One call at a time asks a key's lease; requests that
// find it in flight wait for it (at most three times) rather than each
// asking Redis. Cost-0 looks always go to Redis.
//
// What it changes, with the bound: Redis charges a lease's cells when it
// is taken, the gateway spends them later. The number of cells is the
// same; only when they are charged moves. A gateway can therefore admit a
// request Redis would have refused at that instant only by spending cells
// it holds, so over any window a key admits at most lease×gateways more
// than per-request calls would (TestLeaseBound: a harvester alternating
// between two gateways at twice the rate is admitted the exact count), and
// a gateway holding cells leaves the others that many fewer (given back at
// the lease's end). Near the limit (under half the burst) there are no
// leases, every request is one exact call. With each call a gateway sends
// the TAT its own requests made, charged when they came, and the script
// raises the key to it: the exact TAT is at least that (other gateways
// only add to it), so one gateway alone answers exactly what per-request
// calls would, Remaining and RetryAfter included (storetest's LimitModel,
// 4,000 requests draining, refilling and peeking one key). Results of
// requests decided from a lease are computed from that gateway's view
// (other gateways' requests since its last call are not in Remaining).
//
// Bans, to decide a request without Redis, come from a mirror: each Store
// holds every ban (read with HVALS of P{bans}:d when it subscribes and
// every 30 s), and PutBan and RemoveBan publish the ban's field on
// P{bans}:n from the script that writes (so the notice follows the write),
// on which every Store reads that one ban again (HMGET): a detector
// banning many values does not make each gateway reload them all. The
// mirror is used only while subscribed and loaded since the latest notice;
// otherwise every Admit goes to Redis with its bans, as without leases. A
// ban put through one gateway applies on the others when the notice
// reaches them (one pub/sub message: on loopback well under a
// millisecond; the tests wait at most a second for it), not at the
// instant of the write; a request racing it is decided as if it had come
// first. The gateway that put it is not current until it has read it, so
// it applies its own ban at once. A fleet must run one version: a gateway
// older than the mirror does not publish, and its bans reach the mirrors
// only with the 30 s reload.
//
// When Redis goes away the connection's loss ends the subscription (0.14
// ms after a kill, measured), the mirror stops being current and every
// Admit goes to Redis, so the guard's failure mode applies at once. A Redis
// that hangs with its connections open (DEBUG SLEEP, a stalled host) keeps
// the mirror current: the gateway goes on spending the leases it holds, at
// most a lease per key for at most lease.ttl, then its calls time out as
// before. Those cells were granted while Redis answered, so this admits
// nothing a limit did not allow.
//
// Lease state is a map per Store, one entry per key seen in the last ten
// TTLs (swept by age); spending is a compare-and-swap, so a hot key (every
// request's per-ip limit behind a load balancer) does not serialize the
// gateway's cores. The guard calls AdmitLocal first: a decision made there
// skips its per-call timeout and breaker bookkeeping. lease.tokens 1 turns
// all of this off.
//
// Measured (go test -bench BenchmarkAdmitRowF, row (f)'s keys: one shared
// ip limit and 1,000 accounts', 1,000,000/s each): per Admit, client CPU
// 6.2 -> 0.9 µs and Redis's 9.4 -> 0.5 µs (the memory store: 0.26 µs).
//
// # Key schema
//
// P is Config.KeyPrefix (default "warden:", without braces). The text in
// braces is the Redis Cluster hash tag: the keys of one facet share a slot.
//
//	P{l:<limit key>}                  string: GCRA theoretical arrival time (µs)
//	P{s:<budget key>}:<start ns>:x   set: the window's first ExactMax subjects
//	P{s:<budget key>}:<start ns>:h   HyperLogLog: the count past ExactMax
//	P{k:<link key>}:m                hash: c (current generation 0|1), f0/e0, f1/e1
//	                                 (first insertion and expiry of each, µs),
//	                                 x0/x1 (1: the generation is full)
//	P{k:<link key>}:0, :1            hashes: the generations' ids (decimal) ->
//	                                 best provenance (1 list, 2 search, 3 social)
//	                                 + 4 x the answer tag that showed it
//	P{k:<link key>}:a                hash: fan-out cap, answer tag -> "expires,id,..."
//	                                 (µs; at most the cap's limit ids, at most
//	                                 store.MaxFanoutAnswers tags), h -> held until
//	P{bans}:e                        sorted set: facet NUL value -> until (µs;
//	                                 2^53-1 when none)
//	P{bans}:d                        hash: facet NUL value -> the ban as JSON
//	P{bans}:n                        pub/sub channel: a ban changed (mirrors reload)
//	P{d:<observation key>}           sorted set: the detector's windowed set,
//	                                 member -> time (µs), at most limit+1
//	P{o:<facet> NUL <value>}         hash: the detector's ban history: n,
//	                                 u (latest ban's end), f (forget at, µs)
//
// A limit key is its own slot; a budget's two keys and a link filter's four
// share one; all bans share one (ListBans reads them in one call; every
// Admit with ban keys touches that slot, a hot spot in a large cluster).
//
// Standalone (one address), an Admit is one script over the ban keys and
// every limit: atomic, the limits untouched when a ban matches. In a cluster
// (several addresses) an Admit or Spend is split into one script per slot,
// sent in one pipelined round trip (rueidis sends each node its part at
// once); each limit and budget is still decided atomically. A ban then
// cannot stop limits in other slots from being charged in that round trip:
// when one matches, a second call refunds exactly what they were charged
// (TAT minus cost·interval), so the result is as if they had not been
// evaluated, except for requests racing in that instant.
//
// # Rate limits, budgets, link filters, bans
//
// GCRA as in the memory store, on the stored TAT. Budgets: per tumbling
// window a set of subjects (decimal strings) up to Options.ExactMax
// (default 1024), then Redis's HyperLogLog (PFADD/PFCOUNT, 0.81% standard
// error) seeded with the set, both expiring at the window's end. A refused
// subject is written nowhere, so it never becomes "seen". A gateway whose
// clock lags into the previous window uses that window's keys while they
// live (the memory store judges it in the newer window instead).
//
// Link memories: two generations rotated like the memory store's, so no id
// is forgotten within its ttl and one is kept at most about 2·ttl; each an
// exact hash of at most Options.LinkCapacity ids (default 4096) to their
// best provenance, no false positives. Past the capacity new ids are not
// remembered (the identity is saturated; its later look-ups are
// unreferenced). Memory: Redis keeps a hash of up to 128 fields compactly
// (listpack, about 12 bytes a field), past that about 70-90 bytes a field:
// a saturated key takes about 0.7 MB at the defaults, until its ttl.
// The fan-out cap (store.Fanout) is counted by the Linked script itself, in
// the key's answers hash: one field per answer opened from within the
// cap's window, at most 64, expiring with the longer of window and hold.
//
// Bans: PutBan replaces; ListBans drops up to 1000 bans expired at its now
// and returns the rest; RemoveBan judges "unexpired" by the latest now this
// process passed (a per-process clock, as the memory store's is).
package redis
