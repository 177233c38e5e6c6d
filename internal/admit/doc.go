// Package admit decides, before the upstream is touched, whether a request
// may pass: bans on any facet value first (403), then every GCRA rate limit
// that applies to its route (429 with Retry-After and the IETF RateLimit
// fields). The whole decision is one store call. A ban marked anonymous
// (store.Ban.Anonymous: the detector's ban of an address, network or
// fingerprint for what its anonymous traffic did) refuses only requests
// without a verified account; an account behind it is decided as if the
// ban were not there, at the cost of a second store call for that request.
//
// Allowlists exempt CIDRs, apps and accounts from named rate limits (or all
// of them); they never lift a ban. Each limit counts per value of its facet;
// a request with no value for a facet (no app key, no valid token) is not
// counted by that facet's limits.
//
// Neighbours: a limit on ip, net or fingerprint with identified: own (the
// default on ip and net) counts a request that carries a verified account
// on the composite [value, account], and a request without one on the
// value alone. No account is refused for what others behind its address
// or network did (a harvester retrying refusals at once behind a NAT
// empties only its own allowance), and anonymous traffic still meets the
// address's limit. The cost: an address with many accounts gets the
// allowance once per account; accounts are what the per-account limits,
// the sign-up limit and the detector hold. identified: shared counts
// everyone on the value alone.
//
// A limit in shadow mode (mode: shadow) is charged and decides as it would
// enforced, then refuses nothing: it counts warden_shadow_total and logs
// "would have refused" with the request id.
//
// It must never read an identity from anything but identify's result, and
// never call the store more than once per request.
package admit
