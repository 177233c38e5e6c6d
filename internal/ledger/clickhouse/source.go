package clickhouse

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/ledger"
)

var _ ledger.Source = (*Client)(nil)

func (c *Client) String() string {
	return "clickhouse " + strings.Join(c.addrs, ",") + " database " + c.db
}

// maxDateTime is DateTime's last second (2106-02-07T06:28:15Z): it is a
// UInt32, and no Access is later.
const maxDateTime = 1<<32 - 1

// ts is an Access's time in microseconds.
const ts = "(toUInt64(t) * 1000000 + us)"

// window is win as a condition (the day partitions and the primary key
// prune by t; ts decides within the second).
func window(win ledger.Window) string {
	var c []string
	if !win.From.IsZero() {
		lo := max(win.From.UnixMicro(), 0)
		if lo/1e6 > maxDateTime {
			return "0"
		}
		c = append(c, fmt.Sprintf("t >= toDateTime(%d) AND %s >= %d", lo/1e6, ts, lo))
	}
	if !win.To.IsZero() {
		hi := win.To.UnixMicro()
		if hi < 0 {
			return "0"
		}
		// toDateTime wraps a number past DateTime's last second: a --to
		// in 2150 became one in 2013, and the window held nothing.
		c = append(c, fmt.Sprintf("t <= toDateTime(%d) AND %s <= %d", min(hi/1e6, maxDateTime), ts, hi))
	}
	if len(c) == 0 {
		return "1"
	}
	return strings.Join(c, " AND ")
}

func facetColumn(f identify.Facet) string { return f.String() }

// rows runs q and returns its TabSeparated lines, split into fields.
func (c *Client) rows(ctx context.Context, q string, ext ...Table) ([][]string, error) {
	out, err := c.Do(ctx, q+" FORMAT TabSeparated", nil, ext...)
	if err != nil {
		return nil, err
	}
	var res [][]string
	for _, l := range strings.Split(string(trimNL(out)), "\n") {
		if l == "" {
			continue
		}
		f := strings.Split(l, "\t")
		for i := range f {
			f[i] = tsvUnescape(f[i])
		}
		res = append(res, f)
	}
	return res, nil
}

func tsvUnescape(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case '0':
			b.WriteByte(0)
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func micro(s string) time.Time {
	v, _ := strconv.ParseInt(s, 10, 64)
	return time.UnixMicro(v).UTC()
}

func atoi(s string) int { v, _ := strconv.Atoi(s); return v }

// array reads a TabSeparated array of strings: ['a','b'].
func array(s string) []string {
	var v []string
	if err := json.Unmarshal([]byte(strings.ReplaceAll(s, "'", "\"")), &v); err != nil {
		return nil
	}
	return v
}

func (c *Client) WhoTook(ctx context.Context, win ledger.Window, subject, class string, by identify.Facet) (*ledger.WhoTookResult, error) {
	res := &ledger.WhoTookResult{Subject: subject, By: by.String(), Class: class, Rows: []ledger.WhoTookRow{}}
	cond := ""
	if class != "" {
		cond = " AND has(served, " + quote(class) + ")"
	}
	q := fmt.Sprintf(`SELECT %s, count(), toString(groupUniqArrayArray(served)), min(%s), max(%s) FROM takes
WHERE subject = %s AND %s%s GROUP BY %s`, facetColumn(by), ts, ts, quote(subject), window(win), cond, facetColumn(by))
	rows, err := c.rows(ctx, q)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		if len(r) != 5 {
			return nil, fmt.Errorf("clickhouse: who-took: a row of %d fields", len(r))
		}
		row := ledger.WhoTookRow{Value: r[0], Count: atoi(r[1]), Classes: array(r[2]), First: micro(r[3]), Last: micro(r[4])}
		if row.Classes == nil {
			row.Classes = []string{}
		}
		slices.Sort(row.Classes)
		res.Rows = append(res.Rows, row)
	}
	slices.SortFunc(res.Rows, func(a, b ledger.WhoTookRow) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return strings.Compare(a.Value, b.Value)
	})
	return res, nil
}

