package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/linebound"
	"github.com/warden-gw/warden/internal/refusal"
)

// The edges every front has, written once: the answers warden makes itself
// (refusals, its own errors, a recovered panic), the CONNECT refusal, the
// canonical path, and the answer to an upstream that failed. A front
// supplies a replyWriter over its own response type and keeps only what
// its HTTP library makes its own.

// replyWriter is where a front writes an answer warden makes itself, in
// place of the upstream's. The front hands it a fresh (or reset) answer:
// headers set, then the body written once.
type replyWriter interface {
	setHeader(name, value string)
	// writeJSON sends status with body as application/json.
	writeJSON(status int, body []byte)
}

// frontName names an HTTP front in metrics and logs.
type frontName uint8

const (
	frontFast frontName = iota
	frontStd
	frontLoop
	numFronts
)

var frontNames = [numFronts]string{config.FrontFast, config.FrontStd, config.FrontLoop}

func (n frontName) String() string { return frontNames[n] }

// writeRefusal writes r for request id, with the headers it calls for: one
// writer, so every front sends the same. id is "" only for a failure
// before the exchange was known: then no X-Request-Id.
func writeRefusal(w replyWriter, r *Refusal, id string) {
	if r.RetryAfter > 0 {
		w.setHeader("Retry-After", r.RetryAfterSeconds())
	}
	if r.Policy != "" {
		w.setHeader("RateLimit-Policy", r.Policy)
		w.setHeader("RateLimit", r.State)
	}
	if r.Challenge != "" {
		w.setHeader("WWW-Authenticate", r.Challenge)
	}
	if r.Status == 405 {
		// RFC 9110 15.5.6: a 405 carries Allow. warden refuses CONNECT
		// alone (it is no tunnel) and passes every other method on.
		w.setHeader("Allow", allowedMethods)
	}
	if id != "" {
		w.setHeader("X-Request-Id", id)
	}
	w.writeJSON(r.Status, r.Body(id))
}

// allowedMethods is a 405's Allow: HTTP's methods but CONNECT, the one
// warden refuses; the upstream answers for the others.
const allowedMethods = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE"

// writeLocal writes the answer a responder made for request id.
func writeLocal(w replyWriter, l *Local, id string) {
	for _, h := range l.Header {
		w.setHeader(h.Name, h.Value)
	}
	w.setHeader("X-Request-Id", id)
	w.writeJSON(l.Status, l.Body)
}

// writeError writes one of the gateway's own errors (no rule), with the
// request id in X-Request-Id as on every other answer.
func writeError(w replyWriter, status int, msg, id string) {
	writeRefusal(w, &Refusal{Status: status, Error: msg}, id)
}

// recovered counts and logs a panic v raised while serving ex (nil: no
// exchange yet) and, when w is not nil, answers 500 there (rule internal),
// recorded. When the exchange's Access was already handed to the
// recorders with the decided status (the panic came while the answer was
// made), the 500 goes to them as a second Access of the id, facet
// refusal.InternalAnswering, which supersedes the first: a hand-off on
// this path only, none more on the common one (the box handed over is
// the recorders' and cannot be changed). The first Access's records stay
// as decided, though the 500 replaced the answer that would have carried
// them. A nil w says the answer has begun and cannot be replaced: nothing
// is recorded for an answer warden did not make.
func (g *Gateway) recovered(w replyWriter, ex *Exchange, v any) {
	id := ""
	if ex != nil {
		id = ex.ID
	}
	g.m.panics.Inc()
	g.log.Error("panic serving request", slog.String("request_id", id), slog.Any("panic", v))
	if w == nil {
		return
	}
	r := &Refusal{Status: 500, Error: "internal error", Rule: refusal.RuleInternal}
	at := ex != nil && ex.recorded
	if at {
		r.Facet = refusal.InternalAnswering
	}
	g.edgeRefused(ex, r)
	if ex != nil {
		p := ex.p
		if p == nil {
			p = g.pipeline()
		}
		if len(p.recordings) > 0 {
			when := ex.Start
			if at {
				when = time.Now() // after the first: the newest of the id
			}
			p.record(ex, p.bare(ex, when), r)
		}
	}
	writeRefusal(w, r, id)
}

// badRequest refuses a request that breaks a server bound, counted by
// front and reason, and recorded as refuseRequest does.
func (g *Gateway) badRequest(w replyWriter, p *Pipeline, front frontName, ex *Exchange, in *identify.Input, status int, reason, msg string) {
	g.m.badRequest(front, reason)
	g.refuseRequest(w, p, ex, in, status, reason, msg)
}

