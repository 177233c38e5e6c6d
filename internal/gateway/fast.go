package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/identify"
)

// fastFront serves cleartext HTTP/1.1 with fasthttp: the hot path.
type fastFront struct {
	g      *Gateway
	srv    *fasthttp.Server
	client *fasthttp.HostClient
	upHost string
	cfg    *config.Config
	slack  time.Duration // of connection deadlines (coarseConn)
	label  string        // the front, in metrics: "fast", or "loop" for connections the loop handed over

	exchanges sync.Pool // *Exchange
	// bodies holds memory for rewritten answers: kept when the answer is
	// copied into the response, traded for the response's buffer
	// (SwapBody) when it does not fit there; a rewrite costs no allocation.
	bodies sync.Pool // *[]byte
}

func newFastFront(g *Gateway, cfg *config.Config) *fastFront {
	f := &fastFront{g: g, cfg: cfg, label: config.FrontFast}
	f.slack = deadlineSlack(cfg.Server.ReadHeaderTimeout, cfg.Server.ReadTimeout, cfg.Server.WriteTimeout,
		cfg.Server.IdleTimeout, cfg.Upstream.ResponseHeaderTimeout)
	f.exchanges.New = func() any { return new(Exchange) }
	f.bodies.New = func() any { return new([]byte) }
	up := g.pipeline().upstream
	f.upHost = up.Host
	f.client = &fasthttp.HostClient{
		Addr:                     hostPort(up.Host, up.Scheme),
		IsTLS:                    up.Scheme == "https",
		Name:                     "warden",
		NoDefaultUserAgentHeader: true,
		MaxConns:                 maxConns(cfg.Upstream),
		// Most recently used first: a busy gateway keeps reusing the same
		// warm connections, and the idle ones beyond them age out.
		ConnPoolStrategy:       fasthttp.LIFO,
		MaxIdleConnDuration:    cfg.Upstream.IdleTimeout,
		MaxConnWaitTimeout:     cfg.Upstream.ResponseHeaderTimeout,
		MaxResponseBodySize:    cfg.Server.MaxBodyBytes,
		DisablePathNormalizing: true,
		Dial: func(addr string) (net.Conn, error) {
			c, err := fasthttp.DialTimeout(addr, cfg.Upstream.DialTimeout)
			if err != nil {
				return nil, err
			}
			return &coarseConn{Conn: c, slack: f.slack}, nil
		},
	}
	f.srv = &fasthttp.Server{
		Handler:               f.serve,
		Name:                  "",
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		NoDefaultDate:         false,
		// Header names stay normalised (the default): with it off, fasthttp
		// looks names up case-sensitively, so "authorization: Bearer ..."
		// went unseen by identify (no account facet) while the upstream,
		// reading names in any case as HTTP says, took the account; and
		// "keep-alive" or "proxy-authorization" in lower case were
		// forwarded. The fingerprint reads the raw block, whose case stays.
		DisablePreParseMultipartForm: true,
		ReadTimeout:                  cfg.Server.ReadTimeout,
		WriteTimeout:                 cfg.Server.WriteTimeout,
		IdleTimeout:                  cfg.Server.IdleTimeout,
		ReadBufferSize:               cfg.Server.MaxHeaderBytes,
		MaxRequestBodySize:           cfg.Server.MaxBodyBytes,
		CloseOnShutdown:              true,
		Logger:                       fastLogger{g.log},
		ErrorHandler:                 f.badRequest,
		HeaderReceived: func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
			return fasthttp.RequestConfig{}
		},
	}
	return f
}

func maxConns(u config.Upstream) int {
	if u.MaxConns > 0 {
		return u.MaxConns
	}
	return 4096
}

func hostPort(host, scheme string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	if scheme == "https" {
		return host + ":443"
	}
	return host + ":80"
}

func (f *fastFront) serveListener(ln net.Listener) error {
	return f.srv.Serve(coarseListener{Listener: ln, slack: f.slack})
}

func (f *fastFront) shutdown(ctx context.Context) error { return f.srv.ShutdownWithContext(ctx) }

