package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// OpenLoop is a constant-rate load: requests are due at fixed times whether
// or not earlier ones were answered, and each latency counts from the time
// the request was due, so a stalled server shows up in the figures (no
// coordinated omission).
type OpenLoop struct {
	Addr        string        // loopback host:port
	Rate        float64       // requests per second
	Count       int           // at most this many requests
	MaxDuration time.Duration // and no longer than this
	Conns       int           // keep-alive connections (and workers)
	// Requests are sent in turn; each is a path and a bearer token.
	Requests []Request
}

// Request is one request of the load.
type Request struct {
	Path  string
	Token string
}

// OpenLoopResult is what an open-loop run measured.
type OpenLoopResult struct {
	Rate      float64       `json:"rate"`
	Sent      int           `json:"sent"`
	OK        int           `json:"ok"`     // 2xx
	Non2xx    int           `json:"non2xx"` // other statuses
	Errors    int           `json:"errors"` // transport errors
	Elapsed   time.Duration `json:"elapsed_ns"`
	P50       time.Duration `json:"p50_ns"`
	P90       time.Duration `json:"p90_ns"`
	P99       time.Duration `json:"p99_ns"`
	P999      time.Duration `json:"p999_ns"`
	Max       time.Duration `json:"max_ns"`
	Truncated bool          `json:"truncated"` // MaxDuration ended it before Count
}

// job is one request due: its index in the load and when it is due.
type job struct {
	at time.Time
	i  int
}

// maxOpenLoopCount bounds memory (8 bytes of latency per request).
const maxOpenLoopCount = 20_000_000

// Run sends the load and returns its latency percentiles.
func (o OpenLoop) Run(ctx context.Context) (OpenLoopResult, error) {
	if o.Rate <= 0 || o.Count <= 0 || o.MaxDuration <= 0 || o.Conns <= 0 || len(o.Requests) == 0 {
		return OpenLoopResult{}, fmt.Errorf("bench: open loop needs rate, count, max duration, conns and requests (got %v, %d, %v, %d, %d)", o.Rate, o.Count, o.MaxDuration, o.Conns, len(o.Requests))
	}
	if o.Count > maxOpenLoopCount {
		return OpenLoopResult{}, fmt.Errorf("bench: open loop count %d above %d", o.Count, maxOpenLoopCount)
	}
	host, _, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return OpenLoopResult{}, fmt.Errorf("bench: open loop addr %q: %w", o.Addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return OpenLoopResult{}, fmt.Errorf("bench: open loop addr %q: loopback only", o.Addr)
	}
	ctx, cancel := context.WithTimeout(ctx, o.MaxDuration)
	defer cancel()
	hc := &fasthttp.HostClient{
		Addr:                o.Addr,
		MaxConns:            o.Conns,
		MaxIdleConnDuration: time.Minute,
		ReadTimeout:         5 * time.Second,
		WriteTimeout:        5 * time.Second,
		MaxConnWaitTimeout:  5 * time.Second,
	}
	defer hc.CloseIdleConnections()

	// Due times go through a buffered channel; when every worker is busy
	// they queue, and the wait counts in the latency.
	due := make(chan job, 1<<16)
	type tally struct {
		lat              []time.Duration
		ok, non2xx, errs int
	}
	tallies := make([]tally, o.Conns)
	var wg sync.WaitGroup
	for w := range o.Conns {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			t := &tallies[w]
			t.lat = make([]time.Duration, 0, o.Count/o.Conns+16)
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for j := range due {
				at := j.at
				r := o.Requests[j.i%len(o.Requests)]
				req.Reset()
				req.SetRequestURI(r.Path)
				req.SetHost(o.Addr)
				req.Header.Set("Authorization", "Bearer "+r.Token)
				err := hc.DoDeadline(req, resp, at.Add(5*time.Second))
				d := time.Since(at)
				switch {
				case err != nil:
					t.errs++
				case resp.StatusCode() >= 200 && resp.StatusCode() < 300:
					t.ok++
					t.lat = append(t.lat, d)
				default:
					t.non2xx++
					t.lat = append(t.lat, d)
				}
			}
		}(w)
	}

	start := time.Now()
	interval := float64(time.Second) / o.Rate
	sent := 0
	truncated := false
dispatch:
	for sent < o.Count {
		next := start.Add(time.Duration(float64(sent) * interval))
		if d := time.Until(next); d > 0 {
			// Sleep in steps of at least 200µs and send every request
			// due by then: timers are coarse, the due times are not.
			if d < 200*time.Microsecond {
				d = 200 * time.Microsecond
			}
			select {
			case <-ctx.Done():
				truncated = true
				break dispatch
			case <-time.After(d):
			}
		}
		now := time.Now()
		for sent < o.Count {
			at := start.Add(time.Duration(float64(sent) * interval))
			if at.After(now) {
				break
			}
			select {
			case due <- job{at, sent}:
				sent++
			case <-ctx.Done():
				truncated = true
				break dispatch
			}
		}
	}
	close(due)
	wg.Wait()
	res := OpenLoopResult{Rate: o.Rate, Sent: sent, Elapsed: time.Since(start), Truncated: truncated}
	var all []time.Duration
	for _, t := range tallies {
		all = append(all, t.lat...)
		res.OK += t.ok
		res.Non2xx += t.non2xx
		res.Errors += t.errs
	}
	if len(all) == 0 {
		return res, errors.New("bench: open loop: no request answered")
	}
	slices.Sort(all)
	res.P50, res.P90, res.P99, res.P999 = pct(all, 50), pct(all, 90), pct(all, 99), pct(all, 99.9)
	res.Max = all[len(all)-1]
	return res, nil
}

// pct is the nearest-rank percentile of sorted durations.
func pct(sorted []time.Duration, p float64) time.Duration {
	i := int(float64(len(sorted))*p/100+0.999999) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}