func (c *Client) TookBy(ctx context.Context, win ledger.Window, by identify.Facet, value string) (*ledger.TookByResult, error) {
	res := &ledger.TookByResult{Facet: by.String(), Value: value, Served: map[string]int{}, Masked: map[string]int{}}
	who := facetColumn(by) + " = " + quote(value) + " AND " + window(win)
	rows, err := c.rows(ctx, fmt.Sprintf(`SELECT count(), min(%s), max(%s), uniqExactIf(list, list != '' AND status < 400) FROM accesses WHERE %s`, ts, ts, who))
	if err != nil {
		return nil, err
	}
	if len(rows) == 1 && len(rows[0]) == 4 && rows[0][0] != "0" {
		res.Accesses, res.Lists = atoi(rows[0][0]), atoi(rows[0][3])
		a, b := micro(rows[0][1]), micro(rows[0][2])
		res.First, res.Last = &a, &b
	}
	if res.Accesses == 0 {
		return res, nil
	}
	if rows, err = c.rows(ctx, "SELECT uniqExact(subject) FROM takes WHERE "+who); err != nil {
		return nil, err
	}
	if len(rows) == 1 {
		res.Subjects = atoi(rows[0][0])
	}
	for _, m := range []struct {
		col string
		out map[string]int
	}{{"served", res.Served}, {"masked", res.Masked}} {
		rows, err := c.rows(ctx, fmt.Sprintf("SELECT c, uniqExact(subject) FROM takes ARRAY JOIN %s AS c WHERE %s GROUP BY c", m.col, who))
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			m.out[r[0]] = atoi(r[1])
		}
	}
	return res, nil
}

func (c *Client) Distinct(ctx context.Context, win ledger.Window, by identify.Facet, value, class string, also ...ledger.FacetValue) (int, error) {
	cond := ""
	if class != "" {
		cond = " AND has(served, " + quote(class) + ")"
	}
	for _, w := range also {
		if w.By < 1 || int(w.By) > ledger.NumFacets {
			return 0, fmt.Errorf("clickhouse: distinct: facet %d", w.By)
		}
		cond += " AND " + facetColumn(w.By) + " = " + quote(w.Value)
	}
	rows, err := c.rows(ctx, fmt.Sprintf("SELECT uniqExact(subject) FROM takes WHERE %s = %s AND %s%s", facetColumn(by), quote(value), window(win), cond))
	if err != nil || len(rows) != 1 {
		return 0, err
	}
	return atoi(rows[0][0]), nil
}

// Requests counts, per route, the accesses rows in win whose identity
// has every facet value of want, but those refused by a rule no rate
// limit saw (ledger.Unlimited), or with a rule and facet none saw
// (ledger.UnlimitedFacets), as the directory's Requests.
func (c *Client) Requests(ctx context.Context, win ledger.Window, want []ledger.FacetValue) (map[string]int, error) {
	unseen := ledger.Unlimited()
	quoted := make([]string, len(unseen))
	for i, rule := range unseen {
		quoted[i] = quote(rule)
	}
	cond := window(win) + " AND rule NOT IN (" + strings.Join(quoted, ", ") + ")"
	for _, rf := range ledger.UnlimitedFacets() {
		cond += " AND NOT (rule = " + quote(rf.Rule) + " AND facet = " + quote(rf.Facet) + ")"
	}
	for _, w := range want {
		if w.By < 1 || int(w.By) > ledger.NumFacets {
			return nil, fmt.Errorf("clickhouse: requests: facet %d", w.By)
		}
		cond += " AND " + facetColumn(w.By) + " = " + quote(w.Value)
	}
	rows, err := c.rows(ctx, "SELECT route, count() FROM accesses WHERE "+cond+" GROUP BY route")
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, r := range rows {
		if len(r) == 2 {
			out[r[0]] += atoi(r[1])
		}
	}
	return out, nil
}

// found is an accesses row as JSONEachRow gives it.
type found struct {
	TS          uint64   `json:"ts"`
	Req         string   `json:"req"`
	Route       string   `json:"route"`
	App         string   `json:"app"`
	Account     string   `json:"account"`
	IP          string   `json:"ip"`
	Net         string   `json:"net"`
	Fingerprint string   `json:"fingerprint"`
	List        string   `json:"list"`
	Page        uint64   `json:"page"`
	Lookup      uint64   `json:"lookup"`
	Unref       uint8    `json:"unref"`
	Status      uint16   `json:"status"`
	Rule        string   `json:"rule"`
	Facet       string   `json:"facet"`
	MaskRules   []string `json:"mask_rules"`
	Classes     []string `json:"classes"`
	RecIDs      []string `json:"rec_ids"`
	RecClasses  []uint64 `json:"rec_classes"`
	RecMasked   []uint64 `json:"rec_masked"`
	Authors     []string `json:"authors"`
	Links       []uint64 `json:"links"`
}

