package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/fasthttp"
)

// The upstream connections of a loop: a pool of idle ones, bounded per
// loop, a queue of clients waiting for one, a request sent and its answer
// read until whole.

// upstreamConn is an upstream connection on a loop and the answer it is
// reading.
type upstreamConn struct {
	loopConn
	cl      *clientConn // the client whose request this carries
	reused  bool        // answered a request before the one it carries
	got     bool        // bytes of the answer have arrived
	need    int         // bytes the answer needs in all, once known; 0: unknown
	chunkAt int         // where the answer's chunked body starts, once known; 0: unknown
	eof     bool        // the answer ends at close
}

// waiting is the client that still waits for the answer up carries, or
// nil: none, or one that left or was answered otherwise.
func (up *upstreamConn) waiting() *clientConn {
	if cl := up.cl; cl != nil && !cl.gone && cl.upc == up {
		return cl
	}
	return nil
}

// sweepUpstream acts on an upstream connection's passed deadline: a
// request it carries times out; an idle one closes.
func (ls *loopState) sweepUpstream(up *upstreamConn, now time.Time) {
	if !up.expired(now) {
		return
	}
	if up.phase != phBusy {
		up.close()
		return
	}
	cl := up.cl
	ls.dropUpstream(up)
	if cl != nil && !cl.gone {
		ls.upstreamFailed(cl, fasthttp.ErrTimeout, now)
	}
}

// dropUpstream closes an upstream connection that will carry nothing more.
func (ls *loopState) dropUpstream(up *upstreamConn) {
	up.gone = true
	up.close()
	ls.upOpen--
}

// upstreamFor gives the client's request an upstream connection: an idle
// one, a new one, or a place in the queue for the next that comes free.
func (ls *loopState) upstreamFor(cl *clientConn, now time.Time) {
	f := ls.f
	for len(ls.idle) > 0 {
		up := ls.idle[len(ls.idle)-1]
		ls.idle = ls.idle[:len(ls.idle)-1]
		if !up.gone {
			ls.send(cl, up, now)
			return
		}
	}
	if ls.upOpen >= f.maxUpConns {
		cl.setPhase(phWait, now, f.cfg.Upstream.ResponseHeaderTimeout)
		ls.wait = append(ls.wait, cl)
		return
	}
	ls.dial(cl)
}

// dial opens an upstream connection for cl off the loop; it joins the loop
// through OnOpen (dialled), or the dial's failure comes back through
// Execute.
func (ls *loopState) dial(cl *clientConn) {
	f := ls.f
	up := &upstreamConn{loopConn: loopConn{ls: ls, phase: phDial}, cl: cl}
	cl.upc = up
	ls.upOpen++
	go func() {
		c, err := net.DialTimeout("tcp", f.upAddr, f.cfg.Upstream.DialTimeout)
		if err == nil {
			var ch <-chan gnet.RegisteredResult
			if ch, err = ls.el.Enroll(gnet.NewContext(context.Background(), up), c); err == nil {
				if r := <-ch; r.Err != nil {
					err = r.Err
				}
			} else {
				_ = c.Close()
			}
		}
		if err != nil {
			_ = ls.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
				ls.dialFailed(up, err)
				return nil
			}))
		}
	}()
}

// dialled takes a connection that has just opened: it carries the request
// it was dialled for, or, that client gone, joins the pool. It returns
// false when the connection was given up meanwhile and is to close.
func (ls *loopState) dialled(up *upstreamConn, now time.Time) bool {
	if up.gone { // given up while it was dialled (counted out then)
		return false
	}
	cl := up.waiting()
	if cl == nil {
		// The client left while this was dialled: keep it for the next.
		up.cl = nil
		ls.release(up, now)
		return true
	}
	ls.send(cl, up, now)
	return true
}

func (ls *loopState) dialFailed(up *upstreamConn, err error) {
	if !up.gone { // else counted out when given up
		ls.upOpen--
		up.gone = true
	}
	if cl := up.waiting(); cl != nil {
		ls.upstreamFailed(cl, err, time.Now())
	}
	ls.serveWaiter(time.Now())
}

// send writes the client's request on an upstream connection.
func (ls *loopState) send(cl *clientConn, up *upstreamConn, now time.Time) {
	f := ls.f
	cl.upc, up.cl = up, cl
	cl.setPhase(phWait, now, 0)
	cl.sent = now
	up.got, up.need, up.chunkAt, up.eof = false, 0, 0, false
	up.setPhase(phBusy, now, f.cfg.Upstream.ResponseHeaderTimeout)
	_, _ = up.c.Write(cl.wire) // a failure closes up: upstreamClosed follows
}

