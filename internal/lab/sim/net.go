package sim

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// addr returns the i-th source address of a population's block: 127.B.x.y
// with B fixed per scenario, spread over nets /24s (i-th address in the
// (i mod nets)-th /24), hosts from .1 to .254.
func addr(block byte, i, nets int) netip.Addr {
	if nets < 1 {
		nets = 1
	}
	if nets > 256 {
		nets = 256
	}
	n := i % nets
	h := 1 + (i/nets)%254
	return netip.AddrFrom4([4]byte{127, block, byte(n), byte(h)})
}

type srcKey struct{}

// network hands out HTTP clients by source address. Keep-alive clients get
// one Transport per address, at most maxKeep of them; clients that rotate
// addresses share one Transport without keep-alive whose dialer takes the
// source address from the request's context, so thousands of addresses
// cost no more than one.
type network struct {
	timeout  time.Duration
	tls      *tls.Config // an https target's: the roots it is verified with
	rotating *http.Client

	mu      sync.Mutex
	keep    map[netip.Addr]*http.Client
	maxKeep int
}

func newNetwork(timeout time.Duration, roots *x509.CertPool) *network {
	d := &net.Dialer{Timeout: 5 * time.Second}
	tc := &tls.Config{RootCAs: roots} // nil roots: the system's
	rt := &http.Transport{
		TLSClientConfig: tc,
		DialContext: func(ctx context.Context, nw, a string) (net.Conn, error) {
			dd := *d
			if src, ok := ctx.Value(srcKey{}).(netip.Addr); ok {
				dd.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
			}
			return dd.DialContext(ctx, nw, a)
		},
		DisableKeepAlives:   true,
		MaxIdleConnsPerHost: -1,
	}
	return &network{
		timeout:  timeout,
		tls:      tc,
		rotating: &http.Client{Transport: rt, Timeout: timeout},
		keep:     make(map[netip.Addr]*http.Client),
		maxKeep:  1024,
	}
}

// client returns the client for src and the context to send with.
func (n *network) client(ctx context.Context, src netip.Addr, keepAlive bool) (*http.Client, context.Context) {
	if keepAlive {
		n.mu.Lock()
		c, ok := n.keep[src]
		if !ok && len(n.keep) < n.maxKeep {
			d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: src.AsSlice()}}
			c = &http.Client{Timeout: n.timeout, Transport: &http.Transport{
				TLSClientConfig:     n.tls,
				DialContext:         d.DialContext,
				MaxIdleConnsPerHost: 64,
				IdleConnTimeout:     90 * time.Second,
			}}
			n.keep[src] = c
			ok = true
		}
		n.mu.Unlock()
		if ok {
			return c, ctx
		}
	}
	return n.rotating, context.WithValue(ctx, srcKey{}, src)
}

func (n *network) close() {
	n.rotating.CloseIdleConnections()
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range n.keep {
		c.CloseIdleConnections()
	}
}
