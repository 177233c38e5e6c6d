package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/identify"
)

var errServerClosed = http.ErrServerClosed

// stdFront serves with net/http: TLS with HTTP/2 (ALPN), h2c, streaming
// bodies, and upgrades through httputil.ReverseProxy.
type stdFront struct {
	g     *Gateway
	cfg   *config.Config
	srv   *http.Server
	proxy *httputil.ReverseProxy
	hello sync.Map // raw net.Conn -> *tlsConnState
}

type ctxKey int

const exchangeKey ctxKey = 0

func newStdFront(g *Gateway, cfg *config.Config) (*stdFront, error) {
	f := &stdFront{g: g, cfg: cfg}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: cfg.Upstream.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          cfg.Upstream.IdleConns,
		MaxIdleConnsPerHost:   cfg.Upstream.IdleConns,
		MaxConnsPerHost:       cfg.Upstream.MaxConns,
		IdleConnTimeout:       cfg.Upstream.IdleTimeout,
		ResponseHeaderTimeout: cfg.Upstream.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true, // the client's Accept-Encoding goes through untouched
		ForceAttemptHTTP2:     false,
	}
	f.proxy = &httputil.ReverseProxy{
		Rewrite:        f.rewrite,
		Transport:      tr,
		FlushInterval:  -1, // stream: flush as bytes arrive
		BufferPool:     bufferPool{},
		ModifyResponse: f.modifyResponse,
		ErrorHandler:   f.errorHandler,
		ErrorLog:       slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	protos.SetUnencryptedHTTP2(!cfg.TLS.Enabled())
	f.srv = &http.Server{
		Handler:           f,
		ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout,
		ReadTimeout:       cfg.Server.ReadTimeout,
		WriteTimeout:      cfg.Server.WriteTimeout,
		IdleTimeout:       cfg.Server.IdleTimeout,
		// warden checks the bound itself (stdHeaderSize), answering its
		// own 431, up to where net/http answers one in text.
		MaxHeaderBytes: cfg.Server.MaxHeaderBytes + stdHeaderSlack,
		// OPTIONS * reaches warden, as on the other fronts (canonPath
		// takes "*"): net/http's own 200 for it, written before any
		// handler, is nothing warden decided, and stdConn would take it
		// for one of net/http's refusals.
		DisableGeneralOptionsHandler: true,
		Protocols:                    &protos,
		ErrorLog:                     slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey, c)
		},
		ConnState: f.connState,
	}
	if cfg.TLS.Enabled() {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("gateway: tls: %w", err)
		}
		base := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
		base.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			f.hello.Store(h.Conn, &tlsConnState{fp: identify.HelloFingerprint(h)})
			return nil, nil
		}
		f.srv.TLSConfig = base
	}
	return f, nil
}

const connKey ctxKey = 1

func (f *stdFront) serveListener(ln net.Listener) error {
	if f.cfg.TLS.Enabled() {
		return f.srv.ServeTLS(ln, "", "")
	}
	return f.srv.Serve(stdListener{Listener: ln, f: f}) // net/http's own answers made warden's (stdedge.go)
}

func (f *stdFront) shutdown(ctx context.Context) error { return f.srv.Shutdown(ctx) }

type bufferPool struct{}

var proxyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *(proxyBufs.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { proxyBufs.Put(&b) }

// stdHeader adapts http.Header. net/http keeps no wire order, so Names
// visits names sorted (documented in identify's fingerprint).
type stdHeader http.Header

func (h stdHeader) Peek(name string) string { return http.Header(h).Get(name) }
func (h stdHeader) Values(name string, fn func(string)) {
	for _, v := range http.Header(h).Values(name) {
		fn(v)
	}
}
func (h stdHeader) Count(name string) int { return len(http.Header(h).Values(name)) }
func (h stdHeader) Names(fn func(string)) {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sortStrings(names)
	for _, n := range names {
		fn(n)
	}
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func (f *stdFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g := f.g
	g.m.inflight.Inc()
	ex := &Exchange{ID: g.ids.next(), Start: time.Now(), Method: r.Method, RawQuery: r.URL.RawQuery}
	rec := &statusRecorder{ResponseWriter: w}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			var w replyWriter // nil once the answer has begun
			if rec.status == 0 {
				w = rec
			}
			g.recovered(w, ex, v)
		}
		g.m.countRequest(frontStd, rec.code())
		g.m.inflight.Dec()
	}()
	p := g.pipeline()
	in := identify.Input{Peer: remoteAddr(r.RemoteAddr), Header: stdHeader(r.Header)}
	switch c := r.Context().Value(connKey).(type) {
	case *tls.Conn:
		if v, ok := f.hello.Load(c.NetConn()); ok {
			st := v.(*tlsConnState)
			in.TLSFingerprint = st.fp
			st.pending.Store(false) // the request net/http read reached warden (stdedge.go)
		}
	case *stdConn:
		c.served.Store(true) // what is written now is the handler's (stdedge.go)
		if r.ProtoMajor == 2 {
			// h2c: its preface may have come split, unseen by Read; before
			// a first stream its server writes no DATA that could spell
			// an HTTP/1 answer.
			c.h2.Store(true)
		}
	}
	if stdHeaderSize(r) > f.cfg.Server.MaxHeaderBytes {
		// As the other fronts, which read none of such a header: the
		// peer alone, and the connection closes after the answer.
		w.Header().Set("Connection", "close")
		g.badRequest(rec, p, frontStd, ex, &identify.Input{Peer: in.Peer}, 431, "header_too_large", "request header too large")
		return
	}
	// Over HTTP/1 net/http answered such a request 417 itself (stdConn
	// makes that warden's on a cleartext connection); HTTP/2 hands it on.
	if g.expectationFailed(rec, p, frontStd, ex, &in, r.Header.Get("Expect")) {
		return
	}
	path, ok := g.requestPath(rec, p, frontStd, ex, &in, r.Method == http.MethodConnect, r.URL.EscapedPath(),
		f.cfg.Server.EncodedSlashes == config.EncodedSlashesKeep)
	if !ok {
		return
	}
	ex.Path = path
	if ref := p.Begin(r.Context(), ex, &in); ref != nil {
		writeRefusal(rec, ref, ex.ID)
		return
	}
	if ex.Local != nil {
		writeLocal(rec, ex.Local, ex.ID)
		return
	}
	if limit := int64(f.cfg.Server.MaxBodyBytes); limit > 0 && r.Body != nil {
		// A declared length over the bound is refused before the upstream
		// sees a byte; a chunked body is streamed and cut at the bound, so
		// the upstream sees it end early (an error), never complete.
		if r.ContentLength > limit {
			g.badRequest(rec, p, frontStd, ex, &in, 413, "body_too_large", "request body too large")
			return
		}
		r.Body = http.MaxBytesReader(rec, r.Body, limit)
	}
	var body *clientBody
	if r.Body != nil && r.Body != http.NoBody {
		body = &clientBody{ReadCloser: r.Body}
		r.Body = body
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	ctx = context.WithValue(ctx, exchangeKey, &stdExchange{ex: ex, p: p, peer: in.Peer, tls: r.TLS != nil, cancel: cancel, body: body})
	f.proxy.ServeHTTP(rec, r.WithContext(ctx))
}

// errStalled is why an upstream answer was cut: its body stopped coming
// for upstream.response_header_timeout. A timeout: 504, rule upstream,
// when nothing of the answer was sent yet.
var errStalled error = stalledError{}

type stalledError struct{}

func (stalledError) Error() string   { return "upstream answer stalled" }
func (stalledError) Timeout() bool   { return true }
func (stalledError) Temporary() bool { return true }

// stallBody bounds each wait of a Read of an upstream answer's body, as
// the loop and fast fronts bound each wait for more of it: net/http's
// Transport bounds only the header (ResponseHeaderTimeout). Past the bound
// the request's context is cancelled with errStalled, which ends the read.
type stallBody struct {
	io.ReadCloser
	d time.Duration
	t *time.Timer
}

func newStallBody(body io.ReadCloser, d time.Duration, cancel context.CancelCauseFunc) *stallBody {
	t := time.AfterFunc(d, func() { cancel(errStalled) })
	t.Stop()
	return &stallBody{ReadCloser: body, d: d, t: t}
}

func (b *stallBody) Read(p []byte) (int, error) {
	b.t.Reset(b.d)
	n, err := b.ReadCloser.Read(p)
	b.t.Stop()
	return n, err
}

func (b *stallBody) Close() error {
	b.t.Stop()
	return b.ReadCloser.Close()
}

type stdExchange struct {
	ex    *Exchange
	p     *Pipeline
	peer  netip.Addr
	tls   bool
	start time.Time
	// cancel ends the upstream exchange: stallBody's, with errStalled.
	cancel context.CancelCauseFunc
	// body is the client's request body (nil: none), which tells a
	// proxying that failed on reading it from one the upstream failed.
	body *clientBody
}

// clientBody is a client's request body that remembers why reading it
// failed. The Transport reads it while sending the request and reports a
// failed read as the round trip's error, as it does the upstream's: a body
// that stalled past read_timeout was answered 504 and a malformed chunked
// body 502, both counted as the upstream's failures, where the fast and
// loop fronts answer 408 and 400.
type clientBody struct {
	io.ReadCloser
	err atomic.Pointer[error] // the first failed read's, but io.EOF
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		b.err.CompareAndSwap(nil, &err)
	}
	return n, err
}

