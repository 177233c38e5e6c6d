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
	acc := &inspect.Access{Classes: watchClassNames, Records: []inspect.Record{{ID: "masked", Classes: 0b1, Masked: 0b1}}}
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

// watchClassNames is a route's class list, one slice as a route map's is.
var watchClassNames = []string{"contact", "profile"}

// classAccess serves account n records of route's classes, the first
// masked records with contact masked (bit 0).
func classAccess(route []string, account string, n, masked int, classes inspect.ClassSet) *inspect.Access {
	acc := &inspect.Access{Classes: route}
	for i := range n {
		r := inspect.Record{ID: fmt.Sprint(i), Classes: classes}
		if i < masked {
			r.Masked = 0b1
		}
		acc.Records = append(acc.Records, r)
	}
	acc.Identity.Account = account
	return acc
}

// Per class, the Watch ranks by records of that class served unmasked:
// the most profiles read is not the most contact details taken; a value
// that never took a class is not nominated for it; a class it does not
// count one by one (never served) says so.
func TestWatchRanksByClass(t *testing.T) {
	w := NewWatch(0)
	feed := []string{"post", "contact"}                            // another route: contact is its bit 1
	w.Record(classAccess(watchClassNames, "reader", 40, 40, 0b11)) // 40 profiles, contact masked
	w.Record(classAccess(watchClassNames, "taker", 12, 0, 0b11))   // 12 contacts
	w.Record(classAccess(watchClassNames, "looker", 20, 15, 0b11)) // 5 contacts, 20 profiles
	w.Record(classAccess(feed, "poster", 25, 0, 0b01))             // posts only
	w.Record(classAccess(feed, "looker", 8, 0, 0b10))              // 8 contacts more, by the other route
	for _, c := range []struct {
		class string
		want  []string
		ok    bool
	}{
		{"", []string{"reader", "looker", "poster", "taker"}, true},
		{"contact", []string{"looker", "taker"}, true},
		{"profile", []string{"reader", "looker", "taker"}, true},
		{"post", []string{"poster"}, true},
		{"email", []string{"reader", "looker", "poster", "taker"}, false},
	} {
		got, ok := w.Top(identify.FacetAccount, c.class, 10)
		if !slices.Equal(got, c.want) || ok != c.ok {
			t.Errorf("Top(account, %q) = %q, %v; want %q, %v", c.class, got, ok, c.want, c.ok)
		}
	}
}

// A full table keeps the one value that took contact details, with few
// records in all, while many values reading more profiles than it pass
// through: a slot weighs its largest share of a class, not its records.
func TestWatchBoundedKeepsClassTop(t *testing.T) {
	w := NewWatch(16)
	for i := range 3000 {
		if i%10 == 0 {
			w.Record(classAccess(watchClassNames, "taker", 1, 0, 0b01)) // one contact, no profile
		}
		w.Record(classAccess(watchClassNames, fmt.Sprint("reader", i), 5, 5, 0b11)) // 5 profiles each
	}
	if top, _ := w.Top(identify.FacetAccount, "contact", 3); !slices.Equal(top, []string{"taker"}) {
		t.Errorf("Top(account, contact) = %q, want taker alone", top)
	}
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
		if got, _ := w.Top(c.f, "", 10); !slices.Equal(got, c.want) || (got == nil) != (c.want == nil) {
			t.Errorf("Top(%s) = %q, want %q", c.f, got, c.want)
		}
	}
	if got, _ := w.Top(identify.FacetAccount, "", 1); !slices.Equal(got, []string{"alice"}) {
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
		top, _ := w.Top(f, "", 100)
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
