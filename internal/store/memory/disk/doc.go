// Package disk keeps the memory store's state across restarts, in one
// directory (store.memory.dir): bans in an append-only ban log, written
// through before a ban takes effect; rate limits, budgets and link filters
// (with the fan-out cap's state: answer tags, opens per answer, the hold)
// and the detector's state (its ban histories, which escalate a repeat
// offender's bans, and its rules' windows: store.DetectState) in a
// snapshot taken every snapshot_interval and on a graceful stop. An
// unclean stop (kill -9, a crash, power) loses what changed since the
// last snapshot: at most snapshot_interval of limits spent, subjects
// counted, ids shown, opens counted (an identity that passed the fan-out
// cap in that time comes back unheld) and the detector's counts and bans'
// histories; bans lose nothing.
//
// The detector is made after the store is restored: Restore keeps the
// detector's state it read, and Detector hands it to the detector and has
// every later snapshot ask the detector (DetectSource), under one lock, so
// no snapshot falls between. Until then a snapshot writes the held state
// again (a snapshot before the detector starts, or with it off, loses
// nothing of it).
//
// It must never block the request path on disk I/O, and never hold a
// shard lock while writing: a snapshot copies one shard under its lock
// (memory.Store.ExportShard), then encodes and writes with no lock held, so
// requests wait at most for one shard's copy. Ban changes wait for the ban
// log's fsync (an acknowledged ban survives kill -9), but bans are written
// by the admin API and the detector, never by a request. It must never
// refuse to start, or panic, over a bad file: a corrupt snapshot is set
// aside and warden starts from the ban log alone; a torn or corrupt tail of
// the ban log is cut and kept beside it.
//
// # Files
//
// The directory is made 0700 (an existing one is changed to 0700, logged)
// and every file 0600. A lock file (flock) keeps a second warden out. No
// state file is ever opened through a symbolic link: a lock, snapshot or
// bans.log that is not a regular file (a link planted while the directory
// was open to others, a directory, a FIFO) is renamed aside as NAME.corrupt-N
// with an error line and warden starts as if it were missing; a leftover
// snapshot.tmp or bans.log.tmp is removed, never written through.
//
//	snapshot             the last whole snapshot
//	snapshot.tmp         a snapshot being written; renamed over snapshot once synced
//	snapshot.corrupt-N   a snapshot that could not be read, set aside (N: Unix ns)
//	NAME.corrupt-N       lock or bans.log found not a regular file, set aside
//	bans.log             the ban log
//	bans.log.tail-N      bytes cut from the log's end at a start, for inspection
//	bans.log.tmp         the log being rewritten without its dead records
//
// # Framing
//
// Both files are a 16-byte header (8 bytes of magic, the format version as
// a little-endian uint32, 4 zero bytes) and then frames: the payload's
// length (uint32 LE), its CRC-32C (Castagnoli, uint32 LE), the payload.
// Integers in payloads are little-endian; counts and string lengths are
// uvarints; times are Unix nanoseconds (absolute, so a restart a day later
// honours windows and expiries; 0 is "none").
//
// # Ban log (magic WARDNBAN, version 1)
//
// One frame per change. Payload: op ('P' put, 'R' remove), facet, value
// (each a length and bytes); a put adds reason, by, created (int64), until
// (int64, 0: no expiry). Replaying applies the records in order; bans
// expired at the restart are dropped. Reading stops at the first frame
// that is torn (the file ends inside it), fails its checksum or does not
// decode: the log is cut there and the rest kept as bans.log.tail-N. Every
// append is one write then fsync, and a failed write is truncated away,
// so the next record always follows a whole one. After a snapshot, a log
// of at least 1,024 records more than twice the bans held is rewritten
// (aside, synced, renamed) with one put per unexpired ban.
//
// # Snapshot (magic WARDNSNP, version 4)
//
// Frames, each payload starting with its kind byte:
//
//	'H' meta, first: created (int64), the store's 16-byte hash key, shard count
//	'L' limits: n, then n × (key uint64, theoretical arrival time int64)
//	'B' budgets: n, then n × (key, window start int64, window length int64,
//	    m, m × subject uint64, sketch flag byte, 16,384 register bytes if 1)
//	'K' link filters: n, then n × (key, current generation, old generation,
//	    fan-out state), a generation being first (int64), expires (int64),
//	    flags byte (1: full, the identity saturated it), m, m × id uint64
//	    (sorted), m × provenance byte (1 list, 2 search, 3 social), m ×
//	    answer tag (uvarint, < 2^32; 0: not told, never counted); the
//	    fan-out state being held until (int64, 0: not held), a, a × (answer
//	    tag uvarint, expires int64, k, k × id uint64 opened from it), at
//	    most 64 answers (store.MaxFanoutAnswers) of at most 64 ids
//	    (store.MaxFanoutLimit): a count past either is an error naming the
//	    link and the count's offset in the file, read before anything is
//	    allocated for it. Version 2 had neither the tags nor the fan-out
//	    state: its ids restore with tag 0 (never counted: after a restart
//	    from it an id counts against an answer only once shown again) and
//	    no answers or hold. Version 1 had, instead of the flags, a form
//	    byte (0 sorted ids, 1 bloom filter words) and no provenances
//	    either: its ids are read as shown in a list, its bloom filters
//	    dropped (see memory.LinkGenState)
//	'O' the detector's ban histories (version 4): n, then n × (facet,
//	    value (each a length and bytes), bans uvarint (at most 2^31),
//	    the latest ban's end int64, when it was banned int64, when this
//	    gateway wrote or learnt of it int64 (0: never), flags byte (1:
//	    the ban was for everyone on an address))
//	'T' the detector's tracks (version 4), least recently used first: n,
//	    then n × (kind byte (0 a facet's rules, 1 a cohort, 2 an
//	    address's accounts), facet, value, accounts seen int64, a, a ×
//	    (account, banned byte 0 or 1), w, w × (rule name, k, k × (key
//	    uint64, seen int64), oldest first, tally byte 0 or 1, if 1 the
//	    enumeration tallies: bucket width int64, latest bucket int64, 16
//	    × look-ups uint32, 16 × never-shown look-ups uint32))
//	'E' end, last: the counts of limits, budgets and link filters (and
//	    from version 4 of ban histories and tracks)
//
// Keys are the memory store's keyed SipHash of its key strings, which is
// why the hash key is in the snapshot: a store restored with another key
// would not find them. A snapshot without its end frame, with a frame out
// of place, a count that disagrees, or bytes after the end is corrupt. A
// restore checks the whole file before loading any of it, so a corrupt
// snapshot leaves the store empty rather than half loaded, and drops every
// entry expired at the restart (and version 1 bloom filters), every
// fan-out answer expired and hold ended at the restart, and fan-out state
// no store makes (tag 0, a tag twice, past the bounds). The detector's
// frames are read whole and checked in structure here (counts against the
// payload, flags), then judged by the detector's Restore, which trusts
// nothing in them: it drops histories forgotten at the restart, windows of
// rules no longer configured or changed, keys expired, and keeps its own
// bounds (max_tracked, limit+1 keys a window). A detector frame that does
// not read makes the whole snapshot unreadable, set aside as any other.
//
// # Versions
//
// A reader dispatches on the header's version: a newer warden keeps the
// reader of every older version (testdata/snapshot-v1.bin is a version 1
// file that TestReadsVersion1 must keep reading, testdata/snapshot-v2.bin
// one for TestReadsVersion2, testdata/snapshot-v3.bin one for
// TestReadsVersion3, testdata/snapshot-v4.bin the current writer's, written
// anew by go test -run TestReadsVersion4 -update); a
// version it does not know (written by a newer warden) is treated as
// unreadable and set aside. A change to any payload is a new version.
//
// # Performance
//
// See bench_results.txt beside this file for the measured figures and the
// commands that made them (BenchmarkSnapshot2M, BenchmarkRestore2M, and
// the warden bench rows e and e-snap), and BenchmarkDetectState for the
// detector's share at its bound.
package disk
