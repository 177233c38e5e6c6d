// Package detect is the detector: a recorder fed every Access (each
// inspected answer and each refusal) as it happens, on its own goroutine,
// that watches for harvesting behaviour and writes bans with expiry
// through the store, so every gateway on the store refuses the banned
// value at once.
//
// Rules (config detect.rules, each with a kind):
//
//   - velocity: the class (contact) of more than limit distinct people
//     served to one account (or, for anonymous traffic, one ip or net)
//     within window. A person reads a few profiles a minute; a harvester
//     at machine speed crosses 20 in 10 s within a second or two.
//   - fanout: more than limit distinct people's class opened, within
//     window, from the ids one list answer showed (a search page, another
//     profile's followers): a person opens one or two hits, a harvester
//     all of them. The ids an answer showed are kept per identity (at
//     most 1,024, the oldest dropped): provenance the detector keeps for
//     itself, never used to grant anything.
//   - enumeration: more than limit look-ups of distinct ids never shown
//     (Access.Unreferenced) within window, when the look-ups of ids never
//     shown are at least ratio of all the identity's look-ups in window,
//     however many it made. The distinct ids are a window ring capped at
//     limit+1 (all the "more than limit" test needs); the ratio's two
//     counts are tallies (store.Tally) of every look-up and every
//     never-shown one, in the same 16 buckets of window/16 each: bounded
//     whatever the count, and exact up to one bucket at the window's old
//     edge (a look-up stays counted between window-window/16 and window
//     after it was made, the same on both sides of the ratio). Until
//     issue 22 both counts were capped (6 and 13 for the lab's 5 and
//     0.5), so past an identity's 13th look-up in the window the ratio
//     could never hold: a harvester that first opened a dozen people it
//     was shown, or just kept going, was never caught by this rule.
//   - persistence: more than limit requests warden refused (429, 403,
//     with a rule: not the upstream's own, passed on) within window: full
//     speed after a refusal.
//   - cohort: more than limit accounts younger than young served the
//     class from one net (or fingerprint, or ip) within window: sign-ups
//     made together going straight for contact data. A look-up of the
//     account's own feed and network (Access.Provenance social) is not
//     counted: new users behind one NAT reading people they follow are no
//     cohort. With Rule.Provenance only look-ups of those provenances
//     count ([list, unreferenced]: nor those who search for a friend).
//     Each of them is banned (the accounts, not the network).
//
// A ban goes on the most specific facet that explains the behaviour: the
// account when the request carried one, the ip (or net) only for
// anonymous traffic, or, with address_after set (off by default), when at
// least that many accounts seen on one address within an hour were all
// banned. A ban for anonymous traffic refuses anonymous requests only
// (store.Ban.Anonymous; "anonymous requests only" in its reason,
// "anonymous": true in the admin API): an account behind the address is
// judged by its own rules, never by what its anonymous neighbours did. Ban lengths escalate per value
// (ban_durations, default 10m, 1h, 24h, 7 days; the last repeats); the
// reason holds the evidence (rule, figures, window), shown by `warden ban
// ls` and the admin API. Exempt identities and allowlisted ones (allow
// entries naming no rules, or naming the detector rule) are never banned;
// `warden ban rm` lifts a ban and ends its hold in the store's history (the
// count stays, and so do the rules' windows: the value's next Access the
// rule counts bans it again, escalated; an allow entry is what clears a
// value for good); a detector that sees the value admitted more than 5 s after
// it banned it (or learnt of the ban) takes the ban as lifted, so the value
// misbehaving again is banned again, as its next offence.
//
// Memory is bounded: state per facet value (at most max_tracked; past it
// the track that least recently moved to the front of the recency list is
// dropped, and a track moves there when seen and not moved within the last
// max_tracked/4 look-ups, so one seen that recently is never dropped),
// each holding at most limit+1 timestamps per rule,
// 160 bytes of tallies per enumeration rule and 1,024 shown ids.
//
// Cost: Record runs on the recording goroutine, whose CPU a 2-core gateway
// takes from the request path. A rule's window is a ring of (key, Unix ns)
// slots grown to limit+1 (an add drops from the head and appends at the
// tail); a facet value's track is looked up once per Access by a struct
// key, holds its windows and tallies in its own allocation (hot fields
// first) and rarely moves on the recency list (a move writes two
// neighbours); a tally keeps its sum as it goes; a rule in shadow mode that fired on a value stays quiet on it for
// its window without asking the shadow lines' map (its line is written
// once per window); an Access that makes no new track allocates nothing
// (BenchmarkRecordLab: examples/lab.yaml's rules in shadow mode, 1,000
// accounts reading random unreferenced profiles). On the memory store the
// detector is gateway.Transient (it keeps nothing of an Access), so the
// gateway reuses each Access's memory after Record.
//
// On Redis (WithShared) the fleet counts together: every observation
// (a person served, a refusal, a look-up, a young account) also goes to
// the store's windowed sets (store.Detections; enumeration's look-ups to
// windowed tallies, Observation.Tally, so the fleet's ratio is of all its
// look-ups in the window as well), off the recording
// goroutine, in batches of at most 512 at most 50 ms apart (one script
// call each, so at most 20 + N/512 calls a second at N Accesses/s, about
// 5 µs of Redis CPU per observation), and a fleet-wide count past a
// limit bans like a local one. Escalation asks the store too, so a repeat
// offender's next duration survives a restart and holds across gateways,
// and a value already banned by another gateway is not banned twice. When
// the store fails the detector counts it (warden_detect_store_errors_total)
// and goes on with its own counts and history: it never stops banning.
// At most 4,096 observations wait for a lagging store; the rest are
// dropped from the store's view (warden_detect_store_dropped_total), never
// from the local counts. Fan-out and the address_after bookkeeping stay per
// gateway. On the memory store the detector counts in this process only.
//
// Restarts: on Redis the histories and counts are in Redis. On the memory
// store with store.memory.dir, ExportDetect copies the state that decides
// future bans (store.DetectState: every ban history not yet forgotten, the
// longest ban duration after its ban ended; the windows of velocity,
// persistence, enumeration (with its tallies) and cohort rules not in
// shadow mode, unexpired; a cohort's accounts and an address's for
// address_after) into each snapshot, and Restore loads it before the first
// Access, trusting nothing: what expired by then, windows of a rule gone
// or changed in kind or facet (tallies of a changed window), impossible
// times and counts are dropped, and max_tracked and limit+1 bound it as
// they bound the running detector. So a repeat offender's first ban after
// a restart is its next length, and a count under a limit goes on from
// where it was (as of the last snapshot after kill -9). Not kept: fan-out's
// list answers (a restart costs a harvester one list read) and shadow
// rules' windows. The copy takes the lock 1,024 tracks at a time, so the
// recording waits about 1 ms at most (BenchmarkDetectState in package
// disk: 100,000 tracks at the bound, 75-90 ms of CPU in all, 64.6 MB).
//
// It must never sit on the request path (it is fed through a bounded,
// non-blocking hand-off), never keep a personal data value (it keeps ids
// and hashes), and never ban an allowlisted or exempt identity.
package detect
