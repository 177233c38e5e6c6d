// Package explain says why warden decided what it did on one request,
// from the ledger: the Access recorded under the request id (found in a
// ledger directory or in ClickHouse, any ledger.Source), the identity's
// facets, the decision (served, masked, refused by warden, an upstream's
// error answer passed on, or an upstream that gave no answer), the rule
// and facet of a refusal, the rules that masked, the records served and
// masked per class, what each budget of the config had counted for the
// identity's facet value (with its account, for a budget identified: own)
// in its tumbling window as it stood before the request (distinct subjects
// of its class served unmasked; a budget naming some provenances, not
// all, is counted over records of every provenance, the ledger keeping
// only whether a look-up was unreferenced, not how a referenced id was
// shown: its Seen is then an upper bound, and says so, UpperBound) and the
// limit that held (an account_age tier's, told from the age rank the
// Access recorded against the config's tier bounds, ration.TierAt; not
// known in a ledger written without it: TierUnknown), and
// what each rate limit that
// counted the request, as admission decides it (admit.Admitter.Applies;
// none for a request refused for its credentials, by a ban or by a store
// failing at admission, when no limit decided it),
// had seen: the requests recorded from its key on its routes within its
// burst window before the request (but those no limit saw: refused at
// the edge, for their credentials, by a ban, or by a state store that
// failed at admission, rule store facet admit; ledger.LimitsSaw). A
// store failure recorded without its stage (a ledger older than the
// facet) counts: it may have come after the limits.
//
// A request refused by a ban carries the ban (Ban): its reason and what
// became of it since (held, expired, lifted, replaced), from the state
// store's ban log when one is given (Rules.Bans: the memory store's
// bans.log keeps ended bans until compacted; Redis only those held), else
// unknown.
//
// A request warden refused at its edge, before a configured rule was
// asked (rule request: CONNECT, an ambiguous path, an HTTP version it does
// not serve, a header or body over a bound, a request not read in time),
// is explained too: its status, the rule and the reason (as Facet), the
// identity as far as it was known (ip and net from the peer; an account or
// app only when identified), the route when the path matched one (else
// ""), and no budget or rate limit rows, since none counted it.
//
// A request with two Accesses (a panic after the first was recorded: the
// second is the 500 sent, rule internal, facet answering) is explained by
// the newest, with no rate limit rows, and counted once in others' seen.
//
// The decision is told from what the gateway recorded: every answer warden
// makes in place of the upstream's names a rule (refusal.Own lists its
// own, which no configured rule may take), so an Access without a rule
// carries the upstream's answer, and a 404 or 500 there is the upstream's,
// never reported as warden's refusal. Masked: a record masked, or mask
// rules recorded (a responder's answer, a canary, is recorded with the
// rules that masked it and no records).
//
// `warden explain REQUEST_ID` (its table and --json), the admin API's GET
// /v1/ledger/explain?id= and the dashboard's explain page all show one
// Explanation built here, so the three cannot disagree.
//
// The counts are the ledger's, not the state store's: what was recorded,
// read again after the fact. A budget's figure can differ from what the
// gateway counted at the time (sketches past the exact set, a store that
// failed open, Accesses the ledger's queue dropped); the explanation says
// what the ledger holds and never decides anything itself.
//
// It reads only: it must never write to the ledger or the state store,
// never charge a privacy budget, never hold a personal data value (the
// ledger keeps ids and data classes only; an explanation carries the
// identity's facet values, the route, rule names and counts), and never
// print: the command and the dashboard render it.
package explain
