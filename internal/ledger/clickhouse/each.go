package clickhouse

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/warden-gw/warden/internal/ledger"
)

// eachPage is how many Accesses one query of Each reads: pages keep the
// answer held in memory bounded whatever the window.
var eachPage = 50000

// Each calls fn with every Access in win, in time order (then request id),
// until fn returns false: the local ledger's Reader.Each, over ClickHouse
// (warden trace's coverage). It reads the window slice by slice (eachSlices),
// each slice's Accesses in pages of eachPage following the table's order.
func (c *Client) Each(ctx context.Context, win ledger.Window, fn func(*ledger.Entry) bool) error {
	slices, err := c.eachSlices(ctx, win)
	if err != nil {
		return fmt.Errorf("ledger: each: %w", err)
	}
	for _, sl := range slices {
		cond := fmt.Sprintf("%s AND t >= toDateTime(%d) AND t <= toDateTime(%d)", window(win), sl[0], sl[1])
		if more, err := c.eachIn(ctx, cond, fn); err != nil || !more {
			return err
		}
	}
	return nil
}

// eachSlices cuts win into spans of whole minutes ([first, last] second)
// that hold fewer than eachPage Accesses together (one query each), in
// time order; a minute holding more is a span alone (paged within). A page's query names its
// span's seconds, which ClickHouse finds by the table's index: a page
// after the last one's key alone (ts is not in the index) read and sorted
// the whole window again for every page.
func (c *Client) eachSlices(ctx context.Context, win ledger.Window) ([][2]int64, error) {
	rows, err := c.rows(ctx, fmt.Sprintf("SELECT intDiv(toUInt32(t), 60) AS m, count() FROM accesses WHERE %s GROUP BY m ORDER BY m", window(win)))
	if err != nil {
		return nil, err
	}
	var out [][2]int64
	n := 0
	for _, r := range rows {
		if len(r) != 2 {
			return nil, fmt.Errorf("clickhouse: each: a row of %d fields", len(r))
		}
		m, err := strconv.ParseInt(r[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("clickhouse: each: minute %q: %w", r[0], err)
		}
		k := atoi(r[1])
		if len(out) > 0 && n+k < eachPage {
			out[len(out)-1][1] = m*60 + 59
			n += k
			continue
		}
		out = append(out, [2]int64{m * 60, m*60 + 59})
		n = k
	}
	return out, nil
}

// eachIn calls fn with every Access matching cond in time order, in pages
// of eachPage; more is false once fn has said stop.
func (c *Client) eachIn(ctx context.Context, cond string, fn func(*ledger.Entry) bool) (more bool, err error) {
	after := ""
	for {
		q := fmt.Sprintf(`SELECT %s AS ts, req, route, app, account, ip, net, fingerprint, list, page, lookup, unref, status, rule, facet,
mask_rules, classes, rec_ids, rec_classes, rec_masked, authors, links FROM accesses WHERE %s%s ORDER BY t, us, req LIMIT %d FORMAT JSONEachRow`,
			ts, cond, after, eachPage)
		out, err := c.do(ctx, q, nil, true, map[string][]string{"output_format_json_quote_64bit_integers": {"0"}}, nil)
		if err != nil {
			return false, fmt.Errorf("ledger: each: %w", err)
		}
		dec := json.NewDecoder(bytes.NewReader(out))
		n := 0
		var last found
		for dec.More() {
			var f found
			if err := dec.Decode(&f); err != nil {
				return false, fmt.Errorf("clickhouse: each: %w", err)
			}
			n++
			last = f
			if !fn(f.entry()) {
				return false, nil
			}
		}
		if n < eachPage {
			return true, nil
		}
		after = fmt.Sprintf(" AND (%s > %d OR (%s = %d AND req > %s))", ts, last.TS, ts, last.TS, quote(last.Req))
	}
}
