package dashboard

import (
	"net/http"
	"net/netip"
	"testing"
	"time"
)

// The sign-in limit keeps at most cap addresses (the oldest go first), and
// counts an IPv6 client by its /64.
func TestLoginLimitBounds(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	key := func(remote string) netip.Prefix {
		k, ok := clientKey(&http.Request{RemoteAddr: remote})
		if !ok {
			t.Fatalf("%s: no key", remote)
		}
		return k
	}
	l := newLoginLimit(2, time.Minute)
	l.cap = 3
	v6a, v6b := key("[2001:db8:1:2::1]:4000"), key("[2001:db8:1:2:ffff::9]:5000")
	if v6a != v6b {
		t.Fatalf("two addresses of one /64: %v, %v", v6a, v6b)
	}
	l.fail(v6a, now)
	l.fail(v6b, now)
	if l.blocked(v6a, now) == 0 {
		t.Fatal("two failures from one /64 did not hold it back")
	}
	if k := key("[::ffff:10.0.0.1]:1"); k != key("10.0.0.1:2") {
		t.Fatalf("an IPv4-mapped address counts apart: %v", k)
	}
	for i := range 5 {
		l.fail(key(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}).String()+":1"), now.Add(time.Duration(i+1)*time.Second))
	}
	if len(l.fails) > 3 {
		t.Fatalf("%d addresses kept, cap 3", len(l.fails))
	}
	if _, ok := l.fails[v6a]; ok {
		t.Fatal("the oldest address was kept past the cap")
	}
}
