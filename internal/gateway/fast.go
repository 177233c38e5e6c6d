package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/identify"
)

// fastFront serves cleartext HTTP/1.1 with fasthttp, a goroutine per
// connection: the front for an https upstream, and what the loop front
// hands over.
type fastFront struct {
	*h1
	srv    *fasthttp.Server
	client *fasthttp.HostClient
	slack  time.Duration // of connection deadlines (coarseConn)
	upTLS  *tls.Config   // an https upstream's; nil: cleartext

	// The listeners Serve was given and whether shutdown began: fasthttp's
	// shutdown closes only the listeners its Serve has taken, so a Serve
	// that came after it (or raced it) would accept for ever.
	lnMu    sync.Mutex
	lns     []net.Listener
	closing bool
}

// dialUpstream opens an upstream connection for the client, its reads and
// deadlines through a coarseConn (idleReads: the header's deadline fixed,
// then each wait for more of the body). To an https upstream the TLS is
// done here, under the coarseConn, so that it reads the answer's bytes,
// not TLS records (in which it would look for the header's end in vain);
// fasthttp takes a connection that has a Handshake method as one already
// secured.
func (f *fastFront) dialUpstream(addr string) (net.Conn, error) {
	c, err := f.dialPlain(addr)
	if err != nil {
		return nil, err
	}
	cc := &coarseConn{Conn: c, slack: f.slack, idleReads: true}
	if f.upTLS == nil {
		return cc, nil
	}
	return securedConn{cc}, nil
}

// dialPlain opens a connection to the upstream that carries HTTP as
// written: to an https upstream, with its TLS handshake done (within
// dial_timeout).
func (f *fastFront) dialPlain(addr string) (net.Conn, error) {
	c, err := fasthttp.DialTimeout(addr, f.cfg.Upstream.DialTimeout)
	if err != nil || f.upTLS == nil {
		return c, err
	}
	tc := tls.Client(c, f.upTLS)
	_ = tc.SetDeadline(time.Now().Add(f.cfg.Upstream.DialTimeout))
	if err := tc.Handshake(); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("tls handshake with %s: %w", addr, err)
	}
	_ = tc.SetDeadline(time.Time{})
	return tc, nil
}

// securedConn is a coarseConn over a TLS connection whose handshake is
// done: its Handshake method tells fasthttp not to wrap it in TLS again.
type securedConn struct{ *coarseConn }

func (securedConn) Handshake() error { return nil }

