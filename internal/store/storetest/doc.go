// Package storetest is the conformance suite every store.Store backend
// passes: Run(t, newStore) checks each operation's documented semantics
// (see internal/store/memory's package doc) at its boundaries, with time
// passed in, so nothing sleeps.
//
// newStore must return an empty store for each sub-test (for Redis: a fresh
// database or a unique key prefix); Run closes it. The suite must never
// depend on one backend's internals: where a backend may approximate (counts
// past its exact set, link-filter false positives), it checks documented
// error bounds, not exact values.
package storetest
