// Package dashboard is warden's web dashboard, served on the admin
// listener beside the JSON admin API: server-rendered pages (html/template,
// templates and assets embedded with go:embed, a little JavaScript of its
// own, no build step) for the people who run warden, and one page for the
// people whose data it guards.
//
// Routes (mounted by admin.New on its own mux):
//
//	GET  /login            the sign-in form (field token: the admin token)
//	POST /login            compares token in constant time, starts a session;
//	                       past Options.LoginFailures failures from one client
//	                       address (its /64 for IPv6; the connection's peer,
//	                       never X-Forwarded-For) within LoginWindow, 429 with
//	                       Retry-After until the window has passed
//	POST /logout           ends it
//	GET  /transparency     public: personal data that went to third parties
//	                       and harvesting stopped (the identities refused
//	                       by a ban or a blocking rationing rule, counted
//	                       from the ledger: StopRules), with DP noise and
//	                       the guarantee stated, charged to its own budget
//	GET  /                 now: requests, refusals and masks by rule and facet,
//	                       store health, detector bans, live charts
//	GET  /identities       top identities by distinct subjects of a class
//	                       (?class=, "*": any record, "all" too unless a
//	                       class is named all; default the class
//	                       the budgets protect most, the choice stated)
//	                       served unmasked in 24 hours, with their
//	                       budgets' state; /identities/took-by
//	GET  /bans             bans with reason and expiry; POST /bans/add, /bans/remove
//	GET  /explain?id=      the decision on one request (the admin API's
//	                       explain, an explain.Explanation as warden explain
//	                       prints it)
//	GET  /reach            exact reach, impressions, dose and overlap charts;
//	POST /reach/dp         a DP answer for a named researcher
//	GET  /person?subject=  for one subject: how many distinct identities of
//	                       each kind were served their contact details, and when;
//	                       as JSON with ?format=json or Accept: application/json
//	                       (401 in JSON without a session), and on the admin
//	                       API's GET /v1/person behind its token (Person)
//	GET  /trace            upload a leaked copy; POST /trace (multipart, the
//	                       CSRF token its first part, bounded by
//	                       Options.TraceMaxBytes and TraceTimeout: the
//	                       config's dashboard.trace_max_bytes and
//	                       trace_timeout) streams it into
//	                       internal/trace and shows the report
//	GET  /api/now          the now page's figures as JSON, for its charts
//	GET  /assets/...       the embedded script and style sheet
//
// Every query goes through what already answers it: the admin API's
// handler, called in process (bans, ledger queries), the ledger's Reader
// (identities, transparency), internal/trace (the trace page) and the
// privacy package's budgets. Every ledger reader goes through one
// ledger.Cache (Options.LedgerCache, shared with the admin API's ledger
// queries by warden serve): a page reads only what the gateway appended to
// the open hour since the last. The dashboard keeps sessions, a bounded hour
// of metric samples, a bounded set of candidate identities (Watch) and of
// addresses with failed sign-ins, and that cache, nothing else. The Watch
// is a recorder fed by the ledger's recording (warden serve), cheap per
// Access (one map look-up per facet, addresses as netip values, every
// class's count of a value in its one slot) and transient: the gateway
// reuses an Access once it is counted. It nominates per class (records
// of the class served unmasked; the first watchClasses classes served,
// others by records of any class) so the page's ranking by contact
// details is not made of the heaviest profile readers. It is memory
// only: warden serve seeds it (Watch.Seed) with the directory's 24 hours
// before the start, so a restart does not hide who took the most.
//
// On a fleet (Options.Fleet: the ledger in ClickHouse, ledger.backend
// clickhouse) the ledger pages read the fleet's ledger, every gateway's
// Accesses: the identities page lists the fleet's top identities per
// facet, not the Watch's (FleetLedger.Top: one bounded query per facet
// over the 24 hours, of the page's class, so an identity only another gateway served is
// listed, with its fleet count), then asks FleetLedger.Distinct for each
// budget's count of the ten shown (a few queries in flight, the
// request's context); the reach page's budget panel shows the fleet's
// researchers' budgets (FleetBudgets.Standing); the trace page replays
// the fleet's Accesses through trace.Replay (what `warden trace
// --clickhouse` uses) under TraceTimeout and gives no report from a
// replay cut short; and the transparency page counts with Distinct and
// RefusedIdentities and charges the fleet's budgets. Without Fleet they read LedgerDir as
// above, the identities page ranking the Watch's candidates.
//
// A day rollup or author index a page's own reader of LedgerDir passes
// over (it does not parse or decode: ledger.WithWarnings) changes no
// answer, the hours answering exactly, but the file wants rebuilding:
// each is logged at warn level, the error naming the file, and counted in
// Options.DerivedSkipped, which warden serve makes the admin API's
// warden_ledger_derived_skipped_total (Dashboard.openLedger, the one way
// the pages open a Reader).
//
// Sessions: a random 256-bit id in a cookie (HttpOnly, SameSite=Strict,
// Secure when the request came over TLS), the session itself on the server
// with an absolute expiry; each session has its own CSRF token, which every
// form carries and every POST must match (constant time). The sign-in form
// carries a token bound to a pre-session cookie. Every answer carries a
// Content-Security-Policy without inline script or style, X-Frame-Options
// DENY and nosniff.
//
// This package must never:
//   - render a personal data value (an email, a phone number): it shows
//     platform ids, identity facets (the audit trail of who took what),
//     counts, and names of rules and classes; the per-person report and the
//     transparency page name no identity at all;
//   - serve a page, an asset of data or a form without a valid session,
//     except /login, /transparency and the static assets;
//   - accept a POST without its CSRF token, or take the admin token
//     anywhere but the sign-in form (never in a URL, never logged);
//   - answer the transparency page from anything but noised figures
//     charged to its own privacy budget;
//   - grow with traffic: sessions, samples and candidates are bounded;
//   - hold an uploaded copy: it streams through the trace readers, which
//     keep ids and counts only, and one trace runs at a time.
package dashboard