// refuseRequest answers a request warden will not serve as sent: rule
// request, the reason as its facet (refusal.RuleRequest), in the body as
// in the Access it hands p's recordings, so that the body's request_id
// leads to `warden explain` as every other refusal's does. ex is the
// request as far as it is known: its id and start always; its method and
// path once read (the route map's route of the path, if any, is the
// Access's route); its identity once Begin ran, else derived from in as
// identify derives it (the peer, or the client a trusted proxy reports in
// in.Header; with no header, the peer alone and no fingerprint). Only rare
// paths come here: the hand-off is the recordings' bounded, non-blocking
// one, as on every other refusal. A nil ex (no exchange known) is
// answered without an id and not recorded.
func (g *Gateway) refuseRequest(w replyWriter, p *Pipeline, ex *Exchange, in *identify.Input, status int, reason, msg string) {
	r := &Refusal{Status: status, Error: msg, Rule: refusal.RuleRequest, Facet: reason}
	// Counted as every refusal is, by the rule and facet its body and the
	// ledger name: the dashboard's refusals and an alert on them see the
	// edge's too.
	g.m.refusals.WithLabelValues(r.Rule, r.Facet).Inc()
	g.edgeRefused(ex, r)
	id := ""
	if ex != nil {
		p.atEdge(ex, in, r)
		id = ex.ID
	}
	writeRefusal(w, r, id)
}

// refusedLinesPerSecond bounds the "refused" lines of a kind of refusal:
// within a second at most this many are written, and the next line
// written says how many were left out ("suppressed"). The edge's (rules
// request and internal) come as fast as a client's link carries malformed
// requests, a few bytes each; the rules' (Pipeline.refuse) as fast as a
// client that was told 429 keeps asking. Each line is some 200 bytes of
// log and a write: unbounded, a flood of refusals was as many lines a
// second (30,000 at this machine's rate: 6 MB/s of log, and the request
// path's CPU spent writing them, at the moment the gateway is under
// load). Every refusal is still counted (warden_refusals_total) and
// recorded in the ledger under its request id; the log is the operator's
// glance, not the record.
const refusedLinesPerSecond = 100

// refusedLog bounds the "refused" lines (linebound).
type refusedLog struct{ linebound.Bound }

// take reports whether a line may be written at now, and how many were
// left out before it.
func (l *refusedLog) take(now time.Time) (ok bool, suppressed int64) {
	return l.Take(now, refusedLinesPerSecond)
}

// edgeRefused logs the refusal r of ex (nil: no exchange known) at the
// edge, with the fields Pipeline.refuse logs (bounded: refusedLog). The path
// is the one warden read, without its query, as on every refused line.
func (g *Gateway) edgeRefused(ex *Exchange, r *Refusal) { g.edgeLines.write(g.log, ex, r, nil) }

// write logs the "refused" line of r (ex nil: no exchange known), with
// cause when not nil, within l's bound: the line after a second that was
// over it carries how many were left out ("suppressed").
func (l *refusedLog) write(log *slog.Logger, ex *Exchange, r *Refusal, cause error) {
	ctx := context.Background()
	if !log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	ok, suppressed := l.take(time.Now())
	if !ok {
		return
	}
	attrs := refusedAttrs(ex, r)
	if cause != nil {
		attrs = append(attrs, slog.String("cause", cause.Error()))
	}
	if suppressed > 0 {
		attrs = append(attrs, slog.Int64("suppressed", suppressed))
	}
	log.LogAttrs(ctx, slog.LevelInfo, "refused", attrs...)
}

// atEdge records the Access of ex, refused with r at the edge (see
// refuseRequest).
func (p *Pipeline) atEdge(ex *Exchange, in *identify.Input, r *Refusal) {
	begun := ex.p != nil
	if begun {
		p = ex.p // the pipeline that admitted it (a reload may have swapped another in)
	}
	if len(p.recordings) == 0 {
		return
	}
	if !begun && in != nil {
		p.ident.Identify(ex.Start, in, &ex.Identity)
		if in.Header == nil {
			// A hash of nothing: every request without a header would
			// share it.
			ex.Identity.Fingerprint = ""
		}
	}
	box := p.bare(ex, ex.Start)
	if !begun && ex.Path != "" {
		// The route only: no list or look-up was asked of a request
		// warden did not serve.
		if m, ok := p.imap.Match(ex.Method, ex.Path); ok {
			box.acc.Route = m.Route.Pattern
		}
	}
	p.record(ex, box, r)
}

