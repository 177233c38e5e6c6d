package dashboard

import (
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// loginLimit counts failed sign-ins per client address: past max within
// window (from the first failure), /login answers 429 with Retry-After,
// even to the right token (else the answer would tell a guesser when it
// is right, and the limit would not slow guessing), until the window has
// passed. The address is the connection's peer (RemoteAddr), never a
// header a client writes (X-Forwarded-For, X-Real-IP): the admin listener
// is reached directly. An IPv6 client counts by its /64, which one host
// is commonly given whole.
type loginLimit struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	cap    int // addresses kept; past it expired ones go, then the oldest
	fails  map[netip.Prefix]*loginFails
}

type loginFails struct {
	n     int
	start time.Time
}

// maxLoginAddrs bounds the addresses counted at once (about 100 bytes
// each): a flood of addresses evicts the oldest, never grows memory.
const maxLoginAddrs = 10_000

func newLoginLimit(max int, window time.Duration) *loginLimit {
	return &loginLimit{max: max, window: window, cap: maxLoginAddrs, fails: map[netip.Prefix]*loginFails{}}
}

// clientKey is what r's failures count under; ok false when the peer's
// address does not parse (then nothing is counted: a listener always
// gives one).
func clientKey(r *http.Request) (netip.Prefix, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Prefix{}, false
	}
	a := ap.Addr().Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, err := a.Prefix(bits)
	return p, err == nil
}

// blocked is how long k must still wait; 0 when it may try.
func (l *loginLimit) blocked(k netip.Prefix, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.fails[k]
	if f == nil {
		return 0
	}
	left := f.start.Add(l.window).Sub(now)
	if left <= 0 {
		delete(l.fails, k)
		return 0
	}
	if f.n < l.max {
		return 0
	}
	return left
}

// fail counts a failed sign-in of k.
func (l *loginLimit) fail(k netip.Prefix, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.fails[k]
	if f != nil && !now.Before(f.start.Add(l.window)) {
		f = nil
	}
	if f == nil {
		l.evict(now)
		f = &loginFails{start: now}
		l.fails[k] = f
	}
	f.n++
}

// evict makes room for one more address. Called with mu.
func (l *loginLimit) evict(now time.Time) {
	if len(l.fails) < l.cap {
		return
	}
	var oldest netip.Prefix
	var at time.Time
	for k, f := range l.fails {
		if !now.Before(f.start.Add(l.window)) {
			delete(l.fails, k)
			continue
		}
		if at.IsZero() || f.start.Before(at) {
			oldest, at = k, f.start
		}
	}
	if len(l.fails) >= l.cap {
		delete(l.fails, oldest)
	}
}

// succeed forgets k's failures.
func (l *loginLimit) succeed(k netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.fails, k)
}
