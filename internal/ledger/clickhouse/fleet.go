package clickhouse

import (
	"bytes"
	"context"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/privacy"
)

// The fleet's questions beyond ledger.Source: the dashboard's identities
// page ranks the fleet's identities (Top), its reach page shows a
// researcher's budget (Budgets.Standing), and warden audience splits the
// accounts' reach into followers and not (Reached). A local ledger has
// its own answers (the Watch's candidates counted by DistinctMany, the
// directory's budgets, Reader.Viewers).

// Top ranks the values of facet by by the distinct subjects of class
// served unmasked to each in win (Distinct; class "": every record, masked
// or not), most first, then by value, and gives the first n with their
// counts.
// Accesses without the facet (an empty value) are not ranked. One query:
// ClickHouse counts every value of the window and keeps the n first, so
// the answer is bounded whatever the fleet's traffic.
func (c *Client) Top(ctx context.Context, win ledger.Window, by identify.Facet, class string, n int) ([]string, []int, error) {
	if n <= 0 {
		return nil, nil, nil
	}
	col := facetColumn(by)
	cond := ""
	if class != "" {
		cond = " AND has(served, " + quote(class) + ")"
	}
	rows, err := c.rows(ctx, fmt.Sprintf("SELECT %[1]s, uniqExact(subject) AS n FROM takes WHERE %[2]s AND %[1]s != ''%[4]s GROUP BY %[1]s ORDER BY n DESC, %[1]s LIMIT %[3]d",
		col, window(win), n, cond))
	if err != nil {
		return nil, nil, fmt.Errorf("clickhouse: top %s: %w", by, err)
	}
	values, subjects := make([]string, 0, len(rows)), make([]int, 0, len(rows))
	for _, r := range rows {
		if len(r) != 2 {
			return nil, nil, fmt.Errorf("clickhouse: top %s: a row of %d fields", by, len(r))
		}
		values, subjects = append(values, r[0]), append(subjects, atoi(r[1]))
	}
	return values, subjects, nil
}

// RefusedIdentities is the directory's Reader.RefusedIdentities over the
// fleet's accesses: the distinct identities, each as its refusal named it
// (the facet, and the row's value of that facet), refused in win by one
// of rules; a facet that is no identity facet, or a row without that
// facet's value, is not counted. ClickHouse counts; the answer is one
// number, whatever the fleet's traffic.
func (c *Client) RefusedIdentities(ctx context.Context, win ledger.Window, rules []string) (int, error) {
	if len(rules) == 0 {
		return 0, nil
	}
	quoted := make([]string, len(rules))
	for i, rule := range rules {
		quoted[i] = quote(rule)
	}
	value := "multiIf("
	for _, f := range identify.Facets {
		value += "facet = " + quote(f.String()) + ", " + facetColumn(f) + ", "
	}
	value += "'')"
	rows, err := c.rows(ctx, fmt.Sprintf("SELECT uniqExact(facet, v) FROM (SELECT facet, %s AS v FROM accesses WHERE %s AND rule IN (%s)) WHERE v != ''",
		value, window(win), strings.Join(quoted, ", ")))
	if err != nil {
		return 0, fmt.Errorf("clickhouse: refused identities: %w", err)
	}
	if len(rows) != 1 || len(rows[0]) != 1 {
		return 0, fmt.Errorf("clickhouse: refused identities: %d rows", len(rows))
	}
	return atoi(rows[0][0]), nil
}

// Reached calls fn with each value of facet by that the authors' content
// reached in win, once each (Accesses without the facet are no one): the
// people of the local Reader.Viewers, named, over ClickHouse. ClickHouse
// makes them distinct; the answer, one line a person, is read whole (a
// local reader's bitmaps hold as many).
func (c *Client) Reached(ctx context.Context, win ledger.Window, authors []string, by identify.Facet, fn func(string)) error {
	if len(authors) == 0 {
		return nil
	}
	col := facetColumn(by)
	out, err := c.Do(ctx, fmt.Sprintf("SELECT DISTINCT %[1]s FROM views WHERE author IN _a AND %[1]s != '' AND %[2]s FORMAT TabSeparated", col, window(win)),
		nil, Table{Name: "_a", IDs: authors})
	if err != nil {
		return fmt.Errorf("clickhouse: reached by %s: %w", by, err)
	}
	for len(out) > 0 {
		line, rest, _ := bytes.Cut(out, []byte{'\n'})
		if len(line) > 0 {
			fn(tsvUnescape(string(line)))
		}
		out = rest
	}
	return nil
}

// Standing is a researcher's account without asking anything (what
// privacy.Budgets.Standing gives for a directory): the budget, what the
// fleet's answers charged it, what remains.
func (b *Budgets) Standing(ctx context.Context, name string) (privacy.Account, error) {
	if err := privacy.ValidResearcher(name); err != nil {
		return privacy.Account{}, err
	}
	ch, err := b.charges(ctx, name, "")
	if err != nil {
		return privacy.Account{}, err
	}
	return privacy.NewAccount(name, b.limit(name), ch.spent, new(big.Rat), false, time.Time{}), nil
}
