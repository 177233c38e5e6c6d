package gateway

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/identify"
)

// A client's connection on a loop: its requests read, decided and sent to
// an upstream connection, their answers written back, one at a time.

// clientConn is a client's connection on a loop and the exchange in flight
// on it.
type clientConn struct {
	loopConn
	peer       netip.Addr
	req        fasthttp.Request
	resp       fasthttp.Response
	ex         *Exchange // the request in flight
	p          *Pipeline
	upc        *upstreamConn // the upstream connection carrying ex
	wire       []byte        // ex's request as sent upstream, kept for one retry
	sent       time.Time
	head       bool
	retried    bool
	closeAfter bool
	deciding   bool // a decision runs off the loop (offLoop)
	// overrun: the client sent past loopMaxPipelined ahead of its
	// answers. What it sends is discarded from then on; the answer in
	// flight, if any, goes out, then the refusal (refusePipelined), and
	// the connection closes.
	overrun bool
}

// sweepClient acts on a client's passed deadline, or resumes it once its
// last answer has drained, or, while shutting down, closes it when idle.
func (ls *loopState) sweepClient(cl *clientConn, now time.Time) {
	switch cl.phase {
	case phStalled:
		if cl.c.OutboundBuffered() == 0 {
			ls.readRequest(cl, now)
			return
		}
	case phClosing:
		if cl.c.OutboundBuffered() == 0 {
			cl.close()
			return
		}
	case phIdle:
		if ls.f.closing.Load() && cl.c.InboundBuffered() == 0 {
			cl.close()
			return
		}
	}
	if !cl.expired(now) {
		return
	}
	switch cl.phase {
	case phHeader, phBody:
		ls.timedOutRequest(cl)
	case phWait: // no upstream connection came free in time
		ls.upstreamFailed(cl, fasthttp.ErrTimeout, now)
	default: // idle, stalled or closing
		cl.close()
	}
}

// timedOutRequest answers 408 to a request that did not arrive in time,
// as the fast front does.
func (ls *loopState) timedOutRequest(cl *clientConn) {
	f := ls.f
	f.g.m.countRequest(f.front, fasthttp.StatusRequestTimeout)
	cl.resp.Reset()
	ex := &Exchange{ID: f.g.ids.next(), Start: time.Now()}
	f.g.badRequest((*fastReply)(&cl.resp), f.g.pipeline(), f.front, ex, &identify.Input{Peer: cl.peer}, fasthttp.StatusRequestTimeout, "read_timeout", "request read timeout")
	ls.write(cl, true)
}

// refusePipelined answers a client that sent too far ahead of its answers
// (clientConn.overrun): 429, rule request, reason pipelined_too_far,
// recorded with the peer alone (the requests were never read) and
// counted as the edge's refusals are; the connection closes after it.
// The requests sent after the one answered before it get no answer: a
// client may send them again on a new connection.
func (ls *loopState) refusePipelined(cl *clientConn) {
	f := ls.f
	f.g.m.countRequest(f.front, fasthttp.StatusTooManyRequests)
	cl.resp.Reset()
	cl.head = false // the answer before it may have been a HEAD's
	ex := &Exchange{ID: f.g.ids.next(), Start: time.Now()}
	f.g.badRequest((*fastReply)(&cl.resp), f.g.pipeline(), f.front, ex, &identify.Input{Peer: cl.peer},
		fasthttp.StatusTooManyRequests, "pipelined_too_far", "too many requests pipelined ahead of their answers")
	ls.write(cl, true)
}

