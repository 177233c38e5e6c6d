package main

import (
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// logWriter writes log lines to w from a goroutine of its own, in order.
// The gateway logs on its request path (refusals, masks), on the loop
// front's event loops too: a write to a slow stderr (a full pipe, a busy
// journal) would hold every connection on that loop. When lines arrive
// faster than w takes them and the backlog is full, the newest are dropped
// and counted, never waited for.
type logWriter struct {
	w       io.Writer
	lines   chan []byte
	dropped atomic.Uint64
	done    chan struct{}
	mu      sync.RWMutex // Close against Write: no send on a closed channel
	closed  bool
}

// logBacklog is how many lines may wait for a slow writer.
const logBacklog = 8192

func newLogWriter(w io.Writer) *logWriter {
	l := &logWriter{w: w, lines: make(chan []byte, logBacklog), done: make(chan struct{})}
	go l.run()
	return l
}

func (l *logWriter) run() {
	defer close(l.done)
	for p := range l.lines {
		_, _ = l.w.Write(p)
	}
}

// Write queues a copy of p (slog reuses its buffer); it never blocks.
func (l *logWriter) Write(p []byte) (int, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		l.dropped.Add(1)
		return len(p), nil
	}
	select {
	case l.lines <- append([]byte(nil), p...):
	default:
		l.dropped.Add(1)
	}
	return len(p), nil
}

// Dropped is the number of lines dropped so far.
func (l *logWriter) Dropped() uint64 { return l.dropped.Load() }

// Close writes what is queued, for at most wait, and stops. Lines written
// after Close are dropped.
func (l *logWriter) Close(wait time.Duration) {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.lines)
	}
	l.mu.Unlock()
	select {
	case <-l.done:
	case <-time.After(wait):
	}
}
