// Package reach answers how many distinct people were served content by a
// set of authors, from the ledger: reach and impressions, the dose (people
// reached by at least k of the authors, for every k), the overlap of two
// sets, and what was served after a time (what a late takedown cost).
// Every answer is exact: distinct identities are roaring bitmaps over the
// ledger's dictionary, unioned across partitions. With a researcher and
// a DP parameter (RunPrivate) the same figures are released as sums of a
// histogram's noisy cells, one cell per person (internal/privacy).
//
// It reads the ledger only; it must never write to it, never run on the
// request path, never print an identity's value (its answers are
// counts), and never return an exact figure beside a private one.
package reach