// readRequest reads the client's next request, if it has all arrived and
// nothing is in flight, and starts its exchange.
func (ls *loopState) readRequest(cl *clientConn, now time.Time) {
	f := ls.f
	busy := cl.ex != nil || cl.phase == phClosing
	// The next request waits until the last answer has left: answers
	// never queue behind one another for a client that does not read, and
	// a connection handed to the fast front leaves nothing unsent behind
	// (gnet's close drops what the socket does not take at once).
	draining := cl.c.OutboundBuffered() > 0
	if busy || draining {
		switch {
		case cl.overrun:
			_, _ = cl.c.Discard(-1)
		case cl.c.InboundBuffered() > loopMaxPipelined:
			// The loop reads whatever arrives: a client that sends this
			// far ahead of its answers is not buffered for. It is
			// answered what it can be: the answer in flight, then a
			// refusal, and the connection closes.
			cl.overrun = true
			_, _ = cl.c.Discard(-1)
			if cl.ex == nil && cl.phase != phClosing {
				ls.refusePipelined(cl) // after the answers still draining
			} // else respond refuses once the answer in flight has gone
		case busy:
			// pipelined bytes wait for the answer before them
		default:
			cl.setPhase(phStalled, now, f.cfg.Server.WriteTimeout)
		}
		return
	}
	buf, _ := cl.c.Peek(-1)
	if len(buf) == 0 {
		if cl.phase == phStalled {
			cl.setPhase(phIdle, now, f.cfg.Server.IdleTimeout)
		}
		return
	}
	end := bytes.Index(buf, crlf2)
	if end < 0 {
		if len(buf) >= f.cfg.Server.MaxHeaderBytes {
			ls.handOverClient(cl)
			return
		}
		if cl.phase != phHeader {
			cl.setPhase(phHeader, now, headerTimeout(f.cfg))
		}
		return
	}
	h := &cl.req.Header
	cl.req.Reset()
	// fasthttp also ends a header at a bare LF line: then it reads less
	// than the block found here, and the fast front serves the request.
	hdr := buf[:end+4]
	if len(hdr) > f.cfg.Server.MaxHeaderBytes || h.Read(ls.reader(hdr)) != nil || ls.consumed(hdr) != len(hdr) || !loopServes(h) {
		ls.handOverClient(cl)
		return
	}
	n := max(h.ContentLength(), 0) // -2: no body, a request without Content-Length has none
	if n > f.maxInline {
		ls.handOverClient(cl)
		return
	}
	total := end + 4 + n
	if len(buf) < total {
		if cl.phase != phBody {
			cl.setPhase(phBody, now, f.cfg.Server.ReadTimeout)
		}
		return
	}
	if n > 0 {
		cl.req.SetBody(buf[end+4 : total])
	}
	_, _ = cl.c.Discard(total)
	ls.startExchange(cl, now)
}

var crlf2 = []byte("\r\n\r\n")

func headerTimeout(cfg *config.Config) time.Duration {
	if cfg.Server.ReadHeaderTimeout > 0 {
		return cfg.Server.ReadHeaderTimeout
	}
	return cfg.Server.ReadTimeout
}

// firstRequestTimeout is how long a new client connection may stay silent:
// the header timeout, or idle_timeout when that is shorter or the header
// has none.
func firstRequestTimeout(cfg *config.Config) time.Duration {
	h, idle := headerTimeout(cfg), cfg.Server.IdleTimeout
	if h <= 0 || (idle > 0 && idle < h) {
		return idle
	}
	return h
}

// loopServes reports whether the loop serves a request with this header;
// the fast front serves the rest.
func loopServes(h *fasthttp.RequestHeader) bool {
	if !h.IsHTTP11() || h.IsConnect() || h.ContentLength() == -1 { // -1: chunked
		return false
	}
	for _, name := range [...]string{"Transfer-Encoding", "Expect", "Upgrade"} {
		if len(h.Peek(name)) > 0 {
			return false
		}
	}
	return !isUpgrade(b2s(h.Peek("Connection")))
}

// startExchange begins the exchange of the request read into cl.req and
// admits it, on the loop or off it.
func (ls *loopState) startExchange(cl *clientConn, now time.Time) {
	f := ls.f
	f.g.m.inflight.Inc()
	f.busy.Add(1)
	ex := f.newExchange(now)
	cl.ex, cl.p = ex, f.g.pipeline()
	cl.head = cl.req.Header.IsHead()
	cl.closeAfter = cl.req.Header.ConnectionClose()
	cl.retried = false
	cl.resp.Reset()
	cl.setPhase(phWait, now, 0)
	if f.offLoop {
		ls.offLoop(cl, func() bool {
			return f.admit(context.Background(), cl.p, &cl.req, &cl.resp, cl.peer, ex)
		}, ls.forward)
		return
	}
	defer func() {
		if r := recover(); r != nil {
			ls.panicked(cl, r)
		}
	}()
	ls.forward(cl, f.admit(context.Background(), cl.p, &cl.req, &cl.resp, cl.peer, ex))
}