// requestPath checks what a front asks of a request's target before
// anything is decided: CONNECT is refused (warden is no tunnel), and the
// path (raw, as sent, without its query) is put in canonical form (path.go).
// It returns false when w holds warden's answer instead, recorded with in
// (refuseRequest).
func (g *Gateway) requestPath(w replyWriter, p *Pipeline, front frontName, ex *Exchange, in *identify.Input, connect bool, raw string, keepSlashes bool) (string, bool) {
	if connect {
		g.refuseRequest(w, p, ex, in, 405, refusal.RequestConnect, "CONNECT not supported")
		return "", false
	}
	path, err := canonPath(raw, keepSlashes)
	if err != nil {
		ex.Path = raw // for the route, if the map has one for it
		g.badRequest(w, p, front, ex, in, 400, "ambiguous_path", err.Error())
		return "", false
	}
	return path, true
}

// expectationFailed refuses a request whose Expect (expect: its first
// value, as net/http reads it) asks what warden does not meet: 417, reason
// expectation_failed, as net/http answers it on the std front before
// warden sees the request (RFC 9110 10.1.1: a server may answer 417 or
// ignore the field). Every front answers so: forwarding it, as the loop
// and fast fronts did, cannot be made the std front's, whose net/http
// answers 417 itself on HTTP/1 with no hook to pass the request on (over
// TLS, out of warden's reach). Only 100-continue is met, anywhere in the
// value (net/http's token test: "100-continue, x" is met). It returns false
// when w holds the refusal.
func (g *Gateway) expectationFailed(w replyWriter, p *Pipeline, front frontName, ex *Exchange, in *identify.Input, expect string) bool {
	if expect == "" || hasToken(expect, "100-continue") {
		return false
	}
	g.badRequest(w, p, front, ex, in, 417, reasonExpectation, msgExpectation)
	return true
}

// The std front's cleartext edge answers net/http's own 417 with these
// too (stdConn.Write).
const (
	reasonExpectation = "expectation_failed"
	msgExpectation    = "expectation failed"
)

// hasToken is net/http's test of a comma-separated header value for token:
// case-insensitive, between the value's ends, commas, spaces or tabs.
func hasToken(v, token string) bool {
	for sp := 0; sp+len(token) <= len(v); sp++ {
		end := sp + len(token)
		if (sp == 0 || isTokenBoundary(v[sp-1])) && (end == len(v) || isTokenBoundary(v[end])) && strings.EqualFold(v[sp:end], token) {
			return true
		}
	}
	return false
}

func isTokenBoundary(b byte) bool { return b == ' ' || b == ',' || b == '\t' }

// upstreamFailed answers ex, whose upstream failed with err: counted by
// front and kind, logged, and recorded on an inspected route. ex is nil
// when the failure came before the exchange was known.
func (g *Gateway) upstreamFailed(w replyWriter, front frontName, ex *Exchange, err error) {
	status, kind, msg := upstreamFailure(err)
	id := ""
	if ex != nil {
		id = ex.ID
		failed(ex, status)
	}
	g.m.upErrors.WithLabelValues(front.String(), kind).Inc()
	g.log.Warn("upstream error", slog.String("request_id", id), slog.String("kind", kind), slog.String("error", unquoted(err)))
	// Named as the ledger records it (rule upstream: warden answered for an
	// upstream that gave no answer), so that the body, explain and the
	// ledger agree.
	writeRefusal(w, &Refusal{Status: status, Error: msg, Rule: refusal.RuleUpstream}, id)
}

// unquoted is err's text up to the first thing it quotes: fasthttp and
// net/http quote the bytes of an answer they could not parse (fasthttp its
// whole buffer), the upstream's data, which may be personal and is never
// logged. What failed stays.
func unquoted(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '"'); i >= 0 {
		s = strings.TrimRight(s[:i], ": ") + " (the answer's bytes are not logged)"
	}
	return s
}

// upstreamFailure names an upstream failure, from fasthttp's client, a dial
// or net/http's Transport: 504 for a timeout, 499 when the client left
// first (std front), else 502.
func upstreamFailure(err error) (status int, kind, msg string) {
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge) || errors.Is(err, errTooLarge):
		return 502, "too_large", "upstream answer too large"
	case errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout) ||
		errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return 504, "timeout", "upstream timed out"
	case errors.Is(err, context.Canceled):
		return 499, "client_gone", "client closed request"
	}
	return 502, "unreachable", "upstream unreachable"
}

var errTooLarge = errors.New("upstream answer too large")