// newFastFront builds the fast front; name is the front its requests
// count as (the loop's, for the connections the loop hands over).
func newFastFront(g *Gateway, cfg *config.Config, name frontName) *fastFront {
	f := &fastFront{h1: newH1(g, cfg, name)}
	f.slack = deadlineSlack(cfg.Server.ReadHeaderTimeout, cfg.Server.ReadTimeout, cfg.Server.WriteTimeout,
		cfg.Server.IdleTimeout, cfg.Upstream.ResponseHeaderTimeout)
	up := g.pipeline().upstream
	f.client = &fasthttp.HostClient{
		Addr:  hostPort(up.Host, up.Scheme),
		IsTLS: up.Scheme == "https",
		// No Name: fasthttp sends it as the User-Agent of a request
		// that has none, and the upstream is to see the client's as sent.
		NoDefaultUserAgentHeader: true,
		MaxConns:                 maxConns(cfg.Upstream),
		// Most recently used first: a busy gateway keeps reusing the same
		// warm connections, and the idle ones beyond them age out.
		ConnPoolStrategy:       fasthttp.LIFO,
		MaxIdleConnDuration:    cfg.Upstream.IdleTimeout,
		MaxConnWaitTimeout:     cfg.Upstream.ResponseHeaderTimeout,
		MaxResponseBodySize:    cfg.Server.MaxBodyBytes,
		DisablePathNormalizing: true,
		Dial:                   f.dialUpstream,
	}
	if f.client.IsTLS {
		// As fasthttp's own: the host's name checked, sessions resumed.
		host, _, _ := net.SplitHostPort(f.client.Addr)
		f.upTLS = &tls.Config{ServerName: host, ClientSessionCache: tls.NewLRUClientSessionCache(0)}
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
		// Reading a request is bounded as the loop front bounds it: its
		// header by read_header_timeout, from the connection's start for
		// the first request (fasthttp arms ReadTimeout at accept, as
		// net/http does) and from the first byte after idle_timeout's wait
		// for a later one; its body by read_timeout from the header's end
		// (HeaderReceived). With ReadTimeout at read_timeout, a client
		// sending its header a byte at a time held a connection and a
		// goroutine for a minute, and enough of them shut the gateway
		// (slow-loris).
		ReadTimeout:        headerTimeout(cfg),
		WriteTimeout:       cfg.Server.WriteTimeout,
		IdleTimeout:        cfg.Server.IdleTimeout,
		ReadBufferSize:     cfg.Server.MaxHeaderBytes,
		MaxRequestBodySize: cfg.Server.MaxBodyBytes,
		CloseOnShutdown:    true,
		Logger:             fastLogger{g.log},
		ErrorHandler:       f.badRequest,
		// The body's deadline, set once the header is in (a zero
		// ReadTimeout leaves the header's in force). A request with no
		// body (no Content-Length, or 0, and not chunked: fasthttp reads
		// none) reads nothing more, so its header's deadline stands and the
		// connection's timer is not moved once more per request.
		HeaderReceived: func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
			if n := h.ContentLength(); n == 0 || n == -2 {
				return fasthttp.RequestConfig{}
			}
			return fasthttp.RequestConfig{ReadTimeout: cfg.Server.ReadTimeout}
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
	f.lnMu.Lock()
	if f.closing {
		f.lnMu.Unlock()
		return errServerClosed
	}
	f.lns = append(f.lns, ln)
	f.lnMu.Unlock()
	return f.srv.Serve(coarseListener{Listener: ln, slack: f.slack, idle: f.cfg.Server.IdleTimeout, header: headerTimeout(f.cfg)})
}

// shutdown lets fasthttp drain, then closes the listeners it was given,
// so that a Serve fasthttp's shutdown did not see yet returns too.
func (f *fastFront) shutdown(ctx context.Context) error {
	f.lnMu.Lock()
	f.closing = true
	f.lnMu.Unlock()
	err := f.srv.ShutdownWithContext(ctx)
	f.lnMu.Lock()
	for _, ln := range f.lns {
		_ = ln.Close()
	}
	f.lnMu.Unlock()
	return err
}

// badRequest answers what fasthttp's server refuses to parse (its
// ErrorHandler): the request never reaches serve, so it is counted here.
func (f *fastFront) badRequest(ctx *fasthttp.RequestCtx, err error) {
	status, reason, msg := fasthttp.StatusBadRequest, "malformed", "bad request"
	var te interface{ Timeout() bool }
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		status, reason, msg = fasthttp.StatusRequestEntityTooLarge, "body_too_large", "request body too large"
	case strings.Contains(err.Error(), "small read buffer"):
		status, reason, msg = fasthttp.StatusRequestHeaderFieldsTooLarge, "header_too_large", "request header too large"
	case errors.As(err, &te) && te.Timeout():
		if c, ok := ctx.Conn().(*coarseConn); ok && !c.heard {
			// Nothing of a request came within read_header_timeout:
			// no request to answer or record (a ledger entry per silent
			// connection would be an attacker's to write). Closed; the
			// answer fasthttp writes next goes nowhere.
			_ = c.Close()
			return
		}
		status, reason, msg = fasthttp.StatusRequestTimeout, "read_timeout", "request read timeout"
	}
	f.g.m.countRequest(f.front, status)
	if status != fasthttp.StatusRequestTimeout {
		drainRefused(ctx.Conn())
	}
	// An id even for what never became a request: the answer names it
	// like every other one, and the ledger records it.
	ex, in := f.unread(ctx, err)
	f.g.badRequest((*fastReply)(&ctx.Response), f.g.pipeline(), f.front, ex, &in, status, reason, msg)
	ctx.SetConnectionClose()
}