// forward sends an admitted request upstream, or answers a refused one.
func (ls *loopState) forward(cl *clientConn, admitted bool) {
	f := ls.f
	defer func() {
		if r := recover(); r != nil {
			ls.panicked(cl, r)
		}
	}()
	if !admitted {
		ls.respond(cl)
		return
	}
	ls.lines = ls.lines[:0]
	f.prepare(&cl.req, cl.p, cl.peer, cl.ex, false, &ls.lines)
	cl.req.URI().DisablePathNormalizing = true // the path is canonical already
	cl.wire = cl.wire[:0]
	ls.bw.Reset(appendWriter{&cl.wire})
	if err := cl.req.Write(ls.bw); err != nil {
		panic(fmt.Sprintf("serialising a request: %v", err))
	}
	_ = ls.bw.Flush()
	// The forwarding lines go at the end of the header block.
	cl.wire = slices.Insert(cl.wire, bytes.Index(cl.wire, crlf2)+2, ls.lines...)
	ls.upstreamFor(cl, time.Now())
}

// panicked answers 500 for a request whose handling panicked, as the fast
// front does, and closes the connection.
func (ls *loopState) panicked(cl *clientConn, r any) {
	if up := cl.upc; up != nil {
		cl.upc, up.cl = nil, nil
		ls.dropUpstream(up)
	}
	cl.resp.Reset()
	ls.f.g.recovered((*fastReply)(&cl.resp), cl.ex, r)
	cl.closeAfter = true
	ls.respond(cl)
}

// upstreamFailed answers the client's request with the upstream's failure,
// err; the upstream connection carrying it, if any, closes.
func (ls *loopState) upstreamFailed(cl *clientConn, err error, now time.Time) {
	if cl.ex == nil {
		return
	}
	if up := cl.upc; up != nil {
		cl.upc, up.cl = nil, nil
		if !up.gone {
			ls.dropUpstream(up)
		}
	}
	ls.f.g.m.upstream.Observe(now.Sub(cl.sent).Seconds())
	ls.f.upstreamFailed(&cl.resp, cl.ex, err)
	ls.respond(cl)
}

// clientGone forgets a client that closed; an upstream connection carrying
// its request is closed, since its answer has nowhere to go.
func (ls *loopState) clientGone(cl *clientConn) {
	if up := cl.upc; up != nil {
		cl.upc, up.cl = nil, nil
		if !up.gone && up.phase == phBusy {
			ls.dropUpstream(up)
		}
	}
	if !cl.deciding { // else the decision's goroutine still holds the exchange
		ls.endExchange(cl)
	}
}

// respond writes the answer in cl.resp, ends the exchange and reads the
// client's next request.
func (ls *loopState) respond(cl *clientConn) {
	closing := cl.closeAfter || ls.f.closing.Load()
	ls.write(cl, closing)
	ls.endExchange(cl)
	if !closing && !cl.gone {
		if cl.overrun {
			ls.refusePipelined(cl)
			return
		}
		ls.readRequest(cl, time.Now())
	}
}

// endExchange accounts for the client's exchange in flight, if any, and
// forgets it.
func (ls *loopState) endExchange(cl *clientConn) {
	if cl.ex == nil {
		return
	}
	ls.f.countExchange(cl.ex, cl.resp.StatusCode())
	cl.ex, cl.p = nil, nil
}

// write sends cl.resp as the fast front's server would: its Date, no
// default Content-Type, no body for HEAD; closing, the connection closes
// once it has drained.
func (ls *loopState) write(cl *clientConn, closing bool) {
	if cl.gone {
		return
	}
	resp := &cl.resp
	resp.Header.SetNoDefaultContentType(true)
	if cl.head {
		resp.SkipBody = true
	}
	if closing {
		resp.SetConnectionClose()
	}
	ls.out = ls.out[:0]
	ls.bw.Reset(appendWriter{&ls.out})
	if err := resp.Write(ls.bw); err != nil {
		cl.close()
		return
	}
	_ = ls.bw.Flush()
	now := time.Now()
	if _, err := cl.c.Write(ls.out); err != nil || cl.gone {
		return
	}
	if closing {
		cl.setPhase(phClosing, now, ls.f.cfg.Server.WriteTimeout)
		if cl.c.OutboundBuffered() == 0 {
			cl.close()
		}
		return
	}
	cl.setPhase(phIdle, now, ls.f.cfg.Server.IdleTimeout)
}
