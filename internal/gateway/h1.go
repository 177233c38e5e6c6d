package gateway

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/identify"
)

// h1 is the request path on fasthttp's types, which the fast and loop
// fronts both parse with: admit a parsed request, rewrite it for the
// upstream, make the upstream's answer the client's. Each front holds its
// own; neither reaches into the other's.
type h1 struct {
	g      *Gateway
	cfg    *config.Config
	front  frontName // in metrics
	upHost string

	exchanges sync.Pool // *Exchange
	// bodies holds memory for rewritten answers: kept when the answer is
	// copied into the response, traded for the response's buffer
	// (SwapBody) when it does not fit there; a rewrite costs no allocation.
	bodies sync.Pool // *[]byte
}

func newH1(g *Gateway, cfg *config.Config, front frontName) *h1 {
	x := &h1{g: g, cfg: cfg, front: front, upHost: g.pipeline().upstream.Host}
	x.exchanges.New = func() any { return new(Exchange) }
	x.bodies.New = func() any { return new([]byte) }
	return x
}

// newExchange starts a request's exchange at start; recycle returns it
// once the request is answered and counted.
func (x *h1) newExchange(start time.Time) *Exchange {
	ex := x.exchanges.Get().(*Exchange)
	*ex = Exchange{ID: x.g.ids.next(), Start: start}
	return ex
}

func (x *h1) recycle(ex *Exchange) { x.exchanges.Put(ex) }

// fastReply writes warden's own answers into a fasthttp response.
type fastReply fasthttp.Response

// setHeader sets name as written (RateLimit-Policy, WWW-Authenticate):
// Set would normalise it to Ratelimit-Policy. fasthttp still finds the
// headers it interprets (Content-Type) in any case. The answer is fresh,
// so no other spelling of name is there to replace.
func (r *fastReply) setHeader(name, value string) {
	(*fasthttp.Response)(r).Header.SetCanonical(s2b(name), s2b(value))
}

func (r *fastReply) writeJSON(status int, body []byte) {
	resp := (*fasthttp.Response)(r)
	resp.SetStatusCode(status)
	resp.Header.SetContentType("application/json")
	resp.SetBody(body)
}

// upstreamFailed replaces resp with the answer to an upstream failure.
func (x *h1) upstreamFailed(resp *fasthttp.Response, ex *Exchange, err error) {
	resp.Reset()
	x.g.upstreamFailed((*fastReply)(resp), x.front, ex, err)
}

// recovered replaces resp with the answer to a panic v.
func (x *h1) recovered(resp *fasthttp.Response, ex *Exchange, v any) {
	resp.Reset()
	x.g.recovered((*fastReply)(resp), ex, v)
}

// admit puts the request's path in canonical form, identifies and admits
// it. It returns false when resp holds warden's answer instead.
func (x *h1) admit(ctx context.Context, p *Pipeline, req *fasthttp.Request, resp *fasthttp.Response,
	peer netip.Addr, ex *Exchange) bool {
	w := (*fastReply)(resp)
	in := identify.Input{Peer: peer, Header: fastHeader{&req.Header}}
	// fasthttp reads any HTTP/D.D and would send it upstream as the
	// client wrote it: HTTP/9.9 reached the upstream, whose refusal came
	// back as a 502. Only HTTP/1 is served; a later HTTP/1 minor version
	// goes as warden's own, HTTP/1.1 (RFC 9110 2.5).
	if proto := req.Header.Protocol(); len(proto) != len("HTTP/1.1") || proto[5] != '1' {
		x.g.badRequest(w, p, x.front, ex, &in, fasthttp.StatusHTTPVersionNotSupported, "malformed", "HTTP version not supported")
		return false
	} else if proto[7] > '1' {
		req.Header.SetProtocol("HTTP/1.1")
	}
	ex.Method = methodString(req.Header.Method())
	if x.g.expectationFailed(w, p, x.front, ex, &in, b2s(req.Header.Peek("Expect"))) {
		return false
	}
	raw := rawPath(req)
	path, ok := x.g.requestPath(w, p, x.front, ex, &in, req.Header.IsConnect(), raw, x.cfg.Server.EncodedSlashes == config.EncodedSlashesKeep)
	if !ok {
		return false
	}
	if path != raw {
		req.URI().SetPath(path) // the upstream gets the path warden matched
		ex.Path = path
	} else {
		ex.Path = string(raw)
	}
	ex.RawQuery = string(req.URI().QueryString())
	if r := p.Begin(ctx, ex, &in); r != nil {
		writeRefusal(w, r, ex.ID)
		return false
	}
	if ex.Local != nil {
		writeLocal(w, ex.Local, ex.ID)
		return false
	}
	return true
}

