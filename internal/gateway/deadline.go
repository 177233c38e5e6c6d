package gateway

import (
	"net"
	"time"
)

// maxDeadlineSlack bounds how much earlier than asked a deadline may fall
// when coarseConn skips an update.
const maxDeadlineSlack = 250 * time.Millisecond

// deadlineSlack is the slack for connections bound by timeouts: a sixteenth
// of the shortest, at most maxDeadlineSlack, so that a deadline always
// leaves at least 15/16 of its timeout.
func deadlineSlack(timeouts ...time.Duration) time.Duration {
	s := maxDeadlineSlack
	for _, t := range timeouts {
		if t > 0 {
			s = min(s, t/16)
		}
	}
	return s
}

// coarseConn skips a deadline update that would only push the deadline in
// force later by less than slack. fasthttp re-arms the read and
// write deadlines of both connections on every request, each a runtime
// timer update; on a busy keep-alive connection most of them move the
// deadline by microseconds. A skipped update leaves the deadline earlier
// than asked by under slack, never later, and an earlier or
// cleared deadline is always applied.
//
// One goroutine at a time may set a direction's deadline (fasthttp serves
// a connection from one goroutine).
//
// With idleReads (the fast front's upstream connections), a read deadline
// is a time to wait for more: each read that brings bytes moves it as far
// ahead as it was set. fasthttp's client sets one deadline, the header
// timeout, for the whole answer, and a streamed answer's body is read
// under it: a stream or a slow download was cut there, though its header
// had come at once.
type coarseConn struct {
	net.Conn
	slack  time.Duration
	rd, wd time.Time // deadlines in force; zero: none

	idleReads bool          // a read deadline is a wait for more (above)
	readFor   time.Duration // with idleReads: how far ahead it was last set
}

func (c *coarseConn) SetReadDeadline(t time.Time) error {
	if c.idleReads {
		c.readFor = 0
		if !t.IsZero() {
			c.readFor = time.Until(t)
		}
	}
	if skipDeadline(c.rd, t, c.slack) {
		return nil
	}
	c.rd = t
	return c.Conn.SetReadDeadline(t)
}

func (c *coarseConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.readFor > 0 {
		if t := time.Now().Add(c.readFor); !skipDeadline(c.rd, t, c.slack) {
			c.rd = t
			_ = c.Conn.SetReadDeadline(t)
		}
	}
	return n, err
}

func (c *coarseConn) SetWriteDeadline(t time.Time) error {
	if skipDeadline(c.wd, t, c.slack) {
		return nil
	}
	c.wd = t
	return c.Conn.SetWriteDeadline(t)
}

func (c *coarseConn) SetDeadline(t time.Time) error {
	if skipDeadline(c.rd, t, c.slack) && skipDeadline(c.wd, t, c.slack) {
		return nil
	}
	c.rd, c.wd = t, t
	return c.Conn.SetDeadline(t)
}

// skipDeadline reports whether moving the deadline in force from cur to t
// may be skipped: both set, and t later than cur by less than slack.
func skipDeadline(cur, t time.Time, slack time.Duration) bool {
	if cur.IsZero() || t.IsZero() {
		return cur.IsZero() && t.IsZero()
	}
	d := t.Sub(cur)
	return d >= 0 && d < slack
}

// unwrapConn returns the connection under a coarseConn, for byte relays
// that want the kernel's own copy paths.
func unwrapConn(c net.Conn) net.Conn {
	if cc, ok := c.(*coarseConn); ok {
		return cc.Conn
	}
	return c
}

// coarseListener hands out coarseConns.
type coarseListener struct {
	net.Listener
	slack time.Duration
}

func (l coarseListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &coarseConn{Conn: c, slack: l.slack}, nil
}
