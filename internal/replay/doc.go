// Package replay decides a window of the ledger again under another
// configuration's rate limits and budgets (warden replay), before that
// configuration goes live, and reports who would have been refused or
// masked that was not, and the reverse.
//
// Accesses are replayed each at its own time (the instant the gateway
// decided the request at, its admission), through internal/admit and
// internal/ration on a fresh in-memory store: counts start empty at the
// window's start. Admission is decided again in time order (to within a
// reorder buffer), as the gateway admitted requests; answers are rationed
// again in the ledger's order, the order the gateway rationed them in
// (one identity's concurrent answers come back in any order). An answer's
// records come from the ledger (ids and the classes present), so a budget
// counts exactly the subjects the gateway served.
//
// What the ledger does not hold cannot be replayed, and the report says
// which of these applied: requests on routes the route map does not
// inspect (no Access: rate limits that count them see fewer requests);
// answers the gateway refused before the upstream answered or blocked by a
// budget (no records: an answer the new config would let through is
// reported as no longer refused, but its records are not counted); bans
// (detector and operator state, not configuration: banned requests are
// left out); requests refused at the gateway's edge (rule request: no
// config decides them, so they are left out too), and those the state
// store failed at admission (rule store, facet admit: no rate limit was
// decided or spent; not_replayed.store_admit); an account's age (tiers by account_age are replayed at the
// budget's base limit) and scopes (scope rules are taken as the gateway
// decided them); whether a look-up's id had been shown (the gateway's
// verdict is kept; the provenance comes from the links the window's
// answers showed, social when unknown).
//
// It must never write to the ledger or to any live store.
package replay
