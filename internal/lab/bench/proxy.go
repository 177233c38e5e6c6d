package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// NewProxy is row (b): Go's httputil.ReverseProxy with no logic, tuned the
// way a careful Go proxy would be (one shared Transport keeping enough idle
// upstream connections, a buffer pool), so the row is the ceiling of the
// standard library's path rather than a strawman.
func NewProxy(upstream string) (http.Handler, error) {
	u, err := upstreamURL(upstream)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.SetXForwarded()
			r.Out.Host = r.In.Host
		},
		Transport:  tr,
		BufferPool: &bufPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}},
	}
	return rp, nil
}

type bufPool struct{ p sync.Pool }

func (b *bufPool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bufPool) Put(x []byte) { b.p.Put(&x) }

// ServeProxy serves the proxy on ln until ctx ends.
func ServeProxy(ctx context.Context, ln net.Listener, upstream string) error {
	h, err := NewProxy(upstream)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	return serveUntil(ctx, "proxy", func() error { return srv.Serve(ln) }, srv.Shutdown, http.ErrServerClosed)
}

// upstreamURL parses a proxy's upstream, which must be http://host:port.
func upstreamURL(upstream string) (*url.URL, error) {
	u, err := url.Parse(upstream)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("bench: proxy upstream %q: want http://host:port", upstream)
	}
	return u, nil
}

// serveUntil runs serve until it fails or ctx ends, then shuts the server
// down with 5 s of grace. closed is what serve returns after a shutdown
// (nil when it returns nil).
func serveUntil(ctx context.Context, name string, serve func() error, shutdown func(context.Context) error, closed error) error {
	errc := make(chan error, 1)
	go func() { errc <- serve() }()
	select {
	case err := <-errc:
		return fmt.Errorf("bench: %s: %w", name, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = shutdown(sctx)
	if err := <-errc; err != nil && (closed == nil || !errors.Is(err, closed)) {
		return fmt.Errorf("bench: %s: %w", name, err)
	}
	return nil
}

// ServeFastProxy is row (b-fast): fasthttp, warden's cleartext front, as a
// bare reverse proxy (one HostClient, the same timeouts warden sets, no
// logic). Beside row (d) it shows what warden's own work costs per request
// over the HTTP library it is built on.
func ServeFastProxy(ctx context.Context, ln net.Listener, upstream string) error {
	u, err := upstreamURL(upstream)
	if err != nil {
		return err
	}
	c := &fasthttp.HostClient{Addr: u.Host, MaxConns: 1024, DisableHeaderNamesNormalizing: true, DisablePathNormalizing: true}
	srv := &fasthttp.Server{
		DisableHeaderNamesNormalizing: true,
		ReadTimeout:                   30 * time.Second,
		WriteTimeout:                  30 * time.Second,
		IdleTimeout:                   120 * time.Second,
		Handler: func(rc *fasthttp.RequestCtx) {
			if err := c.Do(&rc.Request, &rc.Response); err != nil {
				rc.Error("bad gateway", fasthttp.StatusBadGateway)
			}
		},
	}
	return serveUntil(ctx, "fast proxy", func() error { return srv.Serve(ln) }, srv.ShutdownWithContext, nil)
}
