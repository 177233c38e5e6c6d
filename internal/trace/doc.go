// Package trace reads a leaked copy of personal data and names the
// identities it was taken by: canaries found and verified by the key,
// scored per identity with the symmetric Tardos score over the canary
// slots of the list answers the ledger says it was served, the ledger's
// coverage of the copy's real subjects, and every identity the ledger
// shows was served at least Tracer.NameFrom of them (named, not accused:
// the ledger cannot tell a harvester from a heavy reader).
//
// Readers stream: CSV (with or without a header, any column order or
// names), a JSON array or object dump, NDJSON, MongoDB extended JSON,
// Elasticsearch bulk and elasticdump output, SQL dumps (mysqldump, pg_dump's
// plain format, sqlite3's .dump: sql.go), any of them gzip'd; tens of GB
// pass through a few buffers, line-delimited input and SQL dumps on every
// core. A CSV header's unknown column names are read by their values (its
// "_id", mongoexport's, as the JSON reader reads a store's "_id"), and
// a SQL table's columns are decided by the same rules (columns) from its
// INSERT's or COPY's column list or its CREATE TABLE. A dump is cut into
// chunks where no string is open (sqlcut.go), found by counting quotes,
// not by lexing every row on the reading goroutine. Other containers (xz,
// bzip2, zstd, lz4, zip, 7z) are refused by name, since their bytes read
// as text give no record, and so are pg_dump's custom and tar archives,
// with the pg_restore command that prints them as SQL.
//
// A record with only an e-mail and/or a phone (no id, no username: a copy
// of contact details) is counted (Report.ContactOnly) and gives no ledger
// coverage (the ledger keeps ids). Its canary is found by contact
// (contact.go): a canary's e-mail and phone are drawn from the key, not
// invertible, so the read keeps the distinct contact values that can be a
// canary's (canary.EmailShaped: a configured domain and a suffix of the
// canaries' range; AppendShapedPhone: a number of a configured range,
// written internationally or in the national form of the range's own
// country, never read as another country's), and the report, when there
// are some, replays the ledger once more for the canaries shown to anyone,
// under every key, makes each again and looks its e-mail (lower case) and
// phone (E.164) up among them. A
// match must pass Verify's rule (one present and equal, none present
// differing) and is scored like a canary found by id. Bounds: memory is
// the kept values (a copy of real users' contacts keeps none when the
// canary ranges are ones the platform's users cannot have, as the canary
// section requires) plus a bitmap of served indices per key (8 MiB at
// most); time is a second replay of the ledger's seeded answers and a
// profile per served canary (1.5 us of CPU, canary.BenchmarkProfile).
// Making every index of every key instead (2^26 profiles a key) would
// cost about 100 s of CPU and, even as two 64-bit hashes an index, over a
// gigabyte of table per key for the default config, so it is not done.
// A phone alone is weak (the default ranges hold 600,000 numbers): it
// counts only when exactly one served canary has it, and only when the
// copy's phone-only values are nearly all (nine in ten) served canaries'
// and more than numbers drawn at random from the ranges would be at the
// report's false-accusation probability; a copy listing the ranges beside
// a take finds no canary by phone alone. Without a ledger no canary is
// found by contact (Report.ContactUnmatched counts the values kept).
// Search answers are scored like list answers: the ledger's list of one is
// its query sealed under the canary key, which Plan opens.
//
// Phones in a CSV without a header, or under a name it does not know
// (sniff, columns): a value starting with "+", grouped as numbers are
// written ("(415) 555-2671"), or starting with a trunk "0" or "00" is a
// phone; a column of bare digits is ids unless nine in ten of at least 10
// sampled values are valid numbers (phoneDigits: libphonenumber, on the
// sample only), since a column of phones read as ids hides the real ids
// beside it, gives canary-shaped ids and subject ids no subject has, and
// loses the canaries' phones.
//
// Benchmarks (figures in bench_results.txt): BenchmarkScanNDJSON and
// BenchmarkScanContacts (the JSON scanner alone, full profiles and short
// contact records), BenchmarkTraceNDJSON and BenchmarkTraceContacts (a
// whole Read of each) and BenchmarkTraceLong (one Read of 1.1-1.4 GB, its
// buffers paid once) report MB/cpu-s, bytes per CPU second of the process
// (per core on a shared machine; the target is 1 GB/s per core);
// BenchmarkTraceLeak generates the 49,000,000-record copy from the
// lab with its harvest's ledger and traces it (WARDEN_TRACE_RECORDS=N to
// run; WARDEN_TRACE_PROFILE=FILE profiles the timed part);
// BenchmarkTraceLeakContacts is the same copy written as e-mails and phones
// only, BenchmarkTraceLeakSQL as a mysqldump of the harvester's users table.
// BenchmarkTraceSQL reads BenchmarkTraceContacts' records (and a full
// name) as a mysqldump, a pg_dump (COPY) and a pg_dump --inserts.
// BenchmarkTraceContactOnly reads contact-only records with canaries on
// (a third of the phones national), BenchmarkKeepContact times keepContact
// alone per record.
//
// It must never: accuse an identity whose false-accusation bound is above
// the stated probability; count a record as a canary that the key did not
// make; keep a copy's personal data beyond the run (only ids and counts
// leave a reader); write to the ledger.
package trace
