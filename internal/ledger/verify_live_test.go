package ledger

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// Verify reads the directory a running gateway writes, as every query
// does: a log the writer seals after verify listed the directory, and a
// sealed hour retention removes meanwhile (with its author index and its
// day's rollup), are what a live ledger does, not damage. Before, verify
// reported the log it could no longer open ("no such file or
// directory") and exited 1, "the ledger does not verify", about one run
// in two on a gateway sealing a part every 15 s.
func TestVerifyWhileWriting(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(Options{Dir: dir, PartitionAccesses: 5, MaxBytes: 40 << 10, housekeepEvery: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; !stop.Load() && i < 200_000; i++ {
			now := time.Now()
			if i%2 == 0 {
				l.Add(profile(now, fmt.Sprint(i%13), "10.0.0.1", fmt.Sprint(i%500), i%3 == 0))
			} else {
				l.Add(posts(now, fmt.Sprint(i%11), "10.0.0.2", fmt.Sprint("a", i%17), fmt.Sprint("a", i%5)))
			}
			if i%5 == 4 {
				time.Sleep(5 * time.Millisecond) // a part of 5 Accesses every 5 ms: as fast as the sealer seals
			}
		}
	}()
	var retired int
	deadline := time.Now().Add(3 * time.Second)
	for i := 0; i < 1000 && time.Now().Before(deadline); i++ {
		rep, err := Verify(dir)
		if err != nil {
			stop.Store(true)
			<-done
			l.Close()
			t.Fatalf("verify %d: %v", i, err)
		}
		if !rep.OK {
			stop.Store(true)
			<-done
			l.Close()
			t.Fatalf("verify %d of a ledger being written: %v", i, rep.Problems)
		}
		retired = rep.Retired
	}
	stop.Store(true)
	<-done
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if retired == 0 {
		t.Errorf("retention removed nothing while verify ran: the test did not see what it is for")
	}
	if rep, err := Verify(dir); err != nil || !rep.OK {
		t.Fatalf("verify after close: %v %v", err, rep.Problems)
	}
}
