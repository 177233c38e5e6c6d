package main

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the writer's goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Lines arrive whole and in order, and Close writes what is queued.
func TestLogWriterOrder(t *testing.T) {
	var out syncBuffer
	l := newLogWriter(&out)
	var want strings.Builder
	buf := make([]byte, 0, 64)
	for i := range 1000 {
		buf = fmt.Appendf(buf[:0], "line %d\n", i) // the caller reuses its buffer, as slog does
		if _, err := l.Write(buf); err != nil {
			t.Fatal(err)
		}
		want.Write(buf)
	}
	l.Close(5 * time.Second)
	if out.String() != want.String() || l.Dropped() != 0 {
		t.Fatalf("%d bytes written (%d dropped), want %d in order", len(out.String()), l.Dropped(), want.Len())
	}
	if _, err := l.Write([]byte("late\n")); err != nil || l.Dropped() != 1 {
		t.Fatalf("a write after Close: %v, dropped %d", err, l.Dropped())
	}
}

// stuckWriter blocks every write until released.
type stuckWriter struct{ release chan struct{} }

func (s stuckWriter) Write(p []byte) (int, error) { <-s.release; return len(p), nil }

// A log output that does not take lines never holds the writer's caller:
// past the backlog, lines are dropped and counted.
func TestLogWriterNeverBlocks(t *testing.T) {
	w := stuckWriter{release: make(chan struct{})}
	l := newLogWriter(w)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range logBacklog + 100 {
			_, _ = l.Write([]byte("line\n"))
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Write blocked on a stuck output")
	}
	if d := l.Dropped(); d < 99 || d > 101 { // the goroutine holds one line in its write
		t.Fatalf("%d lines dropped, want about 100", d)
	}
	close(w.release)
	l.Close(5 * time.Second)
}
