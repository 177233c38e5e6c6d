package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// The schema (warden ledger init). Every table is partitioned by day (UTC)
// and carries the batch it came in, so a batch whose insert may or may not
// have landed is looked for before it is sent again. Times are seconds
// (DateTime: 18.16 has no DateTime64) and microseconds within the second.
//
//   - accesses: one row per Access, everything the local ledger keeps,
//     ordered by time (explain, took-by's counts).
//
//   - takes: one row per record served (subject) and Access, with the
//     identity's facets and the classes served and masked, ordered by
//     subject, then time: who-took reads one subject's range.
//
//   - views: one row per piece of content served (author) and Access,
//     ordered by author, then time: reach reads the authors' ranges.
//
//   - privacy_charges: one row per DP answer charged to a researcher's
//     budget (warden reach --researcher, against ClickHouse): the
//     researcher, the answer's id (a keyed hash of the question), the
//     charge's own id, rho charged (an exact rational), when, and the
//     answer as released (never an exact figure). A repeat is found by
//     (researcher, answer_id).
//
//   - privacy_locks: one researcher's lock while a gateway charges
//     (Budgets): a claim (sign 1) and its withdrawal (sign -1). A plain
//     MergeTree, not a CollapsingMergeTree: a claim inserted twice (a
//     retry) would outlive its one withdrawal there. Only the last minute
//     is read; older days' partitions may be dropped.
//
//   - privacy_key: the key of the hash that seeds answers' noise, one row
//     made by Init (the lowest id wins, should two inits race).
//
// 18.16 has no projections (a second order of one table), so the orders
// are tables the sink writes; no bitmap functions, so distinct people are
// uniqExact; large id lists are external data, not IN literals.
var schema = []string{
	`CREATE DATABASE IF NOT EXISTS {db}`,
	`CREATE TABLE IF NOT EXISTS {db}.accesses (
  t DateTime('UTC'), us UInt32, batch UInt64, req String, route String,
  app String, account String, ip String, net String, fingerprint String,
  list String, page UInt64, lookup UInt64, unref UInt8,
  status UInt16, rule String, facet String, mask_rules Array(String),
  classes Array(String), rec_ids Array(String), rec_classes Array(UInt64), rec_masked Array(UInt64),
  authors Array(String), links Array(UInt64)
) ENGINE = MergeTree() PARTITION BY toDate(t) ORDER BY (t, us, req)`,
	`CREATE TABLE IF NOT EXISTS {db}.takes (
  subject String, t DateTime('UTC'), us UInt32, batch UInt64, req String,
  app String, account String, ip String, net String, fingerprint String,
  served Array(String), masked Array(String)
) ENGINE = MergeTree() PARTITION BY toDate(t) ORDER BY (subject, t, us)`,
	`CREATE TABLE IF NOT EXISTS {db}.views (
  author String, t DateTime('UTC'), us UInt32, batch UInt64,
  app String, account String, ip String, net String, fingerprint String
) ENGINE = MergeTree() PARTITION BY toDate(t) ORDER BY (author, t, us)`,
	`CREATE TABLE IF NOT EXISTS {db}.privacy_charges (
  researcher String, answer_id String, id UInt64, rho String,
  t DateTime('UTC'), us UInt32, answer String
) ENGINE = MergeTree() ORDER BY (researcher, answer_id)`,
	`CREATE TABLE IF NOT EXISTS {db}.privacy_locks (
  researcher String, id UInt64, sign Int8, t DateTime('UTC') DEFAULT now()
) ENGINE = MergeTree() PARTITION BY toDate(t) ORDER BY (researcher, id)`,
	`CREATE TABLE IF NOT EXISTS {db}.privacy_key (
  key String, id UInt64
) ENGINE = MergeTree() ORDER BY id`,
}

// Init creates the database and its tables when missing, and the privacy
// key when privacy_key has none (warden ledger init); it changes nothing
// that exists.
func (c *Client) Init(ctx context.Context) error {
	for _, q := range schema {
		q = strings.ReplaceAll(q, "{db}", c.db)
		if _, err := c.do(ctx, q, nil, false, nil, nil); err != nil {
			return fmt.Errorf("ledger init: %w", err)
		}
	}
	if err := c.initKey(ctx); err != nil {
		return fmt.Errorf("ledger init: privacy key: %w", err)
	}
	return nil
}

// Schema is the DDL Init runs, for database db.
func Schema(db string) string {
	var b strings.Builder
	for _, q := range schema {
		b.WriteString(strings.ReplaceAll(q, "{db}", db))
		b.WriteString(";\n")
	}
	b.WriteString("-- and, when privacy_key is empty, one row: 32 random bytes and a random id (the DP answers' noise key; Init sends it as RowBinary)\n")
	return b.String()
}

// ErrNoSchema says the database lacks the ledger's tables: warden ledger
// init was not run on it.
var ErrNoSchema = errors.New("run warden ledger init --config FILE once for the fleet")

// Ready checks, at a gateway's start, that ClickHouse takes this client's
// user and password and that its database holds the ledger's tables, so
// that a mistake in either stops the start instead of sending every batch
// to the spool until it is full. A ClickHouse that cannot be reached is
// not checked: the error is an *UnreachableError, and the gateway starts,
// its batches waiting in the spool.
func (c *Client) Ready(ctx context.Context) error {
	rows, err := c.rows(ctx, "SELECT name FROM system.tables WHERE database = currentDatabase() AND name IN ('accesses', 'takes', 'views')")
	if err != nil {
		return err
	}
	if len(rows) != 3 {
		return fmt.Errorf("clickhouse: %s: database %s holds %d of the ledger's 3 tables (accesses, takes, views): %w", strings.Join(c.addrs, ","), c.db, len(rows), ErrNoSchema)
	}
	return nil
}
