// Package audience counts how many distinct people follow a set of
// accounts, the question no platform tool answers ("how many people
// followed" a troll network): it pages through the platform's own
// follower lists (the route map's list route), at a bounded rate, with a
// service credential, and counts exactly, with the dose (people following
// at least k of the accounts) and the overlap with another set. With the
// ledger it also splits the reach of the same accounts, as authors, into
// followers and non-followers: how far their content spread beyond the
// people who chose to follow them. The ledger is a Ledger: a directory
// (Dir) or a fleet's ledger in ClickHouse (its Client), which name the
// people the accounts' content reached alike. With a researcher and a DP
// parameter every figure is released as a sum of a one-cell-per-person
// histogram's noisy cells (internal/privacy).
//
// Each account's list is paged once, however often and in whichever set
// it is named (an account in both sets counts in both).
//
// It must never exceed its request rate or page without a bound, never
// keep or print a follower's id (its answers are counts), never send its
// credential anywhere but the configured upstream, and never return an
// exact figure beside a private one.
package audience
