// Package cacheline issues software prefetches: Prefetch starts loading a
// cache line without waiting for it, so that a miss overlaps with work
// that does not need the line yet. It is a few lines of assembly on amd64
// (PREFETCHT0) and arm64 (PRFM) and does nothing elsewhere. The ledger's
// writer prefetches its dictionaries' slots; the gateway prefetches the
// pooled Access box a recorded answer fills (gateway/answer.go, Finish),
// whose lines were last written on the recording's core.
package cacheline
