package dashboard

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
)

func watchAccess(account, ip string, served int) *inspect.Access {
	acc := &inspect.Access{Records: []inspect.Record{{ID: "masked", Classes: 0b1, Masked: 0b1}}}
	for i := range served {
		acc.Records = append(acc.Records, inspect.Record{ID: fmt.Sprint(i), Classes: 0b11, Masked: 0b01})
	}
	acc.Identity.Account = account
	if ip != "" {
		acc.Identity.IP = netip.MustParseAddr(ip)
		acc.Identity.Net = netip.PrefixFrom(acc.Identity.IP, 24).Masked()
	}
	return acc
}

// The Watch ranks each facet's values by records served (a record whose
// classes were all masked does not count), addresses and networks spelt as
// the ledger spells them.
func TestWatchRanks(t *testing.T) {
	w := NewWatch(0)
	w.Record(watchAccess("bob", "10.0.1.7", 1))
	w.Record(watchAccess("alice", "10.0.0.1", 2))
	w.Record(watchAccess("alice", "10.0.0.1", 1))
	w.Record(watchAccess("carol", "10.0.0.2", 0)) // served nothing: not counted
	w.Record(watchAccess("bob", "10.0.1.7", 1))
	w.Record(watchAccess("dave", "", 1))
	for _, c := range []struct {
		f    identify.Facet
		want []string
	}{
		{identify.FacetAccount, []string{"alice", "bob", "dave"}},
		{identify.FacetIP, []string{"10.0.0.1", "10.0.1.7"}},
		{identify.FacetNet, []string{"10.0.0.0/24", "10.0.1.0/24"}},
		{identify.FacetApp, []string{}},
		{identify.FacetFingerprint, []string{}},
		{0, nil},
	} {
		if got := w.Top(c.f, 10); !slices.Equal(got, c.want) || (got == nil) != (c.want == nil) {
			t.Errorf("Top(%s) = %q, want %q", c.f, got, c.want)
		}
	}
	if got := w.Top(identify.FacetAccount, 1); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("Top(account, 1) = %q", got)
	}
}

// A full table keeps a heavy value however many light ones pass through,
// and holds no more than its bound.
func TestWatchBounded(t *testing.T) {
	w := NewWatch(8)
	for i := range 5000 {
		w.Record(watchAccess("heavy", "10.9.9.9", 3))
		w.Record(watchAccess(fmt.Sprint("light", i), fmt.Sprintf("10.%d.%d.1", i/256%256, i%256), 1))
	}
	for _, f := range []identify.Facet{identify.FacetAccount, identify.FacetIP} {
		top := w.Top(f, 100)
		if len(top) != 8 {
			t.Errorf("%s: %d values kept, want 8", f, len(top))
		}
		if want := map[identify.Facet]string{identify.FacetAccount: "heavy", identify.FacetIP: "10.9.9.9"}[f]; top[0] != want {
			t.Errorf("%s: top %q, want %s first", f, top, want)
		}
	}
	if n := len(w.account.idx); n != len(w.account.keys) {
		t.Errorf("account map holds %d values, slots %d", n, len(w.account.keys))
	}
	for i, k := range w.account.keys {
		if w.account.idx[k] != int32(i) {
			t.Fatalf("slot %d holds %q, the map says %d", i, k, w.account.idx[k])
		}
	}
}
