// Package memory is warden's embedded state store: every store.Store
// operation held in this process's memory, for a single gateway.
//
// It must never block on I/O, never grow without bound, and never make a
// decision from the wall clock: every operation takes now from its caller,
// and the sweeper judges expiry by the latest now callers passed.
//
// # Layout and bounds
//
// Keys are spread over Options.Shards shards (default 256), each with its own
// mutex, so concurrent requests rarely meet on one lock. Admit and Spend
// lock each key's shard in turn, so each limit and each budget is updated
// atomically on its own, which is all their semantics ask. A bitset of
// banned values' hashes lets Admit skip the lock for values never banned.
// Limit, budget and
// link-filter keys are bounded by Options.MaxKeys and by Options.MaxBytes
// (approximate bytes), split evenly over the shards. When a shard is full,
// an insertion evicts from a random sample of 8 keys of the same kind an
// expired one if sampled, else the one whose loss matters least (the limit
// nearest a full burst, the budget whose window ends first, the filter that
// expires first), taking from other kinds only when that kind has none
// left in the shard (limits first, budgets last), so a flood of new
// rate-limit keys (address rotation) evicts limits, not budgets;
// Stats().Evictions counts unexpired keys dropped. A
// sweeper (every Options.SweepEvery, default 1 minute) removes idle keys:
// limits back at a full burst, budgets whose window ended, filters and bans
// past their expiry. A limit key costs about 40 bytes; see
// bench/results/memory-store.txt for the measured figure.
//
// Keys are not stored: each key string is replaced by its 64-bit keyed hash
// (SipHash-2-4 under a random 128-bit key per Store, Options.HashKey), which
// picks the shard and is the map key. That saves the string's memory and a
// cache miss per look-up. Two keys share state only if their hashes collide:
// with n keys, probability about n²/2⁶⁵ (1e-7 at 2 million keys), and the
// secret key means nobody can aim for a collision. Unlike hash/maphash, the
// hash is the same in the next process given the same key, which is what
// lets a snapshot be restored (package disk keeps the key in the snapshot).
// It costs about 25 ns more per key than maphash did
// (BenchmarkAdmitTwoLimits, 234-315 → 277-317 cpu-ns per two limits).
//
// # On disk
//
// With store.memory.dir, package disk journals every ban change
// (Options.Bans, a BanJournal called before the change takes effect, with
// no shard lock held) and snapshots the rest: ExportShard copies one shard
// under its lock, Import and ImportBans load a snapshot and the ban log
// into a store before it serves, WithBans lets the journal rewrite itself.
//
// # Rate limits (GCRA)
//
// With emission interval T, burst B and a stored theoretical arrival time
// TAT (now when absent or past), a request of cost c is admitted when
// TAT + c·T − B·T <= now, and then TAT becomes TAT + c·T. From an idle key B
// requests of cost 1 pass at once, then one per T.
//   - Remaining is how many cost-1 requests would pass now, after this one:
//     floor(max(0, now + B·T − TAT) / T), TAT as left by this call (never
//     negative, also when a reload lowered B).
//   - RetryAfter (refused) is exactly TAT + c·T − B·T − now: the same request
//     passes at now+RetryAfter.
//   - ResetAfter is TAT − now: when the key is back at a full burst.
//   - Cost 0 peeks: nothing is charged or created; Allowed says whether a
//     request of cost 1 would pass, with its RetryAfter when not.
//   - Cost > B can never pass: refused, not charged, RetryAfter < 0 (never).
//   - Interval <= 0, Burst < 1 or Cost < 0 make the whole call an error.
//
// Admit checks the ban keys in order; the first with an unexpired ban wins
// (Until is exclusive) and no limit is evaluated or charged. Otherwise each
// limit decides and charges on its own.
//
// # Budgets
//
// Windows tumble, aligned to multiples of Window since the Unix epoch. Per
// subject, in order: already counted → allowed, free; new and count < Limit
// → counted, allowed; else refused and not counted, so a refused subject
// stays refused for the rest of the window. A call whose now lies in a
// window older than the budget's (callers' clocks differ a little) is judged
// in the budget's window. The first Options.ExactMax
// (default 1024) subjects of a window are kept exactly (a hash set with
// linear probing, at most 3/4 full: 8 to 21 bytes each). Past that the budget also counts in a HyperLogLog sketch
// (precision 14, 16 KiB, relative standard error 1.04/√16384 ≈ 0.81%, the
// LogLog-Beta estimator of axiomhq/hyperloglog kept up to date on each
// insertion), and Count is its estimate. Whether a subject outside the exact
// set was already counted cannot be known then: while the estimate is below
// Limit such a subject is counted and allowed (a subject the sketch holds
// already leaves it unchanged, so re-views are free); once the estimate
// reaches Limit only the exact set passes. So past ExactMax the budget closes
// after Limit distinct subjects ± the sketch's error (±2.4% at three standard
// errors), a refused subject is never admitted later in the window, and a
// subject counted beyond the exact set is refused on a re-view once the
// budget is full (the error fails closed).
//
// # Link memories
//
// Each key keeps two generations. New ids go to the current one; it becomes
// the old one once it spans ttl and the old one has expired. A generation is
// consulted while now < its latest insertion + ttl, so no id is forgotten
// within its ttl (no false negatives) and, with one ttl for every call, an
// id is kept at most about 2·ttl. A generation is an exact sorted set of at
// most Options.LinkCapacity ids (default 4096) with each id's best
// provenance and the tag of the answer that showed it beside it: 13 bytes
// an id, at most about 107 KB a key at the defaults. There are no false positives at any load. Past the capacity a
// generation is full: new ids are not remembered (ids already there can
// still be upgraded), so their look-ups are unreferenced. Trade-off: an
// identity shown more than LinkCapacity distinct ids within a ttl (a person
// scrolling thousands of list entries a day) pays for it with
// unreferenced look-ups, where a bloom filter would have let a list
// reader's never-shown look-ups pass as shown (16% of them at twice the
// capacity, 68% at four times).
//
// The fan-out cap (store.Fanout) lives beside the generations: per answer
// opened from, its expiry and at most the cap's limit ids, at most
// store.MaxFanoutAnswers answers a key (the soonest to expire replaced),
// and the hold's end. ExportShard and Import carry all of it (each id's
// answer tag, the answers' opens, the hold; package disk's snapshot
// version 3), so a restart neither frees an identity held past the cap nor
// lets it open afresh what it was shown before; answers expired and a
// hold ended by the restore are dropped.
//
// # Detector state
//
// Observe (store.Detections) keeps per key the members seen within the
// observation's window before its time (the edge inclusive), oldest first,
// at most Limit+1 (the oldest dropped); a member seen again takes the
// later of its times. Offend keeps per banned value its count of bans and
// the latest's end, and forgets them the longest ban duration after that
// end. Both sit under one lock apart from the shards: warden's detector
// counts in its own process on this store and calls these only on a
// shared one (Redis), so they are here for the conformance suite and a
// caller that wants them. At most MaxKeys sets and MaxBans histories are
// kept (the sampled soonest to expire dropped); the sweeper drops idle
// ones. They are not in snapshots: the detector's own histories and
// windows, which decide its bans on this store, are (package disk,
// snapshot version 4, store.DetectState).
//
// # Bans
//
// PutBan replaces the ban on the same facet value; RemoveBan reports whether
// an unexpired ban was there; ListBans returns the bans unexpired at now,
// sorted by facet, then value. Bans are never evicted; past Options.MaxBans
// PutBan fails.
package memory
