// Package ledger keeps every Access warden yields on local disk, indexed
// by subject, by identity and by author, and answers who was served what.
//
// # Layout
//
// One directory (made 0700; every file 0600), one writer at a time (a lock
// file). Time is cut into hour partitions, named by the hour in UTC:
//
//	2026-11-22T10.wal       the open partition: an append-only log of frames
//	2026-11-22T09.seg       a sealed partition: immutable, zstd-compressed
//	2026-11-22T10.wal.torn-1764  bytes cut from a torn tail, kept aside
//	retired                 hashes of sealed partitions removed by retention
//	key                     the key of the hashes links, pages and look-ups are kept as
//
// A frame is [len u32][crc32c u32][kind][payload], len counting kind and
// payload, little-endian, Castagnoli CRC over kind and payload. Kinds: a
// header (format version, partition hour), a dictionary entry (the next
// integer of one namespace: platform ids, each identity facet, names of
// routes, classes and rules) and an Access, whose ids are the integers the
// partition's dictionary gave them. A sealed partition is a header (the
// hour, the first and last Access time, the SHA-256 of its predecessor)
// followed by a zstd body (dictionary, the index, the Accesses) and the
// SHA-256 of all that: each partition names its predecessor, so an edited,
// removed or reordered partition breaks the chain (`warden ledger verify`).
//
// Per partition the index holds roaring bitmaps over the dictionary's
// integers: identity -> subjects served per class (and any record), and
// masked per class; subject -> identities per class; author -> viewers;
// identity -> lists fetched; per author the impressions. Every facet
// (app, account, ip, net, fingerprint) is an identity dimension.
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
// a 256 KiB write buffer; sealing reads one hour's log back to build its
// index, on a goroutine of its own. Readers load the partitions of the
// window asked.
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
