package clickhouse

import (
	"context"
	"fmt"
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
	for _, page := range []int{700, 10} {
		// 700: five pages, the last short, each of minutes merged; 10: a
		// minute's Accesses over several pages.
		eachPage = page
		eachAsLocal(t, dir, ch)
	}
	n := 0
	if err := ch.Each(context.Background(), ledger.Window{}, func(*ledger.Entry) bool { n++; return n < 3 }); err != nil || n != 3 {
		t.Fatalf("Each stopped by fn after %d (%v), want 3", n, err)
	}
}

func eachAsLocal(t *testing.T, dir string, ch *Client) {
	t.Helper()
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
				t.Fatalf("window %v, page %d, Entry %d:\nlocal      %s\nclickhouse %s", w, eachPage, i, local[i], remote[i])
			}
		}
	}
}

// comparable is e as JSON, led by its time, without its keyed hashes.
func comparable(t *testing.T, e *ledger.Entry) string {
	c := *e
	c.Page, c.Lookup, c.Links = "", "", nil
	return c.Time.Format("2006-01-02T15:04:05.000000Z") + " " + mustJSON(t, c)
}

// TestEachReadsOnce: Each reads the table's index granules a few times
// at most, not once per page. Its pages were the whole window sorted again after the
// last page's key, which ClickHouse cannot find by the table's index: a
// trace over 2,000,000 Accesses read all of them for each of its 40
// pages (73 s), and 100,000,000 would have read them 2,000 times.
func TestEachReadsOnce(t *testing.T) {
	s := server(t)
	cfg := config(t, s, "eachreads")
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// 400,000 Accesses over 4 hours (index granules of 8,192 rows), in
	// one part per day once merged.
	const n = 400000
	if _, err := c.Do(ctx, fmt.Sprintf(`INSERT INTO accesses (t, us, batch, req, route, account, status, rec_ids, rec_classes, rec_masked)
SELECT toDateTime(%d + intDiv(number * 14400, %d)), toUInt32(number %% 997), 1, hex(number), 'GET /v1/users/{id}', toString(number %% 1000), 200,
[toString(number %% 100000)], [1], [0] FROM system.numbers LIMIT %d`, t0.Unix(), n, n), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(ctx, "OPTIMIZE TABLE accesses FINAL", nil); err != nil {
		t.Fatal(err)
	}
	marks := func(q string) int {
		t.Helper()
		rows, err := c.rows(ctx, q)
		if err != nil || len(rows) != 1 {
			t.Fatalf("%s: %v %v", q, rows, err)
		}
		return atoi(rows[0][0])
	}
	table := marks("SELECT sum(marks) FROM system.parts WHERE database = currentDatabase() AND table = 'accesses' AND active")
	defer func(p int) { eachPage = p }(eachPage)
	eachPage = 10000 // 40 pages
	// sum: the event is absent until a query has selected a mark.
	selected := func() int { return marks("SELECT sum(value) FROM system.events WHERE event = 'SelectedMarks'") }
	before := selected()
	got, last := 0, int64(0)
	if err := c.Each(ctx, ledger.Window{}, func(e *ledger.Entry) bool {
		if us := e.Time.UnixMicro(); us < last {
			t.Fatalf("Entry %d out of time order", got)
		} else {
			last = us
		}
		got++
		return true
	}); err != nil {
		t.Fatal(err)
	}
	read := selected() - before
	if got != n {
		t.Fatalf("Each gave %d Entries, want %d", got, n)
	}
	t.Logf("Each read %d index granules of the table's %d for %d pages", read, table, n/eachPage)
	// About 3 times: the minutes' counts read the table once, and each of
	// about 48 spans its one or two granules (of 8,192 rows: a span here
	// is about one). Before, 41 times: the table once a page.
	if read > 5*table {
		t.Errorf("Each read %d index granules of the table's %d (%.0f times the table) for %d pages", read, table, float64(read)/float64(table), n/eachPage)
	}
}
