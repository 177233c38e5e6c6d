// Package bench runs warden's throughput and latency benchmark: the same
// load generator (wrk, keep-alive, loopback) against the lab platform
// directly, a bare Go reverse proxy, nginx with limit_req, and warden in
// several configurations, alternating rows in one run, and writes the
// figures (req/s, p50/p99, non-2xx, CPU seconds per 1,000 requests of the
// proxy process) with the machine described.
//
// It must never send traffic anywhere but loopback, never run a load loop
// without a bound in count and time, and never touch a system service: every
// server it measures is a child process it starts on a free loopback port
// and stops before returning.
package bench
