// Package gateway is warden's request path: it identifies the caller,
// admits or refuses the request, forwards it to the one upstream, has the
// answer inspected and rationed, and sends it on.
//
// The pipeline has two stages. Begin (pipeline.go): route, identify,
// refuse credentials warden cannot verify (or strip them), admit (bans,
// rate limits), then the Responders, which may answer a request
// themselves without the upstream (canary profiles). A responder's answer
// on an inspected route goes through the answer stage too (local.go:
// read, ration, rewrite, or a refusal), so a canary is masked exactly
// when a real profile would be, but counts nothing against a budget: its
// rationer reads the budgets through ration.Uncounted (no subject spent;
// the ids a canary's list shows linked as a real list's, the link memory
// read and the fan-out cap counting the open as for a real look-up). Its
// Access is recorded, served or refused, with its status, rule, facet and
// mask rules but nothing the answer names (no records, authors, links,
// list, page or look-up: a canary is never a real subject), so a refused
// canary look-up is explained as any refusal is. Only answered requests
// go there. Finish (answer.go), on an inspected route, in one
// screen: read the answer (inspect decodes and scans it under the map's
// policies), ration decides, the Seeders (canaries; the ids they inserted
// then linked in the identity's link memory, a second Link call only on
// answers that carry canaries), rewrite and encode, then the Access goes
// to the recorders.
// Recorders (the ledger, the detector) sit behind a one-method interface
// and are fed through a bounded hand-off each (record.go): a full queue
// drops and counts, it never waits. Recorders that share a hand-off
// (Recorders: the dashboard's candidates ride on the ledger's) cost a
// request one offer. A recorder that also takes batches (BatchRecorder:
// the ledger) is handed what the hand-off drains, up to 32 Accesses at
// once, in order; Recorders hands a batch to each member that takes
// them and the Accesses one by one to the others. Every refusal yields an Access too,
// with its rule and facet: those warden makes at its edge before anything
// is decided as well (edge.go: CONNECT, an ambiguous path, an HTTP version
// other than 1, a header or body over its bound, a request not read in
// time, an Expect other than 100-continue: 417 on every front, as net/http
// answers it on the std front's HTTP/1 with no way to pass it on; rule request, the reason as facet, the identity as far as it was
// read, from the peer or a trusted proxy's report, never an untrusted
// header; counted in warden_refusals_total by that rule and facet as
// every refusal is, and by front in warden_bad_requests_total when a
// server bound was broken), an upstream's failure on any route (rule upstream) and a
// recovered panic's 500 (rule internal, unless the request's Access was
// made before it), so every request id a refusal's body names is in the
// ledger. A busy hand-off's goroutine takes its queue
// every 5 ms rather than parking between Accesses, so a request's offer is
// a channel send and never wakes it; it parks after a tick with nothing
// queued. The Access the recorders share is made once per request, in one
// box with room for a look-up's record; when every recorder is Transient
// (keeps nothing of an Access past Record: the ledger, the dashboard's
// candidates, the detector on the memory store) the box is reused once
// the last recorder is done with it (counted references, a per-pipeline
// pool), so a request allocates no Access; one recorder that keeps
// Accesses (the detector on a shared store) turns that off. A reused box
// was last written on the recording's core: Finish takes it before it
// reads the answer and prefetches its lines (internal/cacheline), and the
// hand-off's goroutine takes up to 32 queued Accesses at a time and
// prefetches each 4 ahead of the one it feeds, so that neither side waits
// on the other core's cache for each line in turn.
//
// The decision pipeline (Pipeline) works on warden's own small types, so
// the HTTP front is chosen by measurement and can change. The loop front
// (gnet event loops, fasthttp's parsing) serves cleartext HTTP/1.1, the hot
// path behind a load balancer, deciding on the loop that owns both
// connections; what it does not serve on its loops it hands, with the
// connection, to the fast front (fasthttp, a goroutine per connection);
// with Redis its decisions run off the loops. The std front (net/http with
// httputil.ReverseProxy) serves TLS with HTTP/2, h2c, and streams bodies.
// All apply the same pipeline, and write what warden answers itself
// (refusals, its own errors, a recovered panic, CONNECT, an upstream that
// failed) through one set of edges over a small writer each front supplies
// (edge.go); the loop and fast fronts share the steps on fasthttp's types
// (h1.go), not each other.
//
// A request must arrive in time: on the loop and fast fronts its header
// within read_header_timeout of its first byte (the fast front counts a
// connection's first request from the connection's start: fasthttp's
// ReadTimeout is the header's bound, HeaderReceived sets the body's; one
// the loop hands over after an answer first waits idle_timeout, as on the
// loop, coarseConn.idleFirst), its
// body within read_timeout of the header's end; else 408, rule request,
// reason read_timeout. A new connection that sends nothing is closed
// without an answer at the header timeout (the loop's firstRequestTimeout;
// idle_timeout is the wait between answered requests). So a slow-loris
// client holds a connection for the header timeout, not the request's.
//
// The std front makes net/http's own answers warden's where net/http lets
// it (stdedge.go): warden checks max_header_bytes itself, net/http reading
// 64 KiB past it; on a cleartext connection (stdConn) the text answers
// net/http writes before a handler runs become warden's refusals and a
// late header gets 408. Over TLS those stay net/http's, counted
// (reason net_http) when the connection closes with one.
//
// It must never let an untrusted header decide an identity, never touch the
// upstream for a refused request, never change an answer that no rule
// touched (such answers pass byte for byte), and never do a recorder's
// I/O on the request path.
package gateway
