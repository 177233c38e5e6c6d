package gateway

import (
	"net"
	"testing"
	"time"
)

// deadlineConn records the deadlines that reach the connection.
type deadlineConn struct {
	net.Conn
	reads, writes []time.Time
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error { c.reads = append(c.reads, t); return nil }
func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.writes = append(c.writes, t)
	return nil
}
func (c *deadlineConn) SetDeadline(t time.Time) error {
	c.reads, c.writes = append(c.reads, t), append(c.writes, t)
	return nil
}

func TestCoarseConnDeadlines(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	in := &deadlineConn{}
	c := &coarseConn{Conn: in, slack: 100 * time.Millisecond}
	steps := []struct {
		t       time.Time
		applied bool
	}{
		{base.Add(time.Minute), true},                        // first deadline
		{base.Add(time.Minute + 50*time.Millisecond), false}, // later by less than the slack
		{base.Add(time.Minute + 99*time.Millisecond), false}, // still within the slack of the one in force
		{base.Add(time.Minute + 100*time.Millisecond), true}, // by the slack: applied
		{base.Add(time.Minute + 10*time.Millisecond), true},  // earlier: always applied
		{time.Time{}, true},                                  // cleared: applied
		{time.Time{}, false},                                 // cleared again: nothing to do
		{base.Add(time.Second), true},                        // set after none
	}
	for i, s := range steps {
		n := len(in.reads)
		if err := c.SetReadDeadline(s.t); err != nil {
			t.Fatal(err)
		}
		if got := len(in.reads) > n; got != s.applied {
			t.Fatalf("step %d (%v): applied %v, want %v", i, s.t, got, s.applied)
		}
		if s.applied && !in.reads[len(in.reads)-1].Equal(s.t) {
			t.Fatalf("step %d: applied %v, want %v", i, in.reads[len(in.reads)-1], s.t)
		}
	}
	// Write deadlines are tracked apart from read deadlines.
	if err := c.SetWriteDeadline(base.Add(time.Second + time.Millisecond)); err != nil || len(in.writes) != 1 {
		t.Fatalf("first write deadline not applied: %v %d", err, len(in.writes))
	}
	// SetDeadline applies when either direction needs it.
	if err := c.SetDeadline(base.Add(time.Second + 2*time.Millisecond)); err != nil || len(in.writes) != 1 {
		t.Fatalf("SetDeadline within the slack of both applied: %v %d", err, len(in.writes))
	}
	if err := c.SetDeadline(base.Add(2 * time.Second)); err != nil || len(in.writes) != 2 || !c.rd.Equal(base.Add(2*time.Second)) {
		t.Fatalf("SetDeadline past the slack not applied: %v %d", err, len(in.writes))
	}
}

func TestDeadlineSlack(t *testing.T) {
	for _, c := range []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, maxDeadlineSlack},
		{[]time.Duration{10 * time.Second, 60 * time.Second}, maxDeadlineSlack},
		{[]time.Duration{0, 800 * time.Millisecond, time.Minute}, 50 * time.Millisecond},
	} {
		if got := deadlineSlack(c.in...); got != c.want {
			t.Errorf("deadlineSlack(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

// readConn answers every Read with one byte, after the test's clock moved.
type readConn struct{ deadlineConn }

func (c *readConn) Read(p []byte) (int, error) { p[0] = 'x'; return 1, nil }

// With idleReads a read deadline is a wait for more: a read that brings
// bytes moves it as far ahead as it was set (past the slack), so a body
// that keeps coming is never cut by the header timeout; without, reads
// leave it where it was.
func TestCoarseConnIdleReads(t *testing.T) {
	for _, idle := range []bool{false, true} {
		in := &readConn{}
		c := &coarseConn{Conn: in, slack: time.Millisecond, idleReads: idle}
		c.SetReadDeadline(time.Now().Add(time.Hour))
		time.Sleep(5 * time.Millisecond) // past the slack: the next re-arm is applied
		before := time.Now()
		c.Read(make([]byte, 1))
		switch {
		case !idle && len(in.reads) != 1:
			t.Errorf("plain: %d deadlines set, want the one asked", len(in.reads))
		case idle && (len(in.reads) != 2 || in.reads[1].Before(before.Add(time.Hour-time.Second))):
			t.Errorf("idle reads: deadlines %v, want a second one an hour after the read", in.reads)
		}
	}
}