func (f *fastFront) badRequest(ctx *fasthttp.RequestCtx, err error) {
	status, reason, msg := fasthttp.StatusBadRequest, "malformed", "bad request"
	var te interface{ Timeout() bool }
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		status, reason, msg = fasthttp.StatusRequestEntityTooLarge, "body_too_large", "request body too large"
	case strings.Contains(err.Error(), "small read buffer"):
		status, reason, msg = fasthttp.StatusRequestHeaderFieldsTooLarge, "header_too_large", "request header too large"
	case errors.As(err, &te) && te.Timeout():
		status, reason, msg = fasthttp.StatusRequestTimeout, "read_timeout", "request read timeout"
	}
	f.g.m.badReqs.WithLabelValues(f.label, reason).Inc()
	f.g.m.countRequest(0, status)
	if status != fasthttp.StatusRequestTimeout {
		drainRefused(ctx.Conn())
	}
	fastJSON(&ctx.Response, status, errorBody(msg, ""))
	ctx.SetConnectionClose()
}

// Bounds of drainRefused.
const (
	drainMax   = 256 << 10
	drainQuiet = 50 * time.Millisecond
	drainTotal = time.Second
)

// drainRefused reads and drops what a refused client is still sending (the
// rest of an oversized header or body) until it goes quiet, before the
// refusal is written and the connection closed: closing with unread bytes
// makes the kernel reset the connection, and the reset can destroy the
// refusal before the client reads it. net/http and nginx linger likewise.
func drainRefused(c net.Conn) {
	if c == nil {
		return
	}
	buf := make([]byte, 16<<10)
	end := time.Now().Add(drainTotal)
	for n := 0; n < drainMax; {
		d := time.Now().Add(drainQuiet)
		if d.After(end) {
			d = end
		}
		_ = c.SetReadDeadline(d)
		k, err := c.Read(buf)
		n += k
		if err != nil {
			break
		}
	}
	_ = c.SetReadDeadline(time.Time{})
}

type fastLogger struct{ l *slog.Logger }

func (l fastLogger) Printf(format string, args ...any) {
	l.l.Debug("fasthttp", slog.String("msg", strings.TrimSpace(format)))
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

func (f *fastFront) serve(ctx *fasthttp.RequestCtx) {
	g := f.g
	g.m.inflight.Inc()
	ex := f.exchanges.Get().(*Exchange)
	*ex = Exchange{ID: g.ids.next(), Start: ctx.Time()} // read by the server as the request came: no second clock read
	defer func() {
		if r := recover(); r != nil {
			g.m.panics.Inc()
			g.log.Error("panic serving request", slog.String("request_id", ex.ID), slog.Any("panic", r))
			ctx.Response.Reset()
			fastJSON(&ctx.Response, 500, errorBody("internal error", ex.ID))
		}
		g.m.countRequest(0, ctx.Response.StatusCode())
		g.m.inflight.Dec()
		f.exchanges.Put(ex)
	}()
	p := g.pipeline()
	req := &ctx.Request
	peer := peerAddr(ctx.RemoteAddr())
	if !f.admitRequest(ctx, p, req, &ctx.Response, peer, ex) {
		return
	}
	// An inspected route's answer is never relayed raw (shape.go): the
	// request goes as a plain one, its Connection and Upgrade dropped.
	upgrade := !ex.Inspect && isUpgrade(b2s(req.Header.Peek("Connection")))
	upProto := b2s(req.Header.Peek("Upgrade"))
	f.prepare(req, p, peer, ex, upgrade, nil)
	if upgrade && upProto != "" {
		f.upgrade(ctx, ex, upProto)
		return
	}
	// An answer nothing inspects is streamed to the client as it comes, at
	// any size; an inspected one is read whole, up to max_body_bytes (the
	// fasthttp client refuses it past that: 502).
	ctx.Response.StreamBody = !ex.Inspect
	start := time.Now()
	err := f.client.DoTimeout(req, &ctx.Response, f.cfg.Upstream.ResponseHeaderTimeout)
	took := time.Since(start)
	g.m.upstream.Observe(took.Seconds())
	if err != nil {
		f.upstreamError(&ctx.Response, ex, err)
		return
	}
	f.answer(ctx, p, ex, &ctx.Response, start.Add(took)) // now, without reading the clock again
}

// admitRequest puts the request's path in canonical form, identifies and
// admits it. It returns false when resp holds warden's answer instead.
func (f *fastFront) admitRequest(ctx context.Context, p *Pipeline, req *fasthttp.Request, resp *fasthttp.Response,
	peer netip.Addr, ex *Exchange) bool {
	if req.Header.IsConnect() {
		fastJSON(resp, 405, errorBody("CONNECT not supported", ex.ID))
		return false
	}
	ex.Method = methodString(req.Header.Method())
	raw := b2s(req.URI().PathOriginal())
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[:i]
	}
	path, err := canonPath(raw, f.cfg.Server.EncodedSlashes == "keep")
	if err != nil {
		f.g.m.badReqs.WithLabelValues(f.label, "ambiguous_path").Inc()
		fastJSON(resp, 400, errorBody(err.Error(), ex.ID))
		return false
	}
	if path != raw {
		req.URI().SetPath(path) // the upstream gets the path warden matched
		ex.Path = path
	} else {
		ex.Path = string(raw)
	}
	ex.RawQuery = string(req.URI().QueryString())
	in := identify.Input{Peer: peer, Header: fastHeader{&req.Header}}
	if r := p.Begin(ctx, ex, &in); r != nil {
		fastRefuse(resp, r, ex.ID)
		return false
	}
	return true
}

