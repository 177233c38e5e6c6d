// Package linebound bounds log lines a second. Under load an event that
// is logged (a refusal, a shadow rule's "would have") comes as fast as
// requests do: unbounded, a flood of them was as many lines a second, the
// request path's CPU spent writing them at the moment the gateway was
// busiest. A Bound lets a given number of lines a second through and
// carries the count of those left out to the next line written.
//
// It never decides anything but whether a line is written: every event
// is still counted by its caller's metric and recorded where it is.
package linebound

import (
	"sync/atomic"
	"time"
)

// Bound is one bound's state: the second (Unix) being counted, the lines
// written in it, and the lines left out since the last one written. The
// zero Bound is ready to use; it is safe for concurrent use.
type Bound struct {
	second     atomic.Int64
	written    atomic.Int64
	suppressed atomic.Int64
}

// Take reports whether a line may be written at now, at most limit lines
// a second, and how many were left out before it.
func (l *Bound) Take(now time.Time, limit int64) (ok bool, suppressed int64) {
	sec := now.Unix()
	// Forward: a time read before the second turned (its goroutine
	// preempted at the boundary) counts in the second being counted, else
	// each such line would start the count again. Back only past such a
	// straggler's lag: the wall clock was set back, and the count would
	// otherwise stay full until it came round again.
	if old := l.second.Load(); (sec > old || sec < old-1) && l.second.CompareAndSwap(old, sec) {
		l.written.Store(0)
	}
	if l.written.Add(1) > limit {
		l.suppressed.Add(1)
		return false, 0
	}
	return true, l.suppressed.Swap(0)
}
