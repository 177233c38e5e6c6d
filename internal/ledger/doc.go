// Package ledger keeps every Access warden yields on local disk, indexed
// by subject, by identity and by author, and answers who was served what.
//
// # Layout
//
// One directory (made 0700; every file 0600), one writer at a time (a lock
// file). Time is cut into hour partitions, named by the hour in UTC, and
// an hour of more than Options.PartitionAccesses Accesses (150,000 by
// default) into parts, each further part named by the second it opened:
//
//	2026-11-22T10.wal       the open partition: an append-only log of frames
//	2026-11-22T09.seg       a sealed partition: immutable, format 5
//	2026-11-22T09_41_07.seg a further part of that hour, opened at 09:41:07
//	2026-11-22T10.wal.torn-1764  bytes cut from a torn tail, kept aside
//	2026-11-22.day          a day's reach rollup (see Day rollups; rollup.go)
//	2026-11-22T09.aut       an hour's author index (see Author indexes; authored.go)
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
// A sealed partition (format 5, magic WLEDGER5; seg4.go) is: the hour,
// the first and last Access time, the SHA-256 of its predecessor, the size
// of each namespace of `ids` its integers are below, the partition's
// classes, then three compressed sections, a CRC32C and the SHA-256 of
// all that: each partition names its predecessor, so an edited, removed
// or reordered partition breaks the chain (`warden ledger verify`).
// Readers do not hash the hours (a week's reach would read every byte of
// 168 of them): that is verify's work. They check every byte an answer
// depends on all the same: each compressed block and column is a zstd
// frame with the checksum of its content (checked as it is
// decompressed), and the CRC32C covers what is not compressed (the
// header, the keyed sections' directories of first keys and lengths, the
// Accesses' column directory: about 1.4 KB of a 3 MB hour, parsed at
// open anyway), checked when a reader maps the file. Only the trailing
// SHA-256 is left to verify: a changed byte there changes no answer (a
// rollup or author index naming the hour by it is passed over, the hours
// answer). Format 4 (WLEDGER4: the same without the CRC32C), sealed by
// an earlier warden, is still read and verified, with the gap that
// closed: a changed byte of its header or directories can change an
// answer without an error until verify runs (the writer does not
// rewrite sealed hours: they are chained). TestDamageEveryByte flips the
// bytes of a sealed hour and of a rollup; TestDamageFormat4Gap shows the
// earlier formats' answers changed. What does not decode or check is an
// error naming the file: every
// query (WhoTook, TookBy, Viewers, Find, Distinct*, Each through Err)
// fails rather than answer from the other hours as if the damaged one
// held nothing. Only derived files are passed over: a day rollup or an
// author index (whose SHA-256 the reader does check: its chunk marks
// have no block checksum) that does not parse, check or decode is
// skipped, the answer computed exactly from the hours, and said
// (WithWarnings, Reader.Fallbacks). The writer rebuilds at start an
// author index no reader can use, and verify lists such an index under
// rebuild, apart from the hours' problems; it rebuilds at start a day
// rollup whose SHA-256 fails too (readers do not hash rollups, they
// check its CRC32C and blocks: verify reports a damaged one as a
// problem), and one written before rollups carried a CRC32C.
//
// Identities are tuples: every facet of an Access at once (app, account,
// ip, net, fingerprint) is one integer of the namespace nsTuple of `ids`,
// added by the sealer. The sections:
//
//   - viewers (reach): author -> impressions and the tuples served the
//     author's content, delta-coded;
//   - takers (who-took): subject -> one row per tuple and class set: the
//     classes served unmasked, the count, first and last;
//   - the Accesses as columns (columns.go): times delta-coded, request ids
//     as prefix and counter deltas, the few names in one column, each
//     facet, records, authors, hashes in theirs; each column zstd'd.
//
// viewers and takers are keyed sections (keyed.go): sorted keys cut in
// blocks of about 16 KiB, each zstd'd alone, with a directory of the
// blocks' first keys, so that who-took decompresses one block per
// partition; a reader keeps the blocks it decompressed. A query by a facet
// maps tuples to that facet's values (an array per facet, built from `ids`
// on first use); a row or a viewer whose tuple lacks the facet counts as
// "without it", as format 3's rows did. Took-by, explain, the distinct
// counts and windows that cut a partition decompress the Accesses: one
// partition at a time, dropped after its scan (see Memory). Took-by and
// the distinct counts first decompress the identity column alone and
// skip a partition none of whose tuples has the identity asked.
// Explain (Reader.Find) likewise decompresses the request id column alone
// (prefix and counter deltas: about 2 bytes an Access), newest partition
// first, and decodes whole only the partition that holds the id; a
// format 3 partition, or a column that does not parse, is decoded whole.
//
// # Day rollups
//
// When every hour of a day is sealed (no log of the day left, and a later
// hour on disk or the day's 23:00 sealed), the sealer writes the day's
// rollup (DAY.day, magic WLEDGRD2; rollup.go): the day's viewers sections merged,
// author -> impressions and the accounts, and again the ips, served the
// author's content that day, each value once, in keyed sections like an
// hour's. A reach over whole days reads one section a day instead of 24:
// 7 sections for a week instead of 168, and an author's viewers who recur
// across hours once. It keeps facet values, not tuples: mapping tuples to
// accounts reads a 4-byte-a-tuple table at random, a cache miss per
// posting. Reach by another facet, hours a window cuts and days without a
// rollup read the hours, as before. The rollup is derived: it names each
// hour it was made from by its SHA-256, verify rebuilds it from them and
// compares (an edited rollup, one whose hour changed or one that leaves an
// hour out is a problem), and a reader uses it only when the hours of its
// day it holds are exactly those it names, by hash (else the hours answer,
// with the same result; readers do not hash what they map, they check
// the CRC32C of its header, directories and trailer and each block's
// zstd checksum, and pass over a rollup that fails, with a warning).
// Rollups written before the CRC32C (WLEDGERD) are read without it and
// rebuilt by the writer at its next start. Retention
// removes a day's rollup with the first hour of the day it removes; the
// rest of that day is read hour by hour until it goes. A ledger sealed
// before rollups gets them when the writer next starts. Days with a
// format 3 hour get none. Reach reads its sections (rollups and hours) in
// parallel, one goroutine per core (GOMAXPROCS), and adds each author's
// runs to its bitmap in parallel too (Reader.Viewers).
//
// # Author indexes
//
// An hour a window cuts (a window typed as `--from 168h` cuts the hour
// of its start, at its exact time) cannot be read from its viewers
// section, which holds no times. After each seal the sealer writes the
// hour's author index (HOUR.aut, magic WLEDGERA): author -> the numbers
// of the Accesses that served the author's content (their places in the
// hour's Accesses section), in a keyed section, and for each chunk of
// 1,024 Accesses its least and greatest time and where it starts in the
// time and identity columns. Reach over a cut hour reads the postings of
// the authors asked, skips the chunks the window leaves out, reads the
// identities of the Accesses named in the others by skipping varints
// from the chunk's start (eight bytes at a time), and decodes times only
// in the chunk the window's end falls in (Reader.authoredViewers): about
// 1 ms of CPU an hour at the density, most of it decompressing
// the two columns, where reading every Access's authors from the time,
// identity, misc and author columns (eachAuthored, what an hour without
// an index still does) cost about 9. Like a rollup it is derived: it names the
// sealed hour by SHA-256, verify rebuilds it from the hour's columns and
// compares, a reader uses it only for the hour and hash it names (else
// the columns answer, with the same result), retention removes it
// before its hour, and a ledger sealed before indexes gets them when the
// writer next starts (format 3 hours get none).
//
// Format 3 (WLEDGER3; partition.go) is still read and verified: the same
// header with a size per namespace but nsTuple, then hot tables per facet
// (uncompressed, read where they lie in the mapped file, under no check
// but verify's) and the Accesses (row by row, zstd). Format 2 (WLEDGER2: cold took-by tables, who-took
// rows for absent facets) and format 1 (WLEDGER1: per-hour dictionaries)
// are refused by readers and verify with an error naming the file: keep
// such a directory for the warden that wrote it and give this one a new
// directory. Logs (.wal) did not change and are sealed in format 5.
//
// Request ids are kept whole, for explain: warden's (gateway/pipeline.go)
// are a random per-process prefix and a counter, so that a column of them
// compresses to almost nothing (prefix and counter deltas). The counter is
// also what a caller reads in a refusal body: two of its own ids tell it
// how many requests the gateway served between them. If that volume must
// not show, the gateway should hand out a keyed permutation of the
// counter (a 64-bit block cipher under a per-process key) and give the
// recorder the counter itself; the ledger would keep counters and the
// key, and explain would permute. Random ids instead would cost 12
// incompressible bytes per Access, more than half of all the rest.
//
// # Size
//
// Measured (BenchmarkSealDense, bench_results.txt) on one hour at the
// issue's density: 139,000 Accesses; 1,000,000 identities with their ip
// and /24; 1,000,000 subjects; 100,000 authors, Zipf 1.1; half profile
// look-ups (one record), half feed pages (two posts, two author profiles):
// 1.5 records and one author per Access on average. Format 4 takes 20.2
// bytes per Access (format 3: 113.9; format 5 adds 4 bytes an hour, its
// CRC32C):
//
//   - the Accesses, 7.7: the identity 2.9 (a tuple: one of a million, 20
//     bits, in 3-byte varints zstd cannot shrink: random), records 3.3,
//     authors 1.8, names and classes 0.6 (repeated: zstd), request ids
//     about 0, time about 0 (the benchmark spaces Accesses evenly; real
//     arrivals, Poisson at 26 ms, carry about 16 bits each: 2 more bytes);
//   - who-took rows, 10.7: per subject and identity, the tuple (20 bits)
//     and the first time (µs in the hour: 32 bits of entropy) are
//     incompressible; about 1.45 rows per Access;
//   - reach postings, 1.8: author -> tuples, delta-coded (a popular
//     author's are dense).
//
// The 4 bytes per Access, indexes included, is below what an
// Access holds: its identity (20 bits) and its records and authors (about
// 35 bits for this mix) alone are 7 bytes, whatever the encoding. The
// floor of this design is about 18.5 bytes (Accesses 7.4, rows 9.4, reach
// 1.7); a design whose who-took index names Access numbers (17 bits) and
// reads identity and time from the Accesses' columns would approach 12,
// at the cost of decompressing those columns for every partition a
// who-took touches (the rows kept here answer it from one 16 KiB block
// per partition). The shared dictionary adds about 20 bytes per distinct
// id and tuple once, not per Access.
//
// Author indexes add about 1.8 bytes per Access (257 KB for an hour of
// 139,000 Accesses beside its 3.1 MB: an Access number, delta-coded per
// author, is about 1.8 bytes at one author an Access).
//
// Day rollups add about 2.8 bytes per Access at the density
// (9.4 MB a day of 3.3 million Accesses: 1.4 by account, 1.4 by ip): a
// viewer of a rarely read author recurs little within a day, and sorted
// values of a million, delta-coded, are close to incompressible (zstd
// takes 11.1 MB of varints to 9.3 at the sealer's level, 9.3 at its best).
//
// # Durability
//
// The writer appends through a buffer flushed every 100 ms, so a query
// reading the directory sees an Access well within a second of its
// answer; it calls fsync every fsync_interval (default 1 s). A process
// killed outright loses what was buffered (at most 100 ms of Accesses) and
// what waited in the recorder's queue; a machine that stops loses at most
// fsync_interval of them, and what was written while the last fsync ran
// (the fsync runs beside Add, not under its lock: a slow disk delays the
// next fsync, never an Add; so does the last fsync of an hour's log, after
// which it is closed and queued for sealing). On start a tail that does not check (a frame cut
// short, a bad CRC) is truncated and the cut bytes are kept beside the log
// (NAME.torn-UNIXNANO), so nothing is silently discarded. An earlier
// hour's log left open by a crash is sealed on start. A log damaged in
// its middle is told apart from a torn tail (logDamage): a frame that
// does not check with whole frames after it (a stop never leaves one: its
// last write is cut short; a machine's crash may, when pages written
// after the last fsync reach the disk out of order), or a frame that
// checks and does not decode. Readers fail on it naming the log (a query
// never answers without what follows the damage), verify reports it, the
// writer cutting it logs an error and counts it, and verify names the
// file kept aside while it holds whole frames.
//
// A write the disk refuses part-way (full, an I/O error) is cut back to
// the log's last whole frame: a partial frame between frames would stop
// every reader there and be cut, with all after it, at the next start.
// What waits stays in the buffer, in order, tried again by each 100 ms
// flush (Add does not retry it); past Options.PendingBytes (32 MiB) new
// Accesses are dropped before any of their frames join the buffer, so
// that every Access written keeps the dictionary frames it needs, and
// counted (warden_ledger_lost_total), as are those waiting when their
// hour's log is closed. A seal that fails is tried again, doubling from 5
// s to 5 minutes, before any later log is sealed: a sealed hour names its
// predecessor's hash, and one sealed past a failed one would break the
// chain once both were sealed. A log that does not check at seal time has
// its tail kept aside as at start, and the rest sealed. An Access whose
// frame would pass maxFrameBody (4 MiB: a reader takes a longer length for
// corruption and stops there) is not written: logged and counted lost.
//
// # Memory
//
// Dictionaries are pointer-free (strtab in dict.go: names in one byte
// slice, an open-addressing table of integers), so the collector marks
// them without scanning them. The writer's memory is, with N distinct ids
// in the ledger, H in one hour and A Accesses in one hour:
//
//   - Add: the open hour's dictionary (H names, about 40 bytes each for
//     the ids of the population; reset and reused every hour) and
//     a write buffer flushed at 256 KiB.
//   - The sealer: the shared dictionary (N names, about 23 bytes each at
//     the population: the name, 7 to 13 bytes, its length, 1, and
//     8 bytes a slot, holding the name's integer, of a table kept 5/8 to
//     3/4 full; it keeps no integer -> name index; never shrinks, grows
//     with distinct ids, never with traffic); its zstd encoder (12 MiB: 8
//     of history, 4 of tables); and, while it seals one hour, that hour's
//     log, Accesses, postings and sealed file: sealing allocates about
//     1,000 bytes per Access of the hour (BenchmarkSealDense), about 51 MiB
//     of it live at once at 139,000 Accesses an hour (the decoded
//     Accesses 36), all freed before the rollups run.
//   - The rollups, once a day: each tuple's account and ip (8 bytes a
//     tuple, read from `ids` for the day's rollup and dropped after it: 8
//     MiB at a million tuples, about 160 ms) and one decompressed block
//     (16 KiB) of each of the day's 24 hours' sections and of the rollup,
//     and the postings of one author: the rollup is merged and written
//     block by block, never a day in memory.
//   - The author indexes: while one hour's index is written, its time,
//     identity, misc and author columns decompressed (about 8 bytes an
//     Access) and 8 bytes per author an Access served.
//
// At 1,000,000 identities (each with its ip and /24), 1,000,000 subjects
// and 100,000 authors, N is about 4.2 million (3.2 million ids and 1
// million tuples): 93 MiB of shared dictionary in the sealer (23 bytes a
// name; 138 MiB, 34 bytes, when its tables were powers of two, as little
// as 3/8 full, its records held their integers and a loaded one kept 4
// bytes a name unused; more while it grew by append's quarter) and 141
// MiB in a reader (35 bytes a name, with each name's start; 170 before),
// measured on the 4,196,710 names of a 10,000,000-Access ledger of that
// population (999,962 of the identities). Measured (bench_results.txt,
// "Writer memory"): warden bench ledger at the 100,000,000
// Accesses, the whole bench process's live heap peaked at 212 MiB (266
// before), within the 256 MiB with 44 MiB to spare (223 MiB in
// one run since the sealer keeps its scratch while seals follow each
// other, bench/results/ledger-100m-2026-12-07-1800.txt); at -accesses
// 10000000 -days 3 (the same 139,000 Accesses an hour) 206-211 MiB
// (257-262 before, runs alternated). At its peak (a heap profile,
// -heapprofile, of the 100,000,000 run) it holds the sealer's dictionary
// (93 MiB), the hour being sealed (51), the open hour's dictionary (16),
// the zstd encoder (14) and the bench's generator (12). The writer's CPU
// is 3-7% more while the dictionary grows (2.70-2.83 -> 2.89-2.91 us an
// Access at 10,000,000, where it grows from nothing to 4.2 million names:
// tables grown by a fifth and data by an eighth copy more often, and the
// probe reads its slot widths from the table); Add's is unchanged.
//
// Heap in use (live plus garbage not yet collected, what the process's
// memory follows) is another matter: at GOGC=100 the collector lets the
// heap grow to twice what its last cycle found live before it collects
// again, and the sealer allocates about 140 MiB an hour of short-lived
// memory beside the long-lived dictionary, so heap in use peaks near
// twice the live heap: 393 MiB at 100,000,000 (493 before), 353-357 at
// 10,000,000 (439-461 before). Less garbage per seal only makes
// collections rarer; it does not move that bound. The bound is the
// process's memory limit: GOMEMLIMIT=256MiB (set by the operator for the
// whole process: the writer shares its heap with the request path, so it
// does not set one itself) kept heap in use at 251-258 MiB and the RSS at
// 312 MiB instead of 505-525, at 2.8 times the collections (measured
// before the sealer's records lost their integers, live heap 213-226 MiB;
// the collector's share of the CPU 2.2% -> 4.9%; the process's CPU 15%
// more, half of it the kernel's, the runtime returning memory to the
// system to stay under the limit): marking stays cheap because the bulk
// of what is live, the dictionaries, is pointer-free. With the live heap
// about 210 MiB the limit leaves the collector about 45 MiB of headroom;
// below the live heap a limit cannot hold (the runtime then exceeds it
// rather than collect without end).
//
// The seal's share is bounded by a partition, not by the gateway's rate:
// a partition of A Accesses needs up to about 1,000 A bytes while it is
// sealed, about 390 live, and an hour of more than
// Options.PartitionAccesses (150,000: about 150 MiB allocated, 60 live)
// is cut into parts (see Parts of an hour). Readers map the partitions
// of the window and load the shared dictionary (its look-up built per
// namespace on first use); a format 4 or 5 reader also keeps the blocks it decompressed and, per facet
// queried, an array of each tuple's value (4 bytes per tuple).
//
// A query's memory is bounded by one partition, not by its window: a
// sealed partition's Accesses (about 300 bytes each decoded) are decoded
// for one scan (Reader.accesses) and dropped before the next partition's;
// the reader keeps only the mapped file, so a reader asked again decodes
// again, and what a query returns (Entry, results) holds names, never
// pointers into decoded Accesses. Measured (BenchmarkTookByRepeated, 24
// sealed hours of 20,000 Accesses, took-by of an account in every hour):
// the reader's live heap after the query 1.1 MiB (when partitions kept
// their Accesses decoded: 122 MiB, growing with the window: tens of GiB
// over 30 days of 100,000,000 Accesses); CPU 150 ms for each asking of
// one reader (kept decoded: 8 ms after the first), 148 ms with a fresh
// reader (139 ms). Only Verify and the sealer decode a partition whole
// and keep it, one at a time.
//
// # Parts of an hour
//
// An hour at 10,000 Accesses/s, 36 million, would need up to 36 GiB
// sealed whole; cut in parts of 150,000 it is 240 parts, one sealed every
// 15 s. A part opens when an Access of the hour finds the open part full;
// it is named by that Access's second (or the open part's plus one), so
// an hour has at most 3,600 parts: past that (a million Accesses a second
// at the default) the last grows.
//
// A part is a partition like an hour: its own log and dictionary, its
// predecessor named in the chain (an hour's parts chain in the order they
// opened, which is their names' order), its own author index, and a day's
// rollup names each part it was made from. Queries, windows and retention
// treat an hour's parts as that hour (hourOf), its Accesses by their own
// times. A day's rollup merges at most 1,024 partitions at once
// (rollupFanIn: each is mapped, and a block of each decompressed, while
// they are merged); a day cut in more is merged a group of 1,024 at a
// time into a rollup of the group, written aside in the directory, then
// those into the day's (the same bytes: a union and a sum), so a busy
// gateway's days keep their rollups (before, a day of more than 2,048
// parts had none, and a week's reach of such days read every part's
// author index).
//
// What grows with parts is the directory. The sealer lists it for
// retention and rollups at most once a minute (housekeepEvery; put off,
// they still run, and when the sealer stops), makes each part's author
// index as it seals it, and chains a part to the one it sealed last
// without listing. A reader lists it (100,000 files in about 0.2 s). The
// partitions of a day the window covers whole and its rollup answers
// (the rollup names exactly the day's sealed partitions, by SHA-256, read
// from each file's last 32 bytes) are not mapped when the reader opens
// (coveredDays): reach by account or ip reads the rollup alone, and
// never maps them; any other query (and reach by net, which rollups do
// not keep) maps them all first. Reach of 1,000 authors over a day of
// 2,400 parts went from 217-297 to 87-97 ms of CPU (BenchmarkBusyDay,
// alternated 3 times), most of it now the listing and the dictionary.
// Such a reach answers from the rollup whatever a byte of the day's
// hours says past their hashes (verify checks them). Every other query
// maps every partition of its window, so its window is bounded by the
// process's memory maps (vm.max_map_count, 65,530 by default: about 9.8
// billion Accesses at the default part; past it the query fails naming
// the file it could not map). A gateway at 10,000 Accesses/s reaches that
// in 11 days: raise partition_accesses (and the seal's memory with it) or
// the limit, or keep such a fleet's ledger in ClickHouse.
//
// The writer's CPU per Access grows with parts where the same names recur
// in each (each part's log writes its names again and the sealer interns
// them again): 1.11-1.17x for 1,200,000 Accesses of 65,536 recurring ones
// in an hour (bench_results.txt, "A busy hour"). At the density
// an hour is one part. On a busy gateway the sealer's CPU (about 1.5-2 us
// an Access) is spent as parts fill rather than at the hour's end, so
// warden bench's row (e-ledger) now counts it: 1.05-1.22x row (e)'s CPU
// per request in three runs, 1.03x before parts
// (bench/results/e-ledger-parts-2026-12-07.md); 1.10-1.11x since the
// sealer keeps its scratch (bench/results/e-ledger-2026-12-07-1807.md;
// row (e-ledger) alone, alternated 6 times with the binary before it:
// 3% less CPU per request, lower in each pair,
// bench/results/ab-scratch-2026-12-07-1818.txt).
//
// # Reading the open hour
//
// A reader reads an open log up to its last whole frame. Alone
// (OpenReader without options, the commands) it decodes, translates and
// indexes the whole log. A server asking many queries owns a Cache and
// opens every reader WithCache(c) (Dir(dir, WithCache(c)) as a Source): the
// cache keeps each open log's Accesses decoded and translated into the
// shared dictionary's integers with the offset read, decodes only what was
// appended since its last reader into a chunk (at most 16,384 Accesses; a
// query sees a log as its chunks), indexed when a query first reads its
// index (who-took, reach), and reads the logs again
// when the shared dictionary grew (a seal) or a log was replaced. Its
// memory is the open hours' Accesses decoded, about 325 bytes each (the
// live heap grew by 248 MiB for a 10-minute lab run's 800,000 Accesses,
// BenchmarkPages in internal/dashboard), plus the index of the chunks
// queries read; it is released when the log is sealed: the open part and
// any waiting for the sealer, about 150,000 Accesses (49 MiB) each at the
// default, whatever the rate (at the lab's rate a whole hour was 4.8
// million Accesses, 1.5 GiB, past the Cache's bound of 2 million, where
// each query then read the open log whole).
//
// # Cost per Access
//
// On a gateway every recorder's CPU competes with the request path (two
// cores in warden bench), so the writer is built for CPU per Access:
//
//   - Record encodes an Access where it lies (no Entry, no slice per
//     Access) and keeps nothing of it but its Identity's values, so the
//     gateway reuses the Access's memory once recorded (Transient); the
//     dashboard's Watch rides on the same recording (gateway.Recorders).
//   - A 64-slot front cache, indexed by where a string's bytes lie and
//     checked by content, answers the names (route, classes, rules) and
//     the facet values that recur as the same strings (an account from
//     identify's token cache, a fingerprint from its cache) without
//     hashing them or reading the dictionary.
//   - The ids of one Access are hashed first and, in tables past 256 KiB,
//     their slots and then their names prefetched (prefetch in dict.go;
//     cacheline.Prefetch, a PREFETCHT0 or PRFM instruction, which unlike a load
//     does not hold the instructions behind it): the cache misses of
//     several look-ups overlap instead of following one another, and the
//     look-ups reuse the hashes. What needs no id (names, keyed hashes)
//     is done while the slots arrive.
//   - A batch (AddBatch; RecordBatch, a gateway.BatchRecorder: the
//     recording hands over what it drains, up to 32 Accesses) takes the
//     lock once and spreads the two misses of a look-up over three
//     Accesses (batch.go): Access i+2's ids hashed and their slots
//     prefetched, Access i+1's names prefetched from its slots, Access
//     i appended, so that no Access waits on its own slots. Hashes
//     depend on a table's seed alone, which growth and an hour's reset
//     keep; each Access's are its own, consumed in its look-ups' order
//     (front-cache hits included). The log is the one Add writes,
//     byte for byte (TestBatchLogSameBytes). Add's thread per Access
//     (BenchmarkIngest one by one and BenchmarkIngestBatch 32 at a
//     time, alternated 10 times, bench_results.txt "Add in batches"):
//     median 874 -> 800 ns of CPU, lower in every round (1-17%); the
//     misses of one Access's ids already overlapped each other, and the
//     rest is work (hashing, reading the Access, the tables' growth).
//   - Frames are checksummed where they lie in the write buffer.
//
// Add is not all the writer costs: at the density the sealer
// spends about twice Add's CPU per Access, on its own goroutine (another
// core of a gateway's, the same machine's CPU). Per Access of a sealed
// hour (a profile of BenchmarkIngest over a day: 3,336,000 Accesses;
// 1.7 µs of the sealer's in all): the hour's names and tuples interned
// into the shared dictionary, about 3.7 an Access, two cache misses each
// in tables of millions (0.55 µs, its tables' growth included; 0.85
// before the sealer prefetched); the index and compression (0.55 µs;
// zstd half of it); reading the log back (0.4 µs); the day rollups and
// the author indexes (0.1 µs). `warden bench ledger -accesses 10000000
// -days 3` counts 2.8-2.9 µs of the writer's CPU an Access (Add's thread
// 0.85-0.87; 3.4-3.6 and 1.0 before the prefetches). What the
// sealer does for it:
//
//   - Postings and who-took takings are sorted by an LSD radix sort
//     (radix.go: 11-bit digits, the digits every key shares skipped)
//     instead of pdqsort; an author's impressions are counted from its
//     sorted pairs.
//   - The hour's names and tuples are interned in a pipeline
//     (dictionary.internMany): name i+16 hashed and its slot prefetched,
//     name i+8's record prefetched from its slot, name i looked up, so
//     that about 16 look-ups' misses are in flight at once; a table that
//     grows places its names the same way (rehash), each slot prefetched
//     16 names ahead. (Batches of 16 read ahead with loads, as before,
//     waited for each batch's misses: adopt was 26% of the profile of
//     BenchmarkIngest, 16% since; bench_results.txt.)
//   - A log's Accesses are decoded into an arena (entryArena: request
//     ids, classes, records and authors cut from large chunks, not four
//     or five allocations an Access), its dictionary's tables sized from
//     a count of its frames.
//
// Each sorts and encodes as before: the sealed bytes are the same. The
// rest is in the design: every id is interned twice, by Add into the
// hour's dictionary (the log names its own integers) and by the sealer
// into the shared one. Add interning into the shared dictionary itself,
// keeping per name its integer of the open hour (the log's frames as
// now) and handing the sealer each hour's integers -> shared integers,
// would take the sealer's look-ups of ids (not of tuples) away, about
// 0.4 µs an Access since they are prefetched (0.6 before), at the cost
// of Add probing a table of millions instead of the hour's (more misses
// on the request path's core, where the sealer's are on another) and of
// the sealer's dictionary shared under the writer's lock. Handing the
// sealer the hour's log from memory instead of reading it back would
// save its read and checksums, about 0.07 µs an Access (the profile
// above), for the hour's log (about 15 MB: 107 bytes an Access with its
// dictionary frames, BenchmarkSealDense's hour) kept in the writer's heap:
// not done (measured again: 0.06 µs, 2% of the writer's CPU); decoding
// it again (0.25 µs) would stay, unless Add kept its Accesses decoded, on
// the request path's core.
//
// The sealer keeps a log's decoded Accesses and their arena (sealScratch)
// from one seal to the next while seals follow each other, and drops
// them after scratchIdle (30 s) without one. Back to back in one
// benchmark's loop, keeping them showed no CPU saved; but a busy gateway
// seals a part every few seconds, and in its process the memory of each
// seal, taken fresh, was the sealer's costliest line to touch (decoding
// the log: 1.05 µs an Access of 3.1). Kept, what the ledger adds to a
// request's CPU fell from about 3.8 to 3.0 µs (BenchmarkServeLedger,
// alternated 8 times), and `warden bench ledger -accesses 10000000 -days
// 3` counts 2.97 -> 2.73 µs of the writer's CPU an Access (medians of 5
// runs; bench_results.txt, "The sealer's scratch"). It is memory a seal
// took anyway, bounded by a part and an eighth (a larger log's is
// dropped after its seal, and the old scratch before a larger one is
// made, so the two are never live at once); the live heap's peak moved
// 205 -> 208 MiB (medians of 3; 221 when the old scratch stayed live
// beside a larger one).
//
// Transparent huge pages for the dictionaries' tables (madvise
// MADV_HUGEPAGE: one TLB entry per 2 MiB instead of per 4 KiB, for probes
// at random in tables of tens of MiB) were measured and not adopted: on
// the 2-core VM of the measurements the writer's CPU per Access was the
// same or up to 6% more with them, a cold reader's 24% more
// (bench_results.txt, "Transparent huge pages"). Under THP "always" the
// kernel gives the tables huge pages anyway; with "madvise", the common
// default, the Go runtime does not ask for them.
//
// Measured in bench_results.txt: BenchmarkAdd, BenchmarkIngest (the
// issue's density, in internal/lab/ledgerbench; cpu-ns/op is Add's
// thread, writer-cpu-ns/op all the writer's work), BenchmarkSealDense
// (one hour sealed: its CPU and bytes per Access) and, in
// internal/gateway, BenchmarkRecorders (each recorder's CPU per Access
// of bench row e) and BenchmarkServeLedger (rows e and e-ledger in one
// process). `warden bench ledger` prints both: ingest/cpu-s (Add's
// thread) and the writer's CPU per Access (the process's from Open to
// Close, less the generator's).
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
//   - Write through a symbolic link: a link planted under one of its
//     files' names (lock, a log, ids, retired) is refused (O_NOFOLLOW,
//     openFile), never locked, appended to or truncated; new files are
//     made with O_EXCL.
//   - Allocate what a damaged file says: a compressed section is decoded
//     into exactly the size its directory gives, refused when its zstd
//     frame declares another or zstd could not make that much of its bytes
//     (decodeSized), and never grown past it.
//   - Answer around a damaged hour: a query that cannot read an hour it
//     needs fails; only a derived file's damage is answered from the
//     hours, and said.
package ledger
