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
// Elasticsearch bulk and elasticdump output, any of them gzip'd; tens of
// GB pass through a few buffers, line-delimited input on every core. A
// CSV header's unknown column names are read by their values. Other
// containers (xz, bzip2, zstd, lz4, zip, 7z) are refused by name, since
// their bytes read as text give no record. A record with only an e-mail
// or a phone is counted (Report.ContactOnly) but gives no canary: a
// canary is told by its id or username, its e-mail and phone being drawn
// from the key, not invertible.
// Search answers are scored like list answers: the ledger's list of one is
// its query sealed under the canary key, which Plan opens.
//
// Benchmarks (figures in bench_results.txt): BenchmarkScanNDJSON and
// BenchmarkScanContacts (the JSON scanner alone, full profiles and short
// contact records), BenchmarkTraceNDJSON and BenchmarkTraceContacts (a
// whole Read of each) and BenchmarkTraceLong (one Read of 1.1-1.4 GB, its
// buffers paid once) report MB/cpu-s, bytes per CPU second of the process
// (per core on a shared machine; the target is 1 GB/s per core);
// BenchmarkTraceLeak generates the 49,000,000-record copy from the
// lab with its harvest's ledger and traces it (WARDEN_TRACE_RECORDS=N to
// run; WARDEN_TRACE_PROFILE=FILE profiles the timed part).
//
// It must never: accuse an identity whose false-accusation bound is above
// the stated probability; count a record as a canary that the key did not
// make; keep a copy's personal data beyond the run (only ids and counts
// leave a reader); write to the ledger.
package trace
