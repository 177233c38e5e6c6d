// Package guard wraps any store.Store with what happens when the store
// fails: a per-call timeout, a circuit breaker, and the configured mode.
//
// Modes: with "closed" a failed decision returns an error that wraps
// store.ErrUnavailable (the gateway answers 503). With "open" Admit, Spend,
// Link and Linked return a permissive result (every limit and subject
// allowed, every id linked) together with an error that matches
// ErrFailedOpen and does not match store.ErrUnavailable; the caller checks
// errors.Is(err, guard.ErrFailedOpen) first and serves the request (the
// result is usable), and it is counted in warden_store_failed_open_total.
// Ban administration (PutBan, RemoveBan, ListBans) never fails open.
//
// The breaker opens after Config.BreakerFailures consecutive store failures
// (backend errors or the per-call timeout; not invalid requests, not a
// caller's own cancellation): for BreakerCooldown no call reaches the store,
// then one probe at a time goes through (half-open); a success closes it,
// a failure opens it for another cool-down. So warden recovers by itself.
//
// A store that can decide an Admit without its backend (the Redis store's
// AdmitLocal: a ban in its mirror, or every limit spent from a token
// lease) is asked first, while the breaker is closed: such a decision
// cannot wait or fail, so it skips the per-call timeout and the breaker's
// bookkeeping (a context and a timer, two lock round trips per call).
//
// Metrics are created once per process with NewMetrics and shared by every
// Guard built on a config reload: warden_store_breaker_state (0 closed, 1
// open, 2 half-open), warden_store_breaker_transitions_total{state},
// warden_store_errors_total{op}, warden_store_breaker_rejected_total{op}
// and warden_store_failed_open_total{op}. It must never log a key, subject or
// value (they identify people): it logs state changes, the operation and
// the store's error text only.
package guard
