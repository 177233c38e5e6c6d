// Package ledger keeps every Access warden yields on local disk, indexed
// by subject, by identity and by author, and answers who was served what.
//
// # Layout
//
// One directory (made 0700; every file 0600), one writer at a time (a lock
// file). Time is cut into hour partitions, named by the hour in UTC:
//
//	2026-11-22T10.wal       the open partition: an append-only log of frames
//	2026-11-22T09.seg       a sealed partition: immutable, format 2
//	2026-11-22T10.wal.torn-1764  bytes cut from a torn tail, kept aside
//	ids                     the dictionary shared by sealed partitions
//	retired                 hashes of sealed partitions removed by retention
//	key                     the key of the hashes links, pages and look-ups are kept as
//
// A frame is [len u32][crc32c u32][kind][payload], len counting kind and
// payload, little-endian, Castagnoli CRC over kind and payload. Kinds: a
// header (log format version 1, partition hour), a dictionary entry (the
// next integer of one namespace: platform ids, each identity facet, names
// of routes, classes and rules) and an Access, whose ids are the integers
// the log's own dictionary gave them.
//
// `ids` is a dictionary for the whole ledger, in the same frames: ids to
// dense integers that hold across partitions, so that postings of
// different hours combine as integers. Only the sealer appends to it, and
// syncs it before a partition using its new integers is renamed into
// place: a torn tail holds integers nothing refers to and is cut at the
// next append.
//
// A sealed partition (format 2, magic WLEDGER2) is: the hour, the first
// and last Access time, the SHA-256 of its predecessor, the size of each
// namespace of `ids` its integers are below, the offsets of two parts,
// then the hot tables (uncompressed, 8-byte aligned, read where they lie
// in the mapped file), the cold part (zstd: the Accesses, then the cold
// tables) and the SHA-256 of all that: each partition names its
// predecessor, so an edited, removed or reordered partition breaks the
// chain (`warden ledger verify`). Readers check the structure of what they
// map, not the hashes: that is verify's work.
//
// Tables are posting lists over `ids` integers: sorted 64-bit keys,
// offsets, sorted 32-bit values (table.go). Hot, per facet: author ->
// identities served their content (reach), subject -> who was served it
// with the classes served, the count, first and last (who-took, one
// varint row per identity and class set), and author -> impressions.
// Cold, per facet: identity -> subjects served per class (and any
// record), masked per class, lists fetched, and the identity's first and
// last Access and count (took-by). Every facet (app, account, ip, net,
// fingerprint) is an identity dimension.
//
// Format 1 (per-hour dictionaries, WLEDGER1, before this one) is refused
// by readers and verify with an error naming the file: keep such a
// directory for the warden that wrote it and give this one a new
// directory. Logs (.wal) did not change and are sealed in format 2.
//
// # Durability
//
// The writer appends through a buffer flushed every 100 ms, so a query
// reading the directory sees an Access well within a second of its
// answer; it calls fsync every fsync_interval (default 1 s). A process
// killed outright loses what was buffered (at most 100 ms of Accesses) and
// what waited in the recorder's queue; a machine that stops loses at most
// fsync_interval of them. On start a tail that does not check (a frame cut
// short, a bad CRC) is truncated and the cut bytes are kept beside the log
// (NAME.torn-UNIXNANO), so nothing is silently discarded. An earlier
// hour's log left open by a crash is sealed on start.
//
// # Memory
//
// The writer holds the open hour's dictionary (about 60 bytes per distinct
// id: at 1,000,000 identities and subjects in one hour, about 120 MiB) and
// a 256 KiB write buffer. The sealer holds the shared dictionary (names
// and a map, about 70 bytes per id for the ledger's life: at 1,000,000
// identities with their ip and /24, 1,000,000 subjects and 100,000
// authors, about 280 MiB) and, while it seals, one hour's Accesses and
// their postings. Measured (bench_results.txt, 10,000,000 Accesses of
// that population): a heap peak of 633 MiB, over the 256 MiB the issue
// asks; the shared dictionary grows with distinct ids, never with
// traffic, and is the part to make smaller (pointer-free). Readers map the
// partitions of the window and load the shared dictionary.
//
// # What it must never do
//
//   - Block or slow the request path: it is a gateway.Recorder, fed off the
//     request path through a bounded queue that drops (and counts) rather
//     than waits.
//   - Store a personal data value: it keeps platform ids (record ids,
//     authors, lists), the caller's facets (the audit trail is who took
//     what), names of routes, classes and rules. Values from an answer or a
//     path that the route map does not name as ids (linked ids, which may
//     be usernames; look-ups by username; cursors) are kept only as keyed
//     64-bit hashes.
//   - Rewrite a sealed partition: retention removes whole partitions,
//     oldest first, and notes their hashes in `retired`.
//   - Panic on what it reads: a corrupt or truncated file is an error
//     naming its path.
package ledger