// answer makes the upstream's answer in resp the client's: hop-by-hop
// headers out and, on an inspected route, rationed (rewritten, or replaced
// by a refusal). now is when the answer was read.
func (f *fastFront) answer(ctx context.Context, p *Pipeline, ex *Exchange, resp *fasthttp.Response, now time.Time) {
	stripHopResponse(&resp.Header)
	if !ex.Inspect {
		return
	}
	dst := f.bodies.Get().(*[]byte)
	out, ref := p.Finish(ctx, ex, now, Answer{
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
	f.bodies.Put(dst)
	if ref != nil {
		resp.Reset()
		fastRefuse(resp, ref, ex.ID)
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
func (f *fastFront) prepare(req *fasthttp.Request, p *Pipeline, peer netip.Addr, ex *Exchange, upgrade bool, lines *[]byte) {
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
	if sc.underscore && f.cfg.Server.UnderscoreHeaders == "drop" {
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
	p.setForwarded(fwd, peer, peerString(peer, &ex.Identity), "http", b2s(h.Host()), ex.ID)
	req.SetHost(f.upHost)
	req.URI().SetScheme(p.upstream.Scheme)
}

func stripHopResponse(h *fasthttp.ResponseHeader) {
	if c := h.Peek("Connection"); len(c) > 0 {
		connectionTokens(string(c), func(name string) { h.Del(name) })
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

func (f *fastFront) upstreamError(resp *fasthttp.Response, ex *Exchange, err error) {
	resp.Reset()
	status, kind, msg := 502, "unreachable", "upstream unreachable"
	switch {
	case errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout):
		status, kind, msg = 504, "timeout", "upstream timed out"
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		kind, msg = "too_large", "upstream answer too large"
	}
	f.g.m.upErrors.WithLabelValues(kind).Inc()
	f.g.log.Warn("upstream error", slog.String("request_id", ex.ID), slog.String("kind", kind), slog.String("error", err.Error()))
	fastJSON(resp, status, errorBody(msg, ex.ID))
}

func fastRefuse(resp *fasthttp.Response, r *Refusal, id string) {
	if r.RetryAfter > 0 {
		resp.Header.Set("Retry-After", r.RetryAfterSeconds())
	}
	if r.Policy != "" {
		resp.Header.Set("RateLimit-Policy", r.Policy)
		resp.Header.Set("RateLimit", r.State)
	}
	if r.Challenge != "" {
		resp.Header.Set("WWW-Authenticate", r.Challenge)
	}
	resp.Header.Set("X-Request-Id", id)
	fastJSON(resp, r.Status, r.Body(id))
}

func fastJSON(resp *fasthttp.Response, status int, body []byte) {
	resp.SetStatusCode(status)
	resp.Header.SetContentType("application/json")
	resp.SetBody(body)
}

// upgrade relays an Upgrade request (WebSocket and the like) byte for byte
// once admitted: the request goes to a fresh upstream connection, then both
// directions are copied until either side closes.
func (f *fastFront) upgrade(ctx *fasthttp.RequestCtx, ex *Exchange, proto string) {
	up, err := net.DialTimeout("tcp", f.client.Addr, f.cfg.Upstream.DialTimeout)
	if err != nil {
		f.upstreamError(&ctx.Response, ex, err)
		return
	}
	var req fasthttp.Request
	ctx.Request.CopyTo(&req)
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		c = unwrapConn(c)
		defer up.Close()
		w := bufio.NewWriter(up)
		if err := req.Write(w); err != nil || w.Flush() != nil {
			return
		}
		var done atomic.Bool
		go func() {
			_, _ = io.Copy(c, up)
			done.Store(true)
			_ = c.Close()
		}()
		_, _ = io.Copy(up, c)
		if tc, ok := up.(*net.TCPConn); ok && !done.Load() {
			_ = tc.CloseWrite()
		}
	})
	_ = proto
}
