package clickhouse

import (
	"context"
	"sort"
	"testing"

	"github.com/warden-gw/warden/internal/ledger"
)

// TestEachAsLocal: the same traffic in the local ledger and in ClickHouse
// gives the same Entries from Each (pages, look-ups and links are hashes
// under different keys), whole and in a cut window, across pages.
func TestEachAsLocal(t *testing.T) {
	s := server(t)
	dir, ch := writeBoth(t, config(t, s, "each"), traffic(3000))
	defer func(p int) { eachPage = p }(eachPage)
	eachPage = 700 // five pages, the last short
	for _, w := range []ledger.Window{{}, cut} {
		r, err := ledger.OpenReader(dir, w)
		if err != nil {
			t.Fatal(err)
		}
		var local, remote []string
		r.Each(func(e *ledger.Entry) bool { local = append(local, comparable(t, e)); return true })
		r.Close()
		if err := ch.Each(context.Background(), w, func(e *ledger.Entry) bool { remote = append(remote, comparable(t, e)); return true }); err != nil {
			t.Fatal(err)
		}
		sort.Strings(local)
		if !sort.StringsAreSorted(remote) {
			t.Errorf("window %v: ClickHouse's Entries not in time order", w)
		}
		if len(local) < 500 || len(local) != len(remote) {
			t.Fatalf("window %v: %d Entries locally, %d from ClickHouse", w, len(local), len(remote))
		}
		for i := range local {
			if local[i] != remote[i] {
				t.Fatalf("window %v, Entry %d:\nlocal      %s\nclickhouse %s", w, i, local[i], remote[i])
			}
		}
	}
	n := 0
	if err := ch.Each(context.Background(), ledger.Window{}, func(*ledger.Entry) bool { n++; return n < 3 }); err != nil || n != 3 {
		t.Fatalf("Each stopped by fn after %d (%v), want 3", n, err)
	}
}

// comparable is e as JSON, led by its time, without its keyed hashes.
func comparable(t *testing.T, e *ledger.Entry) string {
	c := *e
	c.Page, c.Lookup, c.Links = "", "", nil
	return c.Time.Format("2006-01-02T15:04:05.000000Z") + " " + mustJSON(t, c)
}
