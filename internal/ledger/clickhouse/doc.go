// Package clickhouse keeps the ledger in ClickHouse, for a fleet of
// gateways that share one ledger: a Sink (a gateway.Recorder) batches
// Accesses into it, and the Client answers the ledger's queries
// (ledger.Source) with the same answers as the local ledger on the same
// traffic.
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
// the spool directory (one file each, written aside, fsynced, renamed) and
// are sent oldest first when it answers again, across restarts of either.
// Past spool.max_bytes a batch is dropped and counted. An insert whose
// answer was lost (a connection cut after the rows were sent) may have
// landed: before sending it again the sink counts that table's rows of
// the batch's id in the batch's day, so no Access is written twice.
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
package clickhouse