// entry is the row as the local ledger gives its Entry (pages, look-ups
// and links as their hashes).
func (f *found) entry() *ledger.Entry {
	hx := func(h uint64) string {
		if h == 0 {
			return ""
		}
		return fmt.Sprintf("#%016x", h)
	}
	e := &ledger.Entry{Time: time.UnixMicro(int64(f.TS)).UTC(), RequestID: f.Req, Route: f.Route, List: f.List, Page: hx(f.Page), Lookup: hx(f.Lookup),
		Unreferenced: f.Unref != 0, Status: int(f.Status), Rule: f.Rule, Facet: f.Facet, MaskRules: f.MaskRules, Classes: f.Classes, Authors: f.Authors}
	// The local ledger gives nil for an empty list.
	for _, v := range []*[]string{&e.MaskRules, &e.Classes, &e.Authors} {
		if len(*v) == 0 {
			*v = nil
		}
	}
	e.Identity = [ledger.NumFacets]string{f.App, f.Account, f.IP, f.Net, f.Fingerprint}
	for i, r := range f.RecIDs {
		rc := ledger.Record{ID: r}
		if i < len(f.RecClasses) {
			rc.Classes = f.RecClasses[i]
		}
		if i < len(f.RecMasked) {
			rc.Masked = f.RecMasked[i]
		}
		e.Records = append(e.Records, rc)
	}
	for _, l := range f.Links {
		e.Links = append(e.Links, hx(l))
	}
	return e
}

func (c *Client) Find(ctx context.Context, win ledger.Window, id string) (*ledger.Found, error) {
	q := fmt.Sprintf(`SELECT %s AS ts, req, route, app, account, ip, net, fingerprint, list, page, lookup, unref, status, rule, facet,
mask_rules, classes, rec_ids, rec_classes, rec_masked, authors, links FROM accesses WHERE req = %s AND %s ORDER BY ts DESC LIMIT 1 FORMAT JSONEachRow`, ts, quote(id), window(win))
	out, err := c.do(ctx, q, nil, true, map[string][]string{"output_format_json_quote_64bit_integers": {"0"}}, nil)
	if err != nil {
		return nil, err
	}
	out = trimNL(out)
	if len(out) == 0 {
		return nil, nil
	}
	var f found
	if err := json.Unmarshal(out, &f); err != nil {
		return nil, fmt.Errorf("clickhouse: explain: %w", err)
	}
	e := f.entry()
	return &ledger.Found{Entry: e, File: c.String() + " table accesses"}, nil
}

// Reach counts the people of q in one query: per person, how many of the
// authors (external table _a) reached them, whether the other set (_b)
// did, and with After when; then people per signature. Impressions in a
// second query (they count Accesses without the facet too).
func (c *Client) Reach(ctx context.Context, q ledger.ReachQuery) (*ledger.ReachCounts, error) {
	by := q.By
	if by == 0 {
		by = identify.FacetAccount
	}
	ext := []Table{{Name: "_a", IDs: q.Authors}}
	inB, in := "0", "author IN _a"
	if q.Overlap != nil {
		ext = append(ext, Table{Name: "_b", IDs: q.Overlap})
		inB, in = "max(author IN _b)", "(author IN _a OR author IN _b)"
	}
	when := "0"
	if !q.After.IsZero() {
		at := q.After.UnixMicro()
		when = fmt.Sprintf("if(k = 0, 0, maxIf(1, author IN _a AND %s < %d) + 2 * maxIf(1, author IN _a AND %s >= %d))", ts, at, ts, at)
	}
	query := fmt.Sprintf(`SELECT k, b, w, count() FROM (
  SELECT %s AS p, uniqExactIf(author, author IN _a) AS k, %s AS b, %s AS w
  FROM views WHERE %s AND %s != '' AND %s GROUP BY p
) GROUP BY k, b, w`, facetColumn(by), inB, when, in, facetColumn(by), window(q.Window))
	rows, err := c.rows(ctx, query, ext...)
	if err != nil {
		return nil, err
	}
	out := &ledger.ReachCounts{}
	for _, r := range rows {
		if len(r) != 4 {
			return nil, fmt.Errorf("clickhouse: reach: a row of %d fields", len(r))
		}
		n, _ := strconv.ParseInt(r[3], 10, 64)
		out.Cells = append(out.Cells, ledger.ReachCell{K: atoi(r[0]), InB: atoi(r[1]), When: atoi(r[2]), People: n})
	}
	ledger.SortCells(out.Cells)
	after := "0"
	if !q.After.IsZero() {
		after = fmt.Sprintf("countIf(%s >= %d)", ts, q.After.UnixMicro())
	}
	rows, err = c.rows(ctx, fmt.Sprintf("SELECT count(), %s FROM views WHERE author IN _a AND %s", after, window(q.Window)), ext[0])
	if err != nil {
		return nil, err
	}
	if len(rows) == 1 && len(rows[0]) == 2 {
		out.Impressions, _ = strconv.ParseUint(rows[0][0], 10, 64)
		out.AfterImpressions, _ = strconv.ParseUint(rows[0][1], 10, 64)
	}
	return out, nil
}