// release returns an upstream connection to the pool, or to a waiting
// client.
func (ls *loopState) release(up *upstreamConn, now time.Time) {
	if up.gone {
		return
	}
	up.cl = nil
	up.reused = true
	if len(ls.wait) == 0 && len(ls.idle) >= ls.f.maxIdle {
		// At upstream.idle_conns (shared among the loops): drop the closed
		// ones, and keep this one only if that made room.
		live := ls.idle[:0]
		for _, c := range ls.idle {
			if !c.gone {
				live = append(live, c)
			}
		}
		clear(ls.idle[len(live):])
		ls.idle = live
		if len(ls.idle) >= ls.f.maxIdle {
			ls.dropUpstream(up)
			return
		}
	}
	up.setPhase(phIdle, now, ls.f.cfg.Upstream.IdleTimeout)
	ls.idle = append(ls.idle, up)
	ls.serveWaiter(now)
}

// serveWaiter starts the first waiting client, if a connection is free or
// may be opened.
func (ls *loopState) serveWaiter(now time.Time) {
	for len(ls.wait) > 0 {
		cl := ls.wait[0]
		ls.wait[0] = nil
		ls.wait = ls.wait[1:]
		if cl.gone || cl.ex == nil || cl.upc != nil {
			continue
		}
		ls.upstreamFor(cl, now)
		return
	}
}

// upstreamClosed handles an upstream connection that closed: idle, it
// leaves the pool; carrying a request, that request is retried once on a
// new connection when nothing of the answer came and it may be repeated,
// else answered 502 (or, for an answer that ends at close, delivered).
func (ls *loopState) upstreamClosed(up *upstreamConn) {
	ls.upOpen--
	cl := up.waiting()
	up.cl = nil
	now := time.Now()
	if cl == nil {
		ls.serveWaiter(now)
		return
	}
	cl.upc = nil
	if up.eof {
		buf, _ := up.c.Peek(-1)
		ls.parseAnswer(cl, up, buf, true, now)
		ls.serveWaiter(now)
		return
	}
	if !up.got && up.reused && !cl.retried && idempotent(cl.req.Header.Method()) {
		cl.retried = true
		ls.upstreamFor(cl, now)
		return
	}
	ls.upstreamFailed(cl, errUpstreamClosed, now)
	ls.serveWaiter(now)
}

var errUpstreamClosed = errors.New("upstream closed the connection before the answer")

func idempotent(m []byte) bool {
	switch string(m) {
	case fasthttp.MethodGet, fasthttp.MethodHead, fasthttp.MethodPut, fasthttp.MethodDelete,
		fasthttp.MethodOptions, fasthttp.MethodTrace:
		return true
	}
	return false
}

// answerArrived takes bytes of an upstream answer; once it may be whole,
// it is parsed.
func (ls *loopState) answerArrived(up *upstreamConn, now time.Time) {
	cl := up.waiting()
	if cl == nil {
		// Bytes nobody asked for: the connection cannot be trusted.
		ls.dropUpstream(up)
		return
	}
	up.got = true
	headed := up.need > 0 || up.chunkAt > 0 || up.eof
	if headed {
		// Its header has come: upstream.response_header_timeout bounds
		// the wait for the header, then each wait for more of the body, as
		// the fast front's relay and net/http read it; not the whole answer
		// (a slow download got 504 once it outlasted the header timeout).
		// The header's own wait is not moved by its bytes: it ends at the
		// deadline set when the request was sent (an upstream trickling
		// its header would hold the client for ever).
		up.setPhase(phBusy, now, ls.f.cfg.Upstream.ResponseHeaderTimeout)
	}
	buf, _ := up.c.Peek(-1)
	// An answer that has not all come is parsed again only when it may
	// have: each parse reads it from the start.
	if len(buf) <= ls.answerLimit(cl)+loopAnswerHeader {
		switch {
		case up.need > 0 && len(buf) < up.need: // its length is known
			return
		case up.eof: // it ends at close
			return
		case up.chunkAt > 0:
			if _, ok, err := chunkedEnd(buf[up.chunkAt:]); !ok && err == nil {
				return
			}
		}
	}
	ls.parseAnswer(cl, up, buf, false, now)
	if !headed && up.cl == cl && !up.gone && up.phase == phBusy && (up.need > 0 || up.chunkAt > 0 || up.eof) {
		// The header has just come, the body not all: the wait for the
		// rest is bounded from now, not by what the header left of its
		// deadline.
		up.setPhase(phBusy, now, ls.f.cfg.Upstream.ResponseHeaderTimeout)
	}
}

