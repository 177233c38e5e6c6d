package clickhouse

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/ledger"
)

// TestTopAndReachedAsLocal: on the same traffic, ClickHouse's top
// identities, by every record and by a class's served unmasked, are the
// local ledger's counts of every identity ranked (most distinct subjects
// first, then by value), and the people the authors'
// content reached are the local Reader.Viewers' named, anonymous viewers
// left out on both; whole and in a cut window.
func TestTopAndReachedAsLocal(t *testing.T) {
	s := server(t)
	acc := traffic(3000)
	dir, ch := writeBoth(t, config(t, s, "fleetqueries"), acc)
	values := map[identify.Facet]map[string]bool{identify.FacetAccount: {}, identify.FacetIP: {}, identify.FacetNet: {}}
	for _, a := range acc {
		values[identify.FacetAccount][a.Identity.Account] = true
		values[identify.FacetIP][a.Identity.IP.String()] = true
		values[identify.FacetNet][a.Identity.Net.String()] = true
	}
	ctx := context.Background()
	authors := []string{"1", "7", "12", "30", "49", "nobody"}
	for _, w := range []ledger.Window{{}, cut} {
		r, err := ledger.OpenReader(dir, w)
		if err != nil {
			t.Fatal(err)
		}
		for by, vs := range values {
			for _, class := range []string{"", "contact", "post"} {
				type ranked struct {
					v string
					n int
				}
				var all []string
				for v := range vs {
					if v != "" && v != (netip.Addr{}).String() && v != (netip.Prefix{}).String() {
						all = append(all, v)
					}
				}
				var want []ranked
				counts, err := r.DistinctEach(by, all, class)
				if err != nil {
					t.Fatal(err)
				}
				for i, n := range counts {
					if n > 0 {
						want = append(want, ranked{all[i], n})
					}
				}
				slices.SortFunc(want, func(a, b ranked) int { return cmp.Or(b.n-a.n, cmp.Compare(a.v, b.v)) })
				// Fewer than there are: the bound is asked too.
				n := min(10, len(want)-3)
				if n < 5 {
					t.Fatalf("%s %q: %d values in the traffic, too few to rank", by, class, len(want))
				}
				want = want[:n]
				gv, gn, err := ch.Top(ctx, w, by, class, n)
				if err != nil {
					t.Fatal(err)
				}
				var got []ranked
				for i := range gv {
					got = append(got, ranked{gv[i], gn[i]})
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("window %v, top %s class %q:\nlocal      %v\nclickhouse %v", w, by, class, want, got)
				}
			}
		}

		bitmaps, _, err := r.Viewers(authors, identify.FacetAccount)
		if err != nil {
			t.Fatal(err)
		}
		local := map[string]bool{}
		for _, b := range bitmaps {
			for it := b.Iterator(); it.HasNext(); {
				local[r.IdentityName(it.Next())] = true
			}
		}
		r.Close()
		remote := map[string]bool{}
		calls := 0
		if err := ch.Reached(ctx, w, authors, identify.FacetAccount, func(id string) { remote[id] = true; calls++ }); err != nil {
			t.Fatal(err)
		}
		if len(local) < 10 || fmt.Sprint(local) != fmt.Sprint(remote) || calls != len(remote) {
			t.Errorf("window %v, reached (%d calls):\nlocal      %v\nclickhouse %v", w, calls, local, remote)
		}
	}
}
