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
	u, err := url.Parse(upstream)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("bench: proxy upstream %q: want http://host:port", upstream)
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
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("bench: proxy: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("bench: proxy: %w", err)
	}
	return nil
}

// ServeFastProxy is row (b-fast): fasthttp, warden's cleartext front, as a
// bare reverse proxy (one HostClient, the same timeouts warden sets, no
// logic). Beside row (d) it shows what warden's own work costs per request
// over the HTTP library it is built on.
func ServeFastProxy(ctx context.Context, ln net.Listener, upstream string) error {
	u, err := url.Parse(upstream)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("bench: fast proxy upstream %q: want http://host:port", upstream)
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
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("bench: fast proxy: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.ShutdownWithContext(sctx)
	if err := <-errc; err != nil {
		return fmt.Errorf("bench: fast proxy: %w", err)
	}
	return nil
}
