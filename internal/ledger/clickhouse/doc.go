// Package clickhouse keeps the ledger in ClickHouse, for a fleet of
// gateways that share one ledger: a Sink (a gateway.Recorder) batches
// Accesses into it, and the Client answers the ledger's queries
// (ledger.Source) with the same answers as the local ledger on the same
// traffic, and a fleet's questions a local ledger answers its own way
// (fleet.go: the dashboard's top identities and budget standing, warden
// audience's reached people).
//
// It speaks ClickHouse's HTTP interface (RowBinary inserts, external data
// for id lists), which Debian's clickhouse-server 18.16 answers as current
// servers do; the schema is in schema.go (warden ledger init creates it).
//
// # Delivery
//
// A batch (batch_size Accesses, or what came in batch_interval, never
// spanning a day) is inserted as one block per table, so each table's
// insert lands whole or not at all. While ClickHouse fails, batches wait in
// the spool directory (one file each, written aside, fsynced, renamed;
// one sink per directory, held by a flock on its file lock) and
// are sent oldest first when it answers again, across restarts of either.
// Past spool.max_bytes a batch is dropped and counted. An insert whose
// answer was lost (a connection cut after the rows were sent) may have
// landed: before sending it again the sink counts that table's rows of
// the batch's id in the batch's day, so no Access is written twice.
//
// # Researchers' budgets
//
// Budgets keeps the researchers' DP budgets in ClickHouse for answers
// over it (a privacy.Keeper): charges in privacy_charges, the noise key in
// privacy_key (made by Init), a lock per researcher in privacy_locks,
// since 18.16 has no transactions (budget.go says how it holds). It gives
// the answers privacy.Budgets gives with the same key.
//
// # Speed
//
// The sink encodes RowBinary straight into a batch's buffers, which are
// kept for the next batches once a batch is sent (bufPool), formats
// addresses in place, and writes a spooled batch in pieces: no whole-batch
// copy. Inserts go uncompressed: compressing them (gzip over HTTP) would
// spend the gateway's CPU, the figure the sink is held to, to save network
// bytes.
//
// # What it must never do
//
//   - Run on the request path: Record is called from the recording's
//     goroutine, and a slow or absent ClickHouse only fills the spool.
//   - Lose an Access silently: every drop is counted
//     (warden_ledger_clickhouse_dropped_total) and logged.
//   - Store a personal data value: the same ids, names and keyed hashes
//     as the local ledger (pages, look-ups and links hashed with the key
//     in the spool directory).
//   - Answer a researcher past the budget, or charge without the lock;
//     put the privacy key in a query's text or a log.
//   - Put a query's SQL or URL, or a credential, in an error: errors name
//     the query by a short name (queryName), the address and what failed;
//     the SQL is kept in the error value for a debug log.
package clickhouse
