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

// readConn answers each Read with its next piece.
type readConn struct {
	deadlineConn
	pieces []string
}

func (c *readConn) Read(p []byte) (int, error) {
	n := copy(p, c.pieces[0])
	c.pieces = c.pieces[1:]
	return n, nil
}

// With idleReads a read deadline is first the header's, then a wait for
// more: reads of the header leave it where it was set (an upstream that
// trickles its header is cut there), and from the read that ends the
// header on, a read that brings bytes moves it as far ahead as it was set
// (past the slack), so a body that keeps coming is never cut by the header
// timeout. Without idleReads, reads leave it where it was.
func TestCoarseConnIdleReads(t *testing.T) {
	for _, idle := range []bool{false, true} {
		in := &readConn{pieces: []string{"HTTP/1.1 200 OK\r\n", "Content-Length: 9", "\r\n\r\nbo", "dy", "..."}}
		c := &coarseConn{Conn: in, slack: time.Millisecond, idleReads: idle}
		c.SetReadDeadline(time.Now().Add(time.Hour))
		for i := range 2 { // the header, not yet whole
			time.Sleep(5 * time.Millisecond) // past the slack: a re-arm would be applied
			c.Read(make([]byte, 64))
			if len(in.reads) != 1 {
				t.Fatalf("idle %v: header read %d: deadlines %v, want the one asked", idle, i, in.reads)
			}
		}
		for i := range 3 { // the end of the header and body bytes with it, then the body
			time.Sleep(5 * time.Millisecond)
			before := time.Now()
			c.Read(make([]byte, 64))
			switch {
			case !idle && len(in.reads) != 1:
				t.Errorf("plain: %d deadlines set, want the one asked", len(in.reads))
			case idle && (len(in.reads) != 2+i || in.reads[1+i].Before(before.Add(time.Hour-time.Second))):
				t.Errorf("idle reads: body read %d: deadlines %v, want one more an hour after the read", i, in.reads)
			}
		}
		// The next answer's header keeps its deadline again.
		in.pieces = []string{"HTTP/1.1 204 No Content\r\n"}
		c.SetReadDeadline(time.Now().Add(2 * time.Hour))
		set := len(in.reads)
		time.Sleep(5 * time.Millisecond)
		c.Read(make([]byte, 64))
		if len(in.reads) != set {
			t.Errorf("idle %v: next header: deadlines %v, want none more", idle, in.reads[set:])
		}
	}
}

// The end of an answer's header is found whatever pieces it comes in,
// after interim answers, with bare LF line ends too; the part of the
// piece past it is not header.
func TestAnswerHeadScan(t *testing.T) {
	for _, tc := range []struct {
		answer string
		header int // its length; -1: not whole
	}{
		{"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody", 38},
		{"HTTP/1.1 204 No Content\r\n\r\n", 27},
		{"HTTP/1.1 200 OK\n\nbody", 17},
		{"HTTP/1.1 200 OK\r\nA: b\n\r\nbody", 24},
		{"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\nbody", 44},
		{"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", 59},
		{"HTTP/1.1 101 Switching Protocols\r\n\r\nraw", 36},
		{"HTTP/1.1 100 Continue\r\n\r\n", -1},
		{"HTTP/1.1 200 OK\r\nA: b\r\n\rX: y\r\n", -1},
		{"HTTP/1.1 200 OK\r\nA: b\r\n", -1},
	} {
		for cut := 1; cut <= len(tc.answer); cut++ { // every split into two pieces, and into single bytes
			var h answerHeadScan
			got := h.end([]byte(tc.answer[:cut]))
			if got < 0 {
				if n := h.end([]byte(tc.answer[cut:])); n >= 0 {
					got = cut + n
				}
			}
			if got != tc.header {
				t.Errorf("%q cut at %d: header ends at %d, want %d", tc.answer, cut, got, tc.header)
			}
		}
		var h answerHeadScan
		got := -1
		for i := range len(tc.answer) {
			if h.end([]byte{tc.answer[i]}) >= 0 {
				got = i + 1
				break
			}
		}
		if got != tc.header {
			t.Errorf("%q a byte at a time: header ends at %d, want %d", tc.answer, got, tc.header)
		}
	}
}

// A client connection handed over between requests (idleFirst): the
// deadline fasthttp sets for a new connection's first request becomes the
// idle wait; the read that brings the first byte sets the header's bound
// from then; after that, deadlines pass as asked. heard says whether a
// byte came.
func TestCoarseConnIdleFirst(t *testing.T) {
	in := &readConn{pieces: []string{"GET / HTTP/1.1\r\n", "Host: x\r\n\r\n"}}
	c := &coarseConn{Conn: in, slack: time.Millisecond, idleFirst: time.Hour, headerFor: time.Minute}
	before := time.Now()
	c.SetReadDeadline(before.Add(time.Second)) // fasthttp: the header's bound, at accept
	if len(in.reads) != 1 || in.reads[0].Before(before.Add(time.Hour)) || c.heard {
		t.Fatalf("before the first byte: deadlines %v (heard %v), want one an hour on", in.reads, c.heard)
	}
	before = time.Now()
	c.Read(make([]byte, 64))
	if len(in.reads) != 2 || in.reads[1].Before(before.Add(time.Minute)) || in.reads[1].After(time.Now().Add(time.Minute)) || !c.heard {
		t.Fatalf("first byte: deadlines %v (heard %v), want a minute from the read", in.reads, c.heard)
	}
	c.Read(make([]byte, 64))
	asked := time.Now().Add(2 * time.Second)
	c.SetReadDeadline(asked)
	if len(in.reads) != 3 || !in.reads[2].Equal(asked) {
		t.Fatalf("after: deadlines %v, want %v as asked", in.reads, asked)
	}
}
