// Package proc starts the lab's child processes (the lab platform, warden,
// a benchmark proxy, redis-server) and stops them: it waits for a line of
// their output that says they serve, keeps the last of that output for
// error messages and tests, and ends them with SIGTERM, then SIGKILL for
// their whole process group after a grace period.
//
// It is shared by `warden demo`, `warden bench` and the end-to-end tests,
// so that the three start and stop children the same way.
//
// It must never leave a child running: a child that is not ready in time
// is stopped before Start returns, and a child outlives its parent by no
// more than the kernel's parent-death signal takes. It must never keep
// more output than it was told to, block a child on a full pipe, or
// signal any process but the child and its own process group.
package proc
