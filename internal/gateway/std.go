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
	"net/url"
	"strconv"
	"strings"
	"sync"
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
	hello sync.Map // raw net.Conn -> TLS ClientHello fingerprint
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
		MaxHeaderBytes:    cfg.Server.MaxHeaderBytes,
		Protocols:         &protos,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey, c)
		},
		ConnState: func(c net.Conn, s http.ConnState) {
			if s == http.StateClosed || s == http.StateHijacked {
				if tc, ok := c.(*tls.Conn); ok {
					f.hello.Delete(tc.NetConn())
				}
			}
		},
	}
	if cfg.TLS.Enabled() {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("gateway: tls: %w", err)
		}
		base := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
		base.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			f.hello.Store(h.Conn, identify.HelloFingerprint(h))
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
	return f.srv.Serve(ln)
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
			g.m.panics.Inc()
			g.log.Error("panic serving request", slog.String("request_id", ex.ID), slog.Any("panic", v))
			if rec.status == 0 {
				writeJSON(rec, 500, errorBody("internal error", ex.ID))
			}
		}
		g.m.countRequest(1, rec.code())
		g.m.inflight.Dec()
	}()
	if r.Method == http.MethodConnect {
		writeJSON(rec, 405, errorBody("CONNECT not supported", ex.ID))
		return
	}
	path, err := canonPath(r.URL.EscapedPath(), f.cfg.Server.EncodedSlashes == "keep")
	if err != nil {
		g.m.badReqs.WithLabelValues("std", "ambiguous_path").Inc()
		writeJSON(rec, 400, errorBody(err.Error(), ex.ID))
		return
	}
	ex.Path = path
	p := g.pipeline()
	in := identify.Input{Peer: remoteAddr(r.RemoteAddr), Header: stdHeader(r.Header)}
	if c, ok := r.Context().Value(connKey).(*tls.Conn); ok {
		if fp, ok := f.hello.Load(c.NetConn()); ok {
			in.TLSFingerprint = fp.(string)
		}
	}
	if ref := p.Begin(r.Context(), ex, &in); ref != nil {
		refuseStd(rec, ref, ex.ID)
		return
	}
	if limit := int64(f.cfg.Server.MaxBodyBytes); limit > 0 && r.Body != nil {
		// A declared length over the bound is refused before the upstream
		// sees a byte; a chunked body is streamed and cut at the bound, so
		// the upstream sees it end early (an error), never complete.
		if r.ContentLength > limit {
			f.g.m.badReqs.WithLabelValues("std", "body_too_large").Inc()
			writeJSON(rec, 413, errorBody("request body too large", ex.ID))
			return
		}
		r.Body = http.MaxBytesReader(rec, r.Body, limit)
	}
	ctx := context.WithValue(r.Context(), exchangeKey, &stdExchange{ex: ex, p: p, peer: in.Peer, tls: r.TLS != nil})
	f.proxy.ServeHTTP(rec, r.WithContext(ctx))
}

type stdExchange struct {
	ex    *Exchange
	p     *Pipeline
	peer  netip.Addr
	tls   bool
	start time.Time
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
	p.setForwarded(stdForward{pr}, sx.peer, peerString(sx.peer, &sx.ex.Identity), proto, pr.In.Host, sx.ex.ID)
	dropOverrides(stdForward{pr})
	if sx.ex.Strip != 0 {
		p.stripCredentials(stdForward{pr}, sx.ex)
	}
	if f.cfg.Server.UnderscoreHeaders == "drop" { // see config.Server
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
	if !sx.ex.Inspect || resp.StatusCode == http.StatusSwitchingProtocols {
		return nil
	}
	limit := int64(f.cfg.Server.MaxBodyBytes)
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("read upstream answer: %w", err)
	}
	if int64(len(body)) > limit {
		return errTooLarge
	}
	out, ref := sx.p.Finish(resp.Request.Context(), sx.ex, time.Now(), Answer{
		Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"),
		ContentEncoding: resp.Header.Get("Content-Encoding"), Body: body,
	})
	if ref != nil {
		resp.StatusCode = ref.Status
		resp.Status = strconv.Itoa(ref.Status) + " " + http.StatusText(ref.Status)
		resp.Header = http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {sx.ex.ID}}
		if ref.RetryAfter > 0 {
			resp.Header.Set("Retry-After", ref.RetryAfterSeconds())
		}
		body = ref.Body(sx.ex.ID)
	} else if out.Body != nil {
		body = out.Body
	}
	for _, h := range out.Header {
		resp.Header.Set(h.Name, h.Value)
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

var errTooLarge = errors.New("upstream answer too large")

func (f *stdFront) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	sx, _ := r.Context().Value(exchangeKey).(*stdExchange)
	id := ""
	if sx != nil {
		id = sx.ex.ID
	}
	status, kind, msg := 502, "unreachable", "upstream unreachable"
	var ne net.Error
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		// The client's fault, not the upstream's: counted with the other
		// refused bodies.
		f.g.m.badReqs.WithLabelValues("std", "body_too_large").Inc()
		writeJSON(w, 413, errorBody("request body too large", id))
		return
	case errors.Is(err, errTooLarge):
		kind, msg = "too_large", "upstream answer too large"
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		status, kind, msg = 504, "timeout", "upstream timed out"
	case errors.Is(err, context.Canceled):
		status, kind, msg = 499, "client_gone", "client closed request"
	}
	f.g.m.upErrors.WithLabelValues(kind).Inc()
	f.g.log.Warn("upstream error", slog.String("request_id", id), slog.String("kind", kind), slog.String("error", err.Error()))
	writeJSON(w, status, errorBody(msg, id))
}

func refuseStd(w http.ResponseWriter, r *Refusal, id string) {
	h := w.Header()
	if r.RetryAfter > 0 {
		h.Set("Retry-After", r.RetryAfterSeconds())
	}
	if r.Policy != "" {
		h.Set("RateLimit-Policy", r.Policy)
		h.Set("RateLimit", r.State)
	}
	if r.Challenge != "" {
		h.Set("WWW-Authenticate", r.Challenge)
	}
	h.Set("X-Request-Id", id)
	writeJSON(w, r.Status, r.Body(id))
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
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

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusRecorder) Flush() {
	if fl, ok := s.ResponseWriter.(http.Flusher); ok {
		fl.Flush()
	}
}
