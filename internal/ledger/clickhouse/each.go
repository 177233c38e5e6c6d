package clickhouse

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/warden-gw/warden/internal/ledger"
)

// eachPage is how many Accesses one query of Each reads: pages keep the
// answer held in memory bounded whatever the window.
var eachPage = 50000

// Each calls fn with every Access in win, in time order (then request id),
// until fn returns false: the local ledger's Reader.Each, over ClickHouse
// (warden trace's coverage). Pages of eachPage follow the table's order.
func (c *Client) Each(ctx context.Context, win ledger.Window, fn func(*ledger.Entry) bool) error {
	after := ""
	for {
		q := fmt.Sprintf(`SELECT %s AS ts, req, route, app, account, ip, net, fingerprint, list, page, lookup, unref, status, rule, facet,
mask_rules, classes, rec_ids, rec_classes, rec_masked, authors, links FROM accesses WHERE %s%s ORDER BY t, us, req LIMIT %d FORMAT JSONEachRow`,
			ts, window(win), after, eachPage)
		out, err := c.do(ctx, q, nil, true, map[string][]string{"output_format_json_quote_64bit_integers": {"0"}}, nil)
		if err != nil {
			return fmt.Errorf("ledger: each: %w", err)
		}
		dec := json.NewDecoder(bytes.NewReader(out))
		n := 0
		var last found
		for dec.More() {
			var f found
			if err := dec.Decode(&f); err != nil {
				return fmt.Errorf("clickhouse: each: %w", err)
			}
			n++
			last = f
			if !fn(f.entry()) {
				return nil
			}
		}
		if n < eachPage {
			return nil
		}
		after = fmt.Sprintf(" AND (%s > %d OR (%s = %d AND req > %s))", ts, last.TS, ts, last.TS, quote(last.Req))
	}
}
