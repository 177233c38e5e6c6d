// Package storetest is the conformance suite every store.Store backend
// passes: Run(t, newStore) checks each operation's semantics at its
// boundaries, with time passed in, so nothing sleeps. The semantics are
// written out in internal/store/memory's package doc; in short, a backend
// must:
//
//   - GCRA: admit Burst cost-1 requests at once from an idle key, then one per
//     Interval; report Remaining, RetryAfter and ResetAfter exactly (to the
//     millisecond at least); Cost 0 peeks (Allowed: would cost 1 pass)
//     without charging; Cost > Burst is refused, uncharged, RetryAfter < 0.
//     Remaining is never negative.
//   - Admit: the first ban key (in request order) with an unexpired ban
//     (Until exclusive, zero Until never expires) wins and no limit is
//     evaluated or charged; otherwise each limit decides and charges alone.
//   - Spend: windows aligned to multiples of Window since the Unix epoch; per
//     subject, already counted → allowed, new within Limit → counted, else
//     refused and not counted; exact up to an exact set of at least 100
//     subjects; past it, admitted and counted within 3% of the truth, and at
//     most 1% of refused subjects admitted when offered again.
//   - Link/Linked: no false negatives within ttl (an id is known while now <
//     its Link time + ttl, whatever later calls' ttls), a lone Link is
//     forgotten at its ttl; an id reports the best provenance it was linked
//     with among its live showings; exact: no id is ever reported with a
//     provenance better than it was linked with, not even past a key's
//     capacity (16,384 ids shown to one key: never-shown ids all
//     unreferenced, ids shown in a list never better, earlier ids kept).
//   - Bans: PutBan replaces, RemoveBan reports whether the ban was there,
//     ListBans excludes expired bans and sorts by facet, then value.
//   - Observe (store.Detections): per observation, the distinct members its
//     set holds within Window before its time (the edge inclusive), capped
//     at Limit+1 (the oldest dropped); a member seen again takes the later
//     of its times, never an earlier one; counts returned in order, keys
//     independent, across cluster slots in one call.
//   - Offend: the N-th offence is banned for durations[N-1], the last
//     repeating; none is recorded while the latest ban holds (until
//     exclusive); the history is forgotten the longest duration after the
//     latest ban ends.
//   - Invalid input (Interval <= 0, Burst < 1, Cost < 0, Window <= 0,
//     Limit < 0, ttl <= 0, provenance unreferenced or unknown, an observation's
//     Window <= 0 or Limit < 1, no or non-positive ban durations) is an error that charges nothing, never a panic.
//   - Under concurrent calls, exactly Limit distinct subjects and exactly
//     Burst requests pass.
//
// newStore must return an empty store for each sub-test (for Redis: a fresh
// database or a unique key prefix); Run closes it. The suite must never
// depend on one backend's internals: where a backend may approximate, it
// checks error bounds, not exact values.
package storetest