// unread is the exchange of a request fasthttp's server refused to read,
// as far as it was read: its peer and, for a body over the bound (the
// header was read whole), its method, path and header, so that the
// Access names the route and the identity as on any request (the header
// is ctx's: used before ctx is).
func (f *fastFront) unread(ctx *fasthttp.RequestCtx, err error) (*Exchange, identify.Input) {
	ex := &Exchange{ID: f.g.ids.next(), Start: time.Now()}
	in := identify.Input{Peer: peerAddr(ctx.RemoteAddr())}
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		h := &ctx.Request.Header
		in.Header = fastHeader{h}
		ex.Method = methodString(h.Method())
		if path, err := canonPath(rawPath(&ctx.Request), f.cfg.Server.EncodedSlashes == config.EncodedSlashesKeep); err == nil {
			ex.Path = path
		}
	}
	return ex, in
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
	if cc, ok := c.(*coarseConn); ok {
		cc.linger = true
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

func (f *fastFront) serve(ctx *fasthttp.RequestCtx) {
	g := f.g
	g.m.inflight.Inc()
	ex := f.newExchange(ctx.Time()) // read by the server as the request came: no second clock read
	defer func() {
		if r := recover(); r != nil {
			f.recovered(&ctx.Response, ex, r)
		}
		g.m.countRequest(f.front, ctx.Response.StatusCode())
		g.m.inflight.Dec()
		f.recycle(ex)
	}()
	p := g.pipeline()
	req := &ctx.Request
	peer := peerAddr(ctx.RemoteAddr())
	if !f.admit(ctx, p, req, &ctx.Response, peer, ex) {
		return
	}
	// An inspected route's answer is never relayed raw (shape.go): the
	// request goes as a plain one, its Connection and Upgrade dropped.
	upgrade := !ex.Inspect && isUpgrade(b2s(req.Header.Peek("Connection")))
	upgrade = upgrade && len(req.Header.Peek("Upgrade")) > 0
	f.prepare(req, p, peer, ex, upgrade, nil)
	if upgrade {
		f.upgrade(ctx, ex)
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
		f.upstreamFailed(&ctx.Response, ex, err)
		return
	}
	f.answer(ctx, p, ex, &ctx.Response)
}

// upgrade relays an Upgrade request (WebSocket and the like) byte for byte
// once admitted: the request goes to a fresh upstream connection and the
// answer's header is read within upstream.response_header_timeout of the
// send, as every answer's (past it, or failed, 504 or 502 as any upstream
// failure); then both directions are copied until either side closes.
func (f *fastFront) upgrade(ctx *fasthttp.RequestCtx, ex *Exchange) {
	deadline := time.Now().Add(f.cfg.Upstream.ResponseHeaderTimeout)
	up, err := f.dialPlain(f.client.Addr)
	if err == nil {
		_ = up.SetDeadline(deadline)
		var head []byte
		if head, err = upgradeExchange(up, &ctx.Request); err == nil {
			_ = up.SetDeadline(time.Time{}) // the relay's pace is the two ends'
			ctx.HijackSetNoResponse(true)
			ctx.Hijack(func(c net.Conn) { relay(unwrapConn(c), up, head) })
			return
		}
		_ = up.Close()
	}
	f.upstreamFailed(&ctx.Response, ex, err)
}

// upgradeExchange writes req on up and reads the answer's header, under
// the deadline set on up: head is what was read, the header and what
// followed it in the same read.
func upgradeExchange(up net.Conn, req *fasthttp.Request) (head []byte, err error) {
	w := bufio.NewWriter(up)
	if err := req.Write(w); err != nil {
		return nil, fmt.Errorf("upgrade request: %w", err)
	}
	if err := w.Flush(); err != nil {
		return nil, fmt.Errorf("upgrade request: %w", err)
	}
	var scan answerHeadScan
	buf := make([]byte, 4<<10)
	for len(head) <= loopAnswerHeader {
		n, err := up.Read(buf)
		head = append(head, buf[:n]...)
		if scan.end(buf[:n]) >= 0 {
			return head, nil
		}
		if err != nil {
			return nil, fmt.Errorf("upgrade answer header: %w", err)
		}
	}
	return nil, errAnswerHeaderTooLarge
}

// relay sends head to the client c, then copies both ways until either
// side closes.
func relay(c, up net.Conn, head []byte) {
	defer up.Close()
	if _, err := c.Write(head); err != nil {
		return
	}
	var done atomic.Bool
	go func() {
		_, _ = io.Copy(c, up)
		done.Store(true)
		_ = c.Close()
	}()
	_, _ = io.Copy(up, c)
	if cw, ok := up.(interface{ CloseWrite() error }); ok && !done.Load() {
		_ = cw.CloseWrite()
	}
}
