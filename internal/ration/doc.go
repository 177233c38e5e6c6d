// Package ration decides, per upstream answer, how much personal data goes
// out: it inspects the answer (package inspect), counts the distinct
// subjects whose data classes each identity was served, and masks or
// refuses past a budget. The gateway calls Match for every request (cheap:
// it says whether to buffer the answer) and Apply once per answer; Apply
// makes one Spend call on the store for every budget and subject of the
// answer, one Linked call when the route is a direct look-up (the fan-out
// cap counted in it; and, when the
// id looked up was never shown, one Spend of the unreferenced rule's budget
// before the others), and one Link call when the answer shows ids.
//
// Rules, applied in this order:
//
//   - scopes: a class reserved for a scope ("contact" for scope "partner")
//     is masked for every identity without the scope, in every record, and
//     those records are not offered to budgets.
//   - unreferenced: per identity (its facet value), the ids earlier answers
//     linked to are remembered for ttl, each with its provenance: how it
//     was shown (the route map's provenance and own_provenance: social for
//     the caller's own feed, following and followers, search for search
//     results, list for other profiles' lists; an id shown several ways
//     keeps the best). The memory is exact and bounded per identity (the
//     store's link capacity per generation); an identity shown more ids
//     than that is saturated: later ids are not remembered, so their
//     look-ups are unreferenced. Saturation costs the identity; no id is
//     ever reported shown, or shown a better way, than it was. A direct look-up (the
//     route's lookup parameter) of an id never shown, and not the account's
//     own record (by its id, or by another key such as its username when
//     the answer is that record), is enumeration: it is counted (metric, Access.Unreferenced)
//     and spends a budget of its own (distinct ids looked up); past it the
//     answer's classes are masked or the answer refused. It is decided
//     before the budgets: what it masks or refuses was not served, so the
//     budgets do not count it. On ip, net or fingerprint with identified:
//     own (the default on ip and net) a request with a verified account has
//     its memory and its budget on [value, account], as budgets count: no
//     account behind a shared address loses either to a neighbour.
//   - fanout_cap: the per-answer cap, decided in the unreferenced rule's
//     Linked call (store.Fanout): Link remembers with each id the answer
//     that showed it (store.AnswerTag of the request id: each answer
//     fetched is its own), and a look-up of an id shown with one of the
//     cap's provenances (default search and list; never social) counts as
//     one person (the answer's record id, so id and username are one)
//     opened from that answer. Past limit people per answer within window,
//     the look-up's classes are masked with the cap's name (and, with
//     hold, every such look-up for hold); masked before the budgets, so
//     they do not count it as served. Exempt identities and those without
//     a link memory are not capped.
//   - budgets: per facet value (account, app, ip, net, fingerprint), per
//     class, per window: the number of distinct subjects (record ids) whose
//     class was served. A subject already counted in the window costs
//     nothing (re-views are free). Young accounts can get lower limits
//     (account_age tiers); on a value several accounts share (ip, net or
//     fingerprint identified: shared, app) a tier counts on a key of its
//     own, what accounts of that tier took there: older accounts never
//     spend a young tier's limit. Exempt apps, accounts and CIDRs are not
//     counted.
//     Several budgets apply at once: a record's class is masked when any of
//     them refuses it, and the note names the budget with the smallest
//     limit. If a block budget refuses any record, the whole answer is
//     refused: 429 with {"error","rule","facet","request_id"} and a
//     Retry-After until the window ends.
//     A budget on ip, net or fingerprint with identified: own (the default
//     on ip and net) counts a request with a verified account on
//     [value, account] and an anonymous one on the value: no account is
//     masked for what others behind its address did (see package admit).
//     A budget with provenance counts only records whose ids were shown
//     that way: a look-up carries the provenance its link memory holds
//     (unreferenced when never shown; an identity the unreferenced rule
//     exempts has no link memory, so its look-ups are unreferenced); a
//     list answer's records carry the route's provenance; any other
//     answer's records are unreferenced. The caller's own record (its id is
//     the account's) is counted and masked by no budget: it is the
//     caller's own data.
//
// Every budget, the unreferenced rule and the fan-out cap take mode: shadow: they decide
// and spend as enforced, then mask and refuse nothing; what they would
// have done is counted (warden_shadow_total{rule,action}) and logged with
// the request id.
//
// Masking nulls the class's fields of that record only and marks the record
// with a "_warden" member (see package inspect); the answer also carries
// the header "Warden-Masked: N; rules=a,b" (N masked records). The gateway
// logs every mask and refusal once, with the request id, the rules (a
// refusal: the rule and the facet name) and the route.
//
// Windows are tumbling: aligned to multiples of the window since the Unix
// epoch (a 24h window resets at 00:00 UTC), so a caller can take up to
// twice a limit across a window boundary. Counts are exact up to the
// store's exact set (1,024 subjects per budget and window in the memory
// store), then a HyperLogLog of 2^14 registers: about 0.8% standard error.
// Past the exact set a re-view is free only while the budget has room:
// once it is full, a subject first counted past the exact set is refused
// on a re-view as a new one would be (the store cannot tell). Further
// count error, always against the caller: a subject allowed by one budget
// but masked by another, or in an answer a block rule refused, is still
// counted by the budgets that allowed it. The link memory has no false
// positives: a look-up never passes as navigation it was not.
// Records without an id are not counted.
//
// When the store fails, Apply returns the error with the Access filled, and
// the gateway applies its fail mode: closed refuses; open sends the answer
// without budgets or the unreferenced rule, but still with the scopes'
// masks, which need no store (a reserved class never goes out because
// Redis is down).
//
// A Rationer built on Uncounted(store) decides without counting: budgets
// (and the unreferenced rule's) are read (a Spend with no subjects) and a
// subject allowed while the count is under the limit, Link does nothing,
// Linked is the store's (the fan-out cap counts the open). The gateway
// rations canary answers with one (uncounted.go), so a canary is masked
// when a real profile would be and never counts against a budget; and
// links the canaries an answer shows (inserted into a real list, or a
// canary's own list) with LinkCanaries (the answer's provenance and tag),
// so that a canary's look-up finds it shown exactly where a real
// record's would.
//
// What it must never do: store, log or put in an Access a personal data
// value (subjects are ids, mapped to numbers by Subject; Access holds ids
// and class names); re-encode or otherwise change an answer no rule touched
// (Outcome.Body is nil and the upstream's bytes go out); let a malformed,
// oversize or compressed answer crash it (pass or refuse, by config,
// counted).
package ration