// rawPath is req's path as sent, without its query: what canonPath reads.
func rawPath(req *fasthttp.Request) string {
	raw := b2s(req.URI().PathOriginal())
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[:i]
	}
	return raw
}

// answer makes the upstream's answer in resp the client's: hop-by-hop
// headers out and, on an inspected route, rationed (rewritten, or replaced
// by a refusal).
func (x *h1) answer(ctx context.Context, p *Pipeline, ex *Exchange, resp *fasthttp.Response) {
	stripHopResponse(&resp.Header)
	// Every answer names its request, as refusals do: the id `warden
	// explain` takes ("why was this masked"), and the one the upstream got.
	resp.Header.Set("X-Request-Id", ex.ID)
	if !ex.Inspect {
		return
	}
	dst := x.bodies.Get().(*[]byte)
	out, ref := p.Finish(ctx, ex, Answer{
		Status:          resp.StatusCode(),
		ContentType:     b2s(resp.Header.ContentType()),
		ContentEncoding: b2s(resp.Header.ContentEncoding()),
		Body:            resp.Body(),
		Dst:             *dst,
	})
	if out.Body != nil {
		if cap(resp.Body()) >= len(out.Body) {
			// Copied into a response buffer (the upstream's is free
			// now): the rewrite's memory stays here, sized for
			// rewrites. Trading buffers instead would hand fasthttp's
			// pool our larger one (it drops those past its usual size)
			// and leave us the upstream's, too small for the next
			// rewrite: an allocation per answer.
			resp.SetBody(out.Body)
			*dst = out.Body[:0] // Dst, or what the rewrite grew it into
		} else {
			// Too small: the rewritten body becomes the response's
			// buffer, and the upstream's comes here.
			*dst = resp.SwapBody(out.Body)[:0]
		}
	}
	x.bodies.Put(dst)
	if ref != nil {
		resp.Reset()
		writeRefusal((*fastReply)(resp), ref, ex.ID)
		return
	}
	for _, h := range out.Header {
		resp.Header.Set(h.Name, h.Value)
	}
}

// prepare rewrites the request for the upstream in place: hop-by-hop
// headers out, forwarding headers set, the request id added. With lines
// non-nil the forwarding headers are appended there as wire lines instead
// of to the header (the loop front adds them to the serialised request).
func (x *h1) prepare(req *fasthttp.Request, p *Pipeline, peer netip.Addr, ex *Exchange, upgrade bool, lines *[]byte) {
	h := &req.Header
	if c := h.Peek("Connection"); len(c) > 0 {
		connectionTokens(string(c), func(name string) {
			if !upgrade || !strings.EqualFold(name, "upgrade") {
				h.Del(name)
			}
		})
	}
	// A body without Content-Type goes without one; fasthttp would add
	// application/octet-stream, a type the client never claimed.
	h.SetNoDefaultContentType(true)
	sc := rawScan(h.RawHeaders())
	if ex.Strip != 0 {
		p.stripCredentials(fastForward{h: h}, ex)
	}
	if sc.override {
		dropOverrides(fastForward{h: h})
	}
	if sc.underscore && x.cfg.Server.UnderscoreHeaders == config.UnderscoreHeadersDrop {
		// The names alias the raw block, which Del leaves as it is.
		rawNames(h.RawHeaders(), func(name string) bool {
			if strings.IndexByte(name, '_') >= 0 {
				h.Del(name)
			}
			return true
		})
	}
	if sc.shape && ex.Inspect {
		askReadable(fastForward{h: h})
	}
	if sc.hop {
		for _, name := range hopHeaders {
			if upgrade && (name == "Connection" || name == "Upgrade") {
				continue
			}
			h.Del(name)
		}
	}
	// The host aliases the request's buffer: Set copies it before SetHost
	// below rewrites it.
	var fwd forwardHeader = fastForward{h: h, absent: !sc.fwd}
	if lines != nil {
		fwd = rawForward{fastForward{h: h, absent: !sc.fwd}, lines}
	}
	ip := peerString(peer, &ex.Identity)
	p.setForwarded(fwd, peer, ip, clientString(&ex.Identity, ip), "http", b2s(h.Host()), ex.ID)
	req.SetHost(x.upHost)
	req.URI().SetScheme(p.upstream.Scheme)
}