// failed is the error reading the body failed with, nil when it did not.
func (b *clientBody) failed() error {
	if b == nil {
		return nil
	}
	if e := b.err.Load(); e != nil {
		return *e
	}
	return nil
}

func remoteAddr(s string) netip.Addr {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func (f *stdFront) rewrite(pr *httputil.ProxyRequest) {
	sx := pr.In.Context().Value(exchangeKey).(*stdExchange)
	p := sx.p
	pr.SetURL(p.upstream)
	// The path warden matched, canonical: valid escapes by construction.
	pr.Out.URL.Path, _ = url.PathUnescape(sx.ex.Path)
	pr.Out.URL.RawPath = sx.ex.Path
	proto := "http"
	if sx.tls {
		proto = "https"
	}
	ip := peerString(sx.peer, &sx.ex.Identity)
	p.setForwarded(stdForward{pr}, sx.peer, ip, clientString(&sx.ex.Identity, ip), proto, pr.In.Host, sx.ex.ID)
	dropOverrides(stdForward{pr})
	if sx.ex.Strip != 0 {
		p.stripCredentials(stdForward{pr}, sx.ex)
	}
	if f.cfg.Server.UnderscoreHeaders == config.UnderscoreHeadersDrop { // see config.Server
		for name := range pr.Out.Header {
			if strings.IndexByte(name, '_') >= 0 {
				delete(pr.Out.Header, name)
			}
		}
	}
	if sx.ex.Inspect { // an answer warden can read whole (shape.go)
		pr.Out.Header.Del("Upgrade")
		pr.Out.Header.Del("Connection")
		askReadable(stdForward{pr})
	}
	sx.start = time.Now()
}

// stdForward adapts a proxied request to forwardHeader: ReverseProxy drops
// the X-Forwarded-* headers from the outgoing copy, so prior reads the
// incoming request.
type stdForward struct{ pr *httputil.ProxyRequest }

func (x stdForward) prior(name string) string {
	return strings.Join(x.pr.In.Header.Values(name), ", ")
}

func (x stdForward) set(name, value string) { x.pr.Out.Header.Set(name, value) }
func (x stdForward) del(name string)        { x.pr.Out.Header.Del(name) }

func (f *stdFront) modifyResponse(resp *http.Response) error {
	sx := resp.Request.Context().Value(exchangeKey).(*stdExchange)
	f.g.m.upstream.Observe(time.Since(sx.start).Seconds())
	resp.Header.Set("X-Request-Id", sx.ex.ID) // as h1's answer: every answer names its request
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return nil
	}
	if d := f.cfg.Upstream.ResponseHeaderTimeout; d > 0 {
		resp.Body = newStallBody(resp.Body, d, sx.cancel)
	}
	if !sx.ex.Inspect {
		return nil
	}
	limit := int64(f.cfg.Server.MaxBodyBytes)
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	resp.Body.Close()
	if err != nil {
		if cause := context.Cause(resp.Request.Context()); cause == errStalled {
			err = cause
		}
		return fmt.Errorf("read upstream answer: %w", err)
	}
	if int64(len(body)) > limit {
		return errTooLarge
	}
	out, ref := sx.p.Finish(resp.Request.Context(), sx.ex, Answer{
		Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"),
		ContentEncoding: resp.Header.Get("Content-Encoding"), Body: body,
	})
	if ref != nil {
		// The upstream's answer is replaced, headers and all.
		resp.Header = http.Header{}
		writeRefusal((*proxiedReply)(resp), ref, sx.ex.ID)
		return nil
	}
	if out.Body != nil {
		body = out.Body
	}
	for _, h := range out.Header {
		resp.Header.Set(h.Name, h.Value)
	}
	setBody(resp, body)
	return nil
}

