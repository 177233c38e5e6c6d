// Package admin is warden's operator API, served on its own listener apart
// from the gateway: Prometheus metrics, liveness and readiness, bans (list,
// add, remove) and the limit state of one facet value. `warden ban` is its
// command-line client.
//
// Routes (JSON in and out; errors are {"error": "..."}):
//
//	GET    /healthz                      liveness, the only route without a token
//	GET    /readyz                       200 when Options.Ready returns nil, else 503
//	GET    /metrics                      Options.Gatherer in the Prometheus text format
//	GET    /v1/bans[?facet=F][&limit=N]  {"bans": [...], "total", "truncated"}: unexpired
//	                                     bans by facet, value; at most N (default 1000)
//	POST   /v1/bans                      {"facet","value","reason","ttl"|"until"} -> 201 and the ban
//	DELETE /v1/bans/{facet}/{value...}   204, or 404 when no ban exists
//	DELETE /v1/bans?facet=F&value=V      the same, the value in the query
//	GET    /v1/facets/{facet}/{value...} the value's limit state from Options.Limits
//	GET    /v1/facets?facet=F&value=V    the same, the value in the query
//	GET    /v1/ledger/{query}?...         the ledger's queries, as the commands
//	                                     answer them (--json): who-took?subject=&class=&by=,
//	                                     took-by?facet=&value=, reach?authors=&by=&dose=true&
//	                                     overlap=&after=&approx=true, audience?accounts=&
//	                                     overlap=&dose=true&rate= (the gateway's upstream
//	                                     and credential), explain?id=, verify; every one
//	                                     takes from= and to= (RFC 3339 or a duration back)
//	POST   /v1/ledger/replay?from=&to=   replay: the body (at most 1 MiB) is the new
//	                                     config's YAML, as warden replay --config
//	GET    /v1/person?subject=&class=    the dashboard's per-person report as JSON
//	                                     (Dashboard.Person), when Options.Dashboard is set
//	GET    /, /login, /transparency, ... the web dashboard, when Options.Dashboard
//	                                     is set: sessions of its own (package dashboard)
//	GET    /debug/pprof/...              Go's profiles (net/http/pprof), e.g.
//	                                     /debug/pprof/profile?seconds=10 for CPU
//
// A value may contain '/' (a net ban is a CIDR): in the path form the rest
// of the path after the facet is the value, sent as is
// (/v1/bans/net/10.1.2.0/24) or escaped (/v1/bans/net/10.1.2.0%2F24). The
// path is cleaned before routing, so a value holding "//" or "/../" (an odd
// account name) only travels in the query form, which `warden ban` always
// uses. Values are canonicalised before use: an ip is parsed and printed
// back (IPv4-mapped IPv6 is unmapped), a net is masked to its prefix
// (10.1.2.7/24 is 10.1.2.0/24), a fingerprint is lower-cased and must be
// the facet's 16 hex digits. Options.NetBits and Options.Matchable refuse
// a ban the gateway's config could never match (a net at another prefix
// length; any account when no token is verified, an account off
// subject_pattern, an app no registered key names). A net ban matches only a request whose net
// facet is exactly that prefix, so ban at the prefix lengths the gateway's
// config uses. Every admin ban expires (ttl or until, at most ten years):
// standing denials belong in the config.
//
// Every route except /healthz requires "Authorization: Bearer TOKEN". The
// token is compared in constant time. /healthz is open so that a liveness
// probe needs no secret; it says only that the process answers. /readyz is
// behind the token because its failure text names internals (the store).
//
// The token comes from LoadToken: a file, or an environment variable. A
// token file that other users may access (mode & 0o007) is refused, since
// it would hand the admin API to every local account; group access is
// allowed so that operators in one group can share it.
//
// This package must never be served without a token (New refuses an empty
// or short one), never log the token or the Authorization
// header, and never log ban values or reasons, which may be personal data
// (an IP address, an account): logs carry the facet, the operator and the
// expiry only. Reachability is the operator's choice of listen address; the
// default is loopback.
//
// Swapping on reload: Options.Limits and Options.Ready are read on every
// request and never cached. The gateway, which swaps its config on SIGHUP,
// passes a LimitViewer whose implementation reads its current config through
// its own atomic pointer, so nothing here needs to change on reload.
package admin
