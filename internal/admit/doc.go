// Package admit decides, before the upstream is touched, whether a request
// may pass: bans on any facet value first (403), then every GCRA rate limit
// that applies to its route (429 with Retry-After and the IETF RateLimit
// fields). The whole decision is one store call.
//
// Allowlists exempt CIDRs, apps and accounts from named rate limits (or all
// of them); they never lift a ban. Each limit counts per value of its facet;
// a request with no value for a facet (no app key, no valid token) is not
// counted by that facet's limits.
//
// It must never read an identity from anything but identify's result, and
// never call the store more than once per request.
package admit
