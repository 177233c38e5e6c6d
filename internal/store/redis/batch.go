package redis

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
)

// batcher groups concurrent calls into one script call (group commit): a
// caller that finds a free slot sends everything queued, including its own
// call, in one EVALSHA; calls that arrive meanwhile wait for the next
// batch. Redis spends most of a small script's cost on the call itself, so
// this multiplies the decisions one Redis core makes per second, and it
// adds no delay beyond a goroutine start when there is no concurrency. Standalone only: in a cluster
// one script cannot span slots.
type batcher[T any] struct {
	mu      sync.Mutex
	pending []*T
	running int
	slots   int              // batches in flight at once
	max     int              // calls per batch
	flush   func(batch []*T) // sends one batch and fills in each call's result
}

// submit queues c and, when a slot is free, starts a goroutine that sends
// the queue. The caller then waits for c or for its own context: sending
// runs apart from any caller, so a caller's deadline is always honoured.
func (b *batcher[T]) submit(c *T) {
	b.mu.Lock()
	b.pending = append(b.pending, c)
	if b.running >= b.slots {
		b.mu.Unlock()
		return
	}
	b.running++
	b.mu.Unlock()
	go b.lead()
}

func (b *batcher[T]) lead() {
	// Callers already runnable (a gateway loop's round of decisions,
	// started together) submit before the batch is taken: one yield
	// lets them join it.
	runtime.Gosched()
	b.mu.Lock()
	n := min(len(b.pending), b.max)
	if n == 0 {
		b.running--
		b.mu.Unlock()
		return
	}
	batch := make([]*T, n)
	copy(batch, b.pending)
	rest := copy(b.pending, b.pending[n:])
	clear(b.pending[rest:])
	b.pending = b.pending[:rest]
	b.mu.Unlock()

	b.flush(batch)

	// Send what queued meanwhile in another goroutine, so no goroutine
	// loops for ever under sustained load.
	b.mu.Lock()
	if len(b.pending) > 0 {
		b.mu.Unlock()
		go b.lead()
		return
	}
	b.running--
	b.mu.Unlock()
}

// waiter is what every batched call shares with its caller: done closes
// once the batch has answered (err set when it failed), and gone marks a
// caller that stopped waiting, so a batch not yet sent leaves its call out
// and charges nothing.
type waiter struct {
	err  error
	done chan struct{}
	gone atomic.Bool
}

// wait blocks until the call is answered or ctx ends, whichever is first.
func (w *waiter) wait(ctx context.Context) error {
	select {
	case <-w.done:
		return w.err
	case <-ctx.Done():
		w.gone.Store(true)
		return unavailable(ctx.Err())
	}
}

// live drops the calls whose callers have gone (closing them) and returns
// the rest, reusing batch's array.
func live[T any](batch []*T, waiterOf func(*T) *waiter) []*T {
	out := batch[:0]
	for _, c := range batch {
		if w := waiterOf(c); w.gone.Load() {
			close(w.done)
			continue
		}
		out = append(out, c)
	}
	return out
}
