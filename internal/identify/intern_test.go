package identify

import (
	"fmt"
	"net/netip"
	"testing"
	"unsafe"
)

// TestIdentityOwnsItsStrings simulates a front whose header strings alias a
// buffer it reuses for the next request (fasthttp): what Identify keeps must
// not change when that buffer does.
func TestIdentityOwnsItsStrings(t *testing.T) {
	x := newTestIdentifier(t, Config{}, Options{})
	buf := []byte("app-original")
	alias := unsafe.String(&buf[0], len(buf))
	var id Identity
	x.Identify(testNow, &Input{Peer: netip.MustParseAddr("198.51.100.7"), Header: testHeader{"X-App-Key", alias}}, &id)
	copy(buf, "XXXXXXXXXXXX")
	if id.App != "app-original" {
		t.Fatalf("App changed with the front's buffer: %q", id.App)
	}
	// A second request with the same key gets the shared copy, still intact.
	buf2 := []byte("app-original")
	var id2 Identity
	x.Identify(testNow, &Input{Peer: netip.MustParseAddr("198.51.100.7"), Header: testHeader{"X-App-Key", unsafe.String(&buf2[0], len(buf2))}}, &id2)
	copy(buf2, "YYYYYYYYYYYY")
	if id2.App != "app-original" || id.App != "app-original" {
		t.Fatalf("interned App changed: %q, %q", id.App, id2.App)
	}
}

func TestInternTableBounded(t *testing.T) {
	it := newInternTable(8)
	for i := range 1000 {
		s := fmt.Sprintf("key-%d", i)
		if got := it.str(s); got != s {
			t.Fatalf("str(%q) = %q", s, got)
		}
	}
	n := 0
	for i := range it.slots {
		if it.slots[i].Load() != nil {
			n++
		}
	}
	if n > 8 {
		t.Fatalf("%d slots used, want at most 8", n)
	}
	a := it.str("same")
	b := it.str("same")
	if unsafe.StringData(a) != unsafe.StringData(b) {
		t.Fatalf("a repeated string was copied again")
	}
}