// setBody makes body resp's, read whole.
func setBody(resp *http.Response, body []byte) {
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
}

func (f *stdFront) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	sx, _ := r.Context().Value(exchangeKey).(*stdExchange)
	var ex *Exchange
	if sx != nil {
		ex = sx.ex
	}
	rec, ok := w.(*statusRecorder)
	if !ok {
		rec = &statusRecorder{ResponseWriter: w}
	}
	if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
		// The client's fault, not the upstream's: counted with the other
		// refused bodies.
		f.g.badRequest(rec, f.g.pipeline(), frontStd, ex, nil, 413, "body_too_large", "request body too large")
		return
	}
	if sx != nil {
		// The client's body failed, not the upstream: answered as the fast
		// front answers it. A client that left mid-body (a cut or reset
		// connection) stays the client_gone it was.
		var ne net.Error
		switch berr := sx.body.failed(); {
		case berr == nil:
		case errors.As(berr, &ne) && ne.Timeout():
			f.g.badRequest(rec, f.g.pipeline(), frontStd, ex, nil, http.StatusRequestTimeout, "read_timeout", "request read timeout")
			return
		case !errors.Is(berr, io.ErrUnexpectedEOF) && !errors.As(berr, &ne):
			// net/http's chunked reader: a malformed chunk.
			f.g.badRequest(rec, f.g.pipeline(), frontStd, ex, nil, http.StatusBadRequest, "malformed", "bad request")
			return
		}
	}
	f.g.upstreamFailed(rec, frontStd, ex, err)
}

// proxiedReply writes warden's own answer into a proxied response, in
// place of the upstream's (ModifyResponse).
type proxiedReply http.Response

// setHeader canonicalises name: ReverseProxy copies the answer's header
// with Add, which would anyway. (The refusals with names spelt otherwise,
// rate limits and credentials, come at admission, through statusRecorder.)
func (r *proxiedReply) setHeader(name, value string) { r.Header.Set(name, value) }

func (r *proxiedReply) writeJSON(status int, body []byte) {
	resp := (*http.Response)(r)
	resp.StatusCode = status
	resp.Status = strconv.Itoa(status) + " " + http.StatusText(status)
	resp.Header.Set("Content-Type", "application/json")
	setBody(resp, body)
}

// statusRecorder remembers the status for metrics; it passes Flush and
// Hijack through (ReverseProxy needs both: streaming and upgrades).
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(c int) {
	if s.status == 0 {
		s.status = c
	}
	s.ResponseWriter.WriteHeader(c)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = 200
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) code() int {
	if s.status == 0 {
		return 200
	}
	return s.status
}

// setHeader sets name as written, as the fasthttp fronts send it
// (RateLimit-Policy, WWW-Authenticate): Set would canonicalise it to
// Ratelimit-Policy, and net/http writes a header's name as it is keyed.
// A name warden writes in canonical form (Content-Type, which net/http
// interprets) is set as usual.
func (s *statusRecorder) setHeader(name, value string) {
	h := s.Header()
	if ck := textproto.CanonicalMIMEHeaderKey(name); ck != name {
		delete(h, ck)
		h[name] = []string{value}
		return
	}
	h.Set(name, value)
}

func (s *statusRecorder) writeJSON(status int, body []byte) {
	h := s.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	s.WriteHeader(status)
	_, _ = s.Write(body)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) Flush() {
	if fl, ok := s.ResponseWriter.(http.Flusher); ok {
		fl.Flush()
	}
}

var (
	_ replyWriter = (*statusRecorder)(nil)
	_ replyWriter = (*proxiedReply)(nil)
)