// answerLimit bounds the body of cl's answer that the loop buffers: an
// inspected one up to max_body_bytes (past it, 502), another up to
// maxBuffered (past it, streamed off the loop).
func (ls *loopState) answerLimit(cl *clientConn) int {
	if cl.ex.Inspect {
		return ls.f.cfg.Server.MaxBodyBytes
	}
	return ls.f.maxBuffered
}

// parseAnswer parses the answer in buf. Whole, it is delivered; short, it
// waits for more (or, too large to buffer, leaves the loop). atEOF: the
// upstream has closed, nothing more comes.
func (ls *loopState) parseAnswer(cl *clientConn, up *upstreamConn, buf []byte, atEOF bool, now time.Time) {
	defer func() {
		if r := recover(); r != nil {
			ls.panicked(cl, r)
		}
	}()
	limit := ls.answerLimit(cl)
	resp := &cl.resp
	resp.Reset()
	resp.SkipBody = cl.head
	closeDelimited, err := readAnswer(resp, ls.reader(buf), limit)
	if err == nil && closeDelimited && !atEOF {
		// All that has come reads as the body: only the close says it is
		// all there is.
		if !cl.ex.Inspect {
			ls.handOverAnswer(cl, up)
		} else {
			up.eof = true
		}
		return
	}
	if err == nil {
		n := ls.consumed(buf)
		ls.deliver(cl, up, n, n < len(buf), atEOF, now)
		return
	}
	fr := frameAnswer(buf, cl.head, loopAnswerHeader)
	// Too large: by its Content-Length or a chunk's announced size (which
	// fasthttp checks before reading it), or by what has come.
	tooLarge := errors.Is(err, fasthttp.ErrBodyTooLarge) || fr.size > limit || len(buf) > limit+loopAnswerHeader
	switch {
	case fr.err != nil:
		ls.upstreamFailed(cl, fmt.Errorf("malformed answer: %w", fr.err), now)
	case (fr.untilClose || tooLarge) && !cl.ex.Inspect:
		ls.handOverAnswer(cl, up)
	case tooLarge:
		ls.upstreamFailed(cl, fasthttp.ErrBodyTooLarge, now)
	case atEOF:
		ls.upstreamFailed(cl, errUpstreamClosed, now)
	case fr.untilClose:
		up.eof = true // an inspected answer that ends at close: wait for it, up to limit
	case fr.whole:
		ls.upstreamFailed(cl, fmt.Errorf("malformed answer: %w", err), now)
	case fr.chunkAt > 0 && !cl.ex.Inspect:
		// A chunked answer nothing inspects, not all come: a stream
		// (server-sent events, a long download) goes to the client as it
		// comes, not when it ends.
		ls.handOverAnswer(cl, up)
	default:
		up.need, up.chunkAt = fr.need, fr.chunkAt
	}
}

// deliver frees the upstream connection of an answer parsed whole into
// cl.resp from its first n bytes (back to the pool when it may carry
// another: no bytes followed the answer, more false, and it stays open),
// makes the answer the client's (rationed, on the loop or off it) and
// writes it.
func (ls *loopState) deliver(cl *clientConn, up *upstreamConn, n int, more, atEOF bool, now time.Time) {
	f := ls.f
	resp := &cl.resp
	if !atEOF {
		_, _ = up.c.Discard(n)
	}
	f.g.m.upstream.Observe(now.Sub(cl.sent).Seconds())
	cl.upc, up.cl = nil, nil
	switch {
	case !atEOF && !more && !resp.ConnectionClose():
		ls.release(up, now)
	case !atEOF:
		ls.dropUpstream(up)
		ls.serveWaiter(now)
	}
	resp.Header.SetNoDefaultContentType(true)
	if f.offLoop && cl.ex.Inspect {
		ls.offLoop(cl, func() bool {
			f.answer(context.Background(), cl.p, cl.ex, resp)
			return true
		}, func(cl *clientConn, _ bool) { ls.respond(cl) })
		return
	}
	f.answer(context.Background(), cl.p, cl.ex, resp)
	ls.respond(cl)
}
