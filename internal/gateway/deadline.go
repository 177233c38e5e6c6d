package gateway

import (
	"bytes"
	"io"
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
// set is first the deadline of the answer's header, then, once the header
// has come, a time to wait for more of the body: each read that brings
// body bytes moves it as far ahead as it was set. fasthttp's client sets
// one deadline, the header timeout, before it reads an answer, for the
// whole answer, and a streamed answer's body is read under it: a stream or
// a slow download was cut there, though its header had come at once. The
// header itself keeps the deadline as set (net/http's
// ResponseHeaderTimeout): moved on every read, an upstream trickling its
// header a byte at a time held the client and a connection for ever.
type coarseConn struct {
	net.Conn
	slack  time.Duration
	rd, wd time.Time // deadlines in force; zero: none

	idleReads bool           // a read deadline is a wait for more (above)
	readFor   time.Duration  // with idleReads: how far ahead it was last set
	inHeader  bool           // with idleReads: the answer's header has not all come
	header    answerHeadScan // while inHeader: how far the header has come

	// heard: a byte has been read, so a request has begun. A client's
	// connection that timed out before its first byte is closed without an
	// answer (fastFront.badRequest), as the loop front closes an idle one.
	heard bool
	// idleFirst, on a client connection the loop front handed over after
	// an answer (between requests, so fasthttp's first-request bound is not
	// the one): its first byte is waited for idleFirst (idle_timeout), and
	// its header then bounded by headerFor from that byte, as on the loop.
	idleFirst, headerFor time.Duration
	// linger: a refusal is being written to a client that may still be
	// sending (drainRefused), so Close lingers (below).
	linger bool
}

// Close closes the connection; one marked linger first sends FIN after
// the answer written, then reads and drops what the client still sends,
// until it closes too or drainTotal passes. Closed at once with unread
// bytes, the kernel resets the connection and the reset can destroy the
// refusal before the client reads it: a body a few MiB over
// max_body_bytes lost its 413 to most clients, more than drainRefused's
// bytes being still on their way. net/http and nginx linger likewise.
func (c *coarseConn) Close() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok && c.linger && cw.CloseWrite() == nil {
		_ = c.Conn.SetReadDeadline(time.Now().Add(drainTotal))
		_, _ = io.Copy(io.Discard, c.Conn)
	}
	return c.Conn.Close()
}

func (c *coarseConn) SetReadDeadline(t time.Time) error {
	if c.idleFirst > 0 && !c.heard && !t.IsZero() {
		t = time.Now().Add(c.idleFirst) // fasthttp's bound for a new connection's header (above)
	}
	if c.idleReads {
		// fasthttp sets the read deadline once per answer, after it sent
		// the request: a new answer's header begins.
		c.readFor, c.inHeader, c.header = 0, false, answerHeadScan{}
		if !t.IsZero() {
			c.readFor, c.inHeader = time.Until(t), true
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
	if n > 0 && !c.heard {
		c.heard = true
		if c.idleFirst > 0 { // the wait is over: the header's bound runs from here
			c.rd = time.Now().Add(c.headerFor)
			_ = c.Conn.SetReadDeadline(c.rd)
		}
	}
	if n > 0 && c.readFor > 0 {
		if c.inHeader {
			if c.header.end(p[:n]) < 0 {
				return n, err // the header's deadline stands
			}
			c.inHeader = false
		}
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

// coarseListener hands out coarseConns; a connection the loop front
// handed over after an answer waits idle for its next request first
// (coarseConn.idleFirst).
type coarseListener struct {
	net.Listener
	slack        time.Duration
	idle, header time.Duration // idle_timeout, the header's bound
}

func (l coarseListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &coarseConn{Conn: c, slack: l.slack}
	if pc, ok := c.(*prefixConn); ok && pc.idle && l.idle > 0 {
		cc.idleFirst, cc.headerFor = l.idle, l.header
	}
	return cc, nil
}

// answerHeadScan follows an answer's header through the bytes read, to tell
// where it ends: at the first empty line (CRLF, or a bare LF as fasthttp
// also accepts) after a final status; an interim answer's header (1xx but
// 101, which fasthttp's client skips) is followed by another header.
type answerHeadScan struct {
	status  uint8 // 0: before the status code; 1: in it; 2: past it
	code    int   // the status code, once past it
	lineEnd uint8 // 0: within a line; 1: just past a LF; 2: past LF and CR
}

// end reads p, the next bytes of the answer, and returns the length of
// the part of p up to the end of the final header, or -1 while the header
// goes on past p.
func (h *answerHeadScan) end(p []byte) int {
	for i := 0; i < len(p); {
		if h.status < 2 { // the status line, a byte at a time up to its code
			c := p[i]
			i++
			switch {
			case h.status == 0 && c == ' ':
				h.status = 1
			case h.status == 1 && c >= '0' && c <= '9':
				h.code = h.code*10 + int(c-'0')
			case h.status == 1:
				h.status = 2
				h.lineEnd = 0
				if c == '\n' {
					h.lineEnd = 1
				}
			}
			continue
		}
		if h.lineEnd == 0 { // the rest of a line: to its LF at once
			j := bytes.IndexByte(p[i:], '\n')
			if j < 0 {
				return -1
			}
			i += j + 1
			h.lineEnd = 1
			continue
		}
		c := p[i]
		i++
		switch {
		case c == '\n': // an empty line: a header ends
			if h.code >= 100 && h.code < 200 && h.code != 101 {
				*h = answerHeadScan{}
				continue
			}
			return i
		case c == '\r' && h.lineEnd == 1:
			h.lineEnd = 2
		default:
			h.lineEnd = 0
		}
	}
	return -1
}