func stripHopResponse(h *fasthttp.ResponseHeader) {
	if c := h.Peek("Connection"); len(c) > 0 {
		connectionTokens(string(c), func(name string) { h.Del(name) })
		// The upstream's Connection speaks of its own connection: it never
		// reaches the client (who got "keep-alive, X-Foo" beside the
		// front's own "close"). fasthttp keeps "close" as a flag that Del
		// clears; the flag stays, since the front closes after it.
		closing := h.ConnectionClose()
		h.Del("Connection")
		if closing {
			h.SetConnectionClose()
		}
	}
	hop := false
	for k := range h.All() { // the response's headers: few, and no side effects
		if hop = isHopName(b2s(k)); hop {
			break
		}
	}
	if !hop {
		return
	}
	for _, name := range hopHeaders {
		if name != "Connection" && name != "Transfer-Encoding" {
			h.Del(name)
		}
	}
}

// fastHeader adapts fasthttp's request header to identify.Header. Strings
// alias fasthttp's buffers and live only during Identify.
type fastHeader struct{ h *fasthttp.RequestHeader }

// fastForward adapts the outgoing request header to forwardHeader; it is
// still the incoming header, so prior reads what the client sent. When the
// request has none of forwardHeaders (the usual case), set appends without
// looking for values to replace.
type fastForward struct {
	h      *fasthttp.RequestHeader
	absent bool
}

func (x fastForward) prior(name string) string {
	vs := x.h.PeekAll(name)
	switch len(vs) {
	case 0:
		return ""
	case 1:
		return string(vs[0])
	}
	return string(bytes.Join(vs, []byte(", ")))
}

func (x fastForward) set(name, value string) {
	if !x.absent {
		// fasthttp's Set replaces only the first line of name: a second
		// line the client sent would go upstream beside warden's value.
		x.h.Del(name)
	}
	x.h.Add(name, value)
}

func (x fastForward) del(name string) { x.h.Del(name) }

// rawForward sets headers as wire lines appended to lines: cheaper than
// fasthttp's Add, which keeps a normalised copy of each name and value. As
// fasthttp does, a CR or LF in a value becomes a space.
type rawForward struct {
	fastForward
	lines *[]byte
}

func (x rawForward) set(name, value string) {
	if !x.absent {
		x.h.Del(name)
	}
	b := append(*x.lines, name...)
	b = append(b, ':', ' ')
	for i := 0; i < len(value); i++ {
		c := value[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		b = append(b, c)
	}
	*x.lines = append(b, '\r', '\n')
}

// methodString is the request method as a string, without allocating for
// the common ones.
func methodString(m []byte) string {
	for _, c := range [...]string{fasthttp.MethodGet, fasthttp.MethodHead, fasthttp.MethodPost, fasthttp.MethodPut,
		fasthttp.MethodPatch, fasthttp.MethodDelete, fasthttp.MethodOptions} {
		if string(m) == c {
			return c
		}
	}
	return string(m)
}

func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// s2b is s's bytes, for calls that only read them.
func s2b(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

func (x fastHeader) Peek(name string) string { return b2s(x.h.Peek(name)) }

func (x fastHeader) Count(name string) int { return len(x.h.PeekAll(name)) }

func (x fastHeader) Values(name string, fn func(v string)) {
	for _, v := range x.h.PeekAll(name) {
		fn(b2s(v))
	}
}

// Names walks the raw header block, so the order is the wire order.
func (x fastHeader) Names(fn func(name string)) {
	rawNames(x.h.RawHeaders(), func(name string) bool { fn(name); return true })
}

// rawNames calls fn with each header name of a raw header block, in wire
// order, until fn returns false.
func rawNames(raw []byte, fn func(name string) bool) {
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\n')
		line := raw
		if i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		if c := bytes.IndexByte(line, ':'); c > 0 && !fn(b2s(line[:c])) {
			return
		}
	}
}

// headerScan says which of the header lists a request names, and whether
// a name holds "_".
type headerScan struct {
	hop, fwd, shape, override, underscore bool
}

// rawScan reports whether a raw request header block names a hop-by-hop
// header, one of forwardHeaders, one of shapeHeaders and one of
// overrideHeaders. Most requests have none: then prepare skips nine
// deletions (each a normalised copy of the name and a scan of the headers),
// appends the forwarding headers, and leaves the shape as it is.
func rawScan(raw []byte) headerScan {
	var s headerScan
	rawNames(raw, func(name string) bool {
		s.hop = s.hop || isHopName(name)
		s.fwd = s.fwd || isForwardName(name)
		s.shape = s.shape || isShapeName(name)
		s.override = s.override || isOverrideName(name)
		s.underscore = s.underscore || strings.IndexByte(name, '_') >= 0
		return !s.hop || !s.fwd || !s.shape || !s.override || !s.underscore
	})
	return s
}

func peerAddr(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

var _ replyWriter = (*fastReply)(nil)
