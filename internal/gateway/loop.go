package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/fasthttp"

	"github.com/warden-gw/warden/internal/config"
)

// loopFront serves cleartext HTTP/1.1 on event loops (gnet): one loop per
// CPU owns its connections, client and upstream alike, and a request and
// its answer are read, decided and written on that loop's thread. No
// goroutine parks or wakes per request, which on a busy gateway is the
// largest cost of the goroutine-per-connection fronts after the kernel's.
//
// The loop serves the common exchange: a request whose header and body (up
// to maxInline) have arrived, and an answer read whole. Everything else
// leaves the loop and is served by the fast front on goroutines, which
// already does all of it and is tested for it: a connection whose request
// is unusual (a body sent in chunks or larger than maxInline, Expect,
// Upgrade, CONNECT, HTTP/1.0, a header too large, malformed or ended by
// bare LFs) is handed
// over before any decision (handOverClient), and an answer that must be
// streamed (larger than the loop buffers, or delimited by close) is handed
// over with its upstream connection (handOverAnswer). A handed connection
// stays with the fast front until it closes.
//
// With the memory store the decisions run on the loop (microseconds). With
// Redis they wait on the network, so they run on a goroutine each and the
// exchange resumes on its loop (offLoop).
type loopFront struct {
	gnet.BuiltinEventEngine
	g    *Gateway
	cfg  *config.Config
	fast *fastFront // serves what the loop hands over
	cli  *gnet.Client
	// upAddr is the upstream's host:port.
	upAddr string
	// maxInline bounds a request body the loop reads; maxBuffered an
	// uninspected answer it buffers before streaming it instead.
	maxInline, maxBuffered int
	maxUpConns, maxIdle    int // per loop: upstream.max_conns and idle_conns shared
	// offLoop: the store is remote (Redis), so decisions, which wait on
	// it, run off the loops.
	offLoop bool
	tick    time.Duration

	mu      sync.Mutex
	loops   []*loopState
	ln      net.Listener
	handoff *handoffListener // the fast front's server accepts handed connections here

	closing atomic.Bool
	busy    atomic.Int64   // requests in flight on the loops
	handed  sync.WaitGroup // goroutines handing connections to the fast front, answers streamed off the loops
	stop    chan struct{}
	once    sync.Once
}

// Bounds of the loop front. A request body or uninspected answer larger
// than these leaves the loop: the loop cannot pause reading one connection
// (gnet reads whatever arrives), so it buffers only what is small.
const (
	loopMaxInline    = 64 << 10
	loopMaxBuffered  = 1 << 20
	loopMaxPipelined = 1 << 20 // sent ahead of the answers: past it, the connection closes
	loopAnswerHeader = 64 << 10
	loopMinTick      = 10 * time.Millisecond
)

func newLoopFront(g *Gateway, cfg *config.Config) (*loopFront, error) {
	fast := newFastFront(g, cfg)
	fast.label = config.FrontLoop
	up := g.pipeline().upstream
	n := runtime.GOMAXPROCS(0)
	f := &loopFront{
		g: g, cfg: cfg, fast: fast,
		upAddr:      hostPort(up.Host, up.Scheme),
		maxInline:   min(loopMaxInline, cfg.Server.MaxBodyBytes),
		maxBuffered: min(loopMaxBuffered, cfg.Server.MaxBodyBytes),
		maxUpConns:  max(1, maxConns(cfg.Upstream)/n),
		maxIdle:     max(1, cfg.Upstream.IdleConns/n),
		offLoop:     cfg.Store.Backend != "memory",
		tick: max(loopMinTick, deadlineSlack(cfg.Server.ReadHeaderTimeout, cfg.Server.ReadTimeout,
			cfg.Server.WriteTimeout, cfg.Server.IdleTimeout, cfg.Upstream.ResponseHeaderTimeout, cfg.Upstream.IdleTimeout)),
		stop: make(chan struct{}),
	}
	cli, err := gnet.NewClient(f, gnet.WithMulticore(true), gnet.WithNumEventLoop(n),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay), gnet.WithLogger(gnetLogger{g.log}))
	if err != nil {
		return nil, fmt.Errorf("gateway: loop front: %w", err)
	}
	f.cli = cli
	return f, nil
}

// gnetLogger sends gnet's own messages to the log at debug level; errors
// at warn.
type gnetLogger struct{ l *slog.Logger }

func (x gnetLogger) Debugf(format string, args ...any) {
	x.l.Debug("gnet", slog.String("msg", fmt.Sprintf(format, args...)))
}
func (x gnetLogger) Infof(format string, args ...any) {
	x.l.Debug("gnet", slog.String("msg", fmt.Sprintf(format, args...)))
}
func (x gnetLogger) Warnf(format string, args ...any) {
	x.l.Warn("gnet", slog.String("msg", fmt.Sprintf(format, args...)))
}
func (x gnetLogger) Errorf(format string, args ...any) {
	x.l.Warn("gnet", slog.String("msg", fmt.Sprintf(format, args...)))
}
func (x gnetLogger) Fatalf(format string, args ...any) {
	x.l.Error("gnet", slog.String("msg", fmt.Sprintf(format, args...)))
}

// loopState is one event loop's own: only that loop's goroutine touches it
// (the sweeper reaches it through EventLoop.Execute).
type loopState struct {
	f     *loopFront
	el    gnet.EventLoop
	conns map[*loopConn]struct{} // every connection, for the sweep
	idle  []*loopConn            // idle upstream connections, most recent last
	ups   int                    // upstream connections open or dialling
	wait  []*loopConn            // clients waiting for an upstream connection
	rd    bytes.Reader
	br    *bufio.Reader
	out   []byte // an answer as bw wrote it
	bw    *bufio.Writer
	lines []byte // forwarding header lines of the request being sent
}

type appendWriter struct{ b *[]byte }

func (w appendWriter) Write(p []byte) (int, error) { *w.b = append(*w.b, p...); return len(p), nil }

// reader reads b through the loop's bufio.Reader.
func (ls *loopState) reader(b []byte) *bufio.Reader {
	ls.rd.Reset(b)
	ls.br.Reset(&ls.rd)
	return ls.br
}

// consumed is how much of b, given to reader, has been read.
func (ls *loopState) consumed(b []byte) int { return len(b) - ls.rd.Len() - ls.br.Buffered() }

// Phases of a connection, which say what its deadline means.
const (
	phIdle    uint8 = iota // client between requests; upstream in the pool
	phHeader               // client: a request has begun arriving
	phBody                 // client: the header is in, the body is arriving
	phWait                 // client: its request is upstream or waiting for a connection
	phStalled              // client: the next request waits for the last answer to drain
	phClosing              // client: close once the last answer has drained
	phDial                 // upstream: dialling
	phBusy                 // upstream: carrying a request
)

// loopConn is one connection on a loop, a client's or an upstream's.
type loopConn struct {
	c        gnet.Conn
	ls       *loopState
	up       bool
	phase    uint8
	gone     bool      // closed or handed over: later events for it are stale
	deadline time.Time // of the phase; zero: none

	// Client side.
	peer       netip.Addr
	req        fasthttp.Request
	resp       fasthttp.Response
	ex         *Exchange // the request in flight
	p          *Pipeline
	upc        *loopConn // the upstream connection carrying ex
	wire       []byte    // ex's request as sent upstream, kept for one retry
	sent       time.Time
	head       bool
	retried    bool
	closeAfter bool
	deciding   bool // a decision runs off the loop (offLoop)

	// Upstream side.
	cl      *loopConn // the client whose request this carries
	reused  bool      // answered a request before the one it carries
	got     bool      // bytes of the answer have arrived
	need    int       // bytes the answer needs in all, once known; 0: unknown
	chunkAt int       // where the answer's chunked body starts, once known; 0: unknown
	eof     bool      // the answer ends at close
}

func (f *loopFront) serveListener(ln net.Listener) error {
	f.mu.Lock()
	f.ln = ln
	f.handoff = newHandoffListener(ln.Addr())
	f.mu.Unlock()
	if err := f.cli.Start(); err != nil {
		return fmt.Errorf("loop front: start: %w", err)
	}
	go f.sweeper()
	go func() { _ = f.fast.serveListener(f.handoff) }()
	for {
		c, err := ln.Accept()
		if err != nil {
			if f.closing.Load() {
				return errServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of descriptors and the like: wait, as net/http does.
			f.g.log.Warn("loop front: accept", slog.String("error", err.Error()))
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if f.closing.Load() {
			_ = c.Close()
			continue
		}
		lc := &loopConn{peer: peerAddr(c.RemoteAddr())}
		if _, err := f.cli.EnrollContext(c, lc); err != nil { // closes c
			f.g.log.Warn("loop front: enroll", slog.String("error", err.Error()))
		}
	}
}

func (f *loopFront) shutdown(ctx context.Context) error {
	f.closing.Store(true)
	f.mu.Lock()
	if f.ln != nil {
		_ = f.ln.Close()
	}
	f.mu.Unlock()
	f.sweepAll() // idle clients close now; the rest once answered
	for f.busy.Load() > 0 {
		select {
		case <-ctx.Done():
			f.halt()
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	f.halt()
	// The answers being relayed off the loops end first: each then puts
	// its client connection into handoff, which is open until the fast
	// front's shutdown closes it.
	done := make(chan struct{})
	go func() { f.handed.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if f.handoff == nil {
		return nil
	}
	return f.fast.shutdown(ctx)
}

func (f *loopFront) halt() {
	f.once.Do(func() {
		close(f.stop)
		f.mu.Lock()
		started := f.ln != nil
		f.mu.Unlock()
		if started {
			_ = f.cli.Stop()
		}
	})
}

// sweeper runs the loops' sweeps every tick: deadlines, stalled clients
// and, while shutting down, idle connections.
func (f *loopFront) sweeper() {
	t := time.NewTicker(f.tick)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
			f.sweepAll()
		}
	}
}

func (f *loopFront) sweepAll() {
	f.mu.Lock()
	loops := append([]*loopState(nil), f.loops...)
	f.mu.Unlock()
	for _, ls := range loops {
		_ = ls.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			ls.sweep(time.Now())
			return nil
		}))
	}
}

func (f *loopFront) state(el gnet.EventLoop) *loopState {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ls := range f.loops {
		if ls.el == el {
			return ls
		}
	}
	ls := &loopState{f: f, el: el, conns: make(map[*loopConn]struct{})}
	// fasthttp reads a header only as large as its reader's buffer.
	ls.br = bufio.NewReaderSize(&ls.rd, max(f.cfg.Server.MaxHeaderBytes, loopAnswerHeader))
	ls.bw = bufio.NewWriterSize(appendWriter{&ls.out}, 16<<10)
	f.loops = append(f.loops, ls)
	return ls
}

// OnOpen enrolls a connection on its loop: a client's from the accept
// loop, an upstream's once dialled.
func (f *loopFront) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	lc, ok := c.Context().(*loopConn)
	if !ok {
		return nil, gnet.Close
	}
	lc.c = c
	if lc.ls == nil {
		lc.ls = f.state(c.EventLoop())
	}
	ls := lc.ls
	ls.conns[lc] = struct{}{}
	if lc.up {
		if lc.gone { // given up while it was dialled (counted out then)
			return nil, gnet.Close
		}
		cl := lc.cl
		if cl == nil || cl.gone || cl.upc != lc {
			// The client left while this was dialled: keep it for the next.
			lc.cl = nil
			ls.release(lc, time.Now())
			return nil, gnet.None
		}
		ls.send(cl, lc, time.Now())
		return nil, gnet.None
	}
	now := time.Now()
	lc.setPhase(phIdle, now, f.cfg.Server.IdleTimeout)
	return nil, gnet.None
}

func (f *loopFront) OnClose(c gnet.Conn, _ error) gnet.Action {
	lc, ok := c.Context().(*loopConn)
	if !ok || lc.ls == nil {
		return gnet.None
	}
	ls := lc.ls
	delete(ls.conns, lc)
	if lc.gone {
		return gnet.None
	}
	lc.gone = true
	if !lc.up {
		ls.clientGone(lc)
		return gnet.None
	}
	ls.upstreamClosed(lc)
	return gnet.None
}

func (f *loopFront) OnTraffic(c gnet.Conn) (action gnet.Action) {
	lc, ok := c.Context().(*loopConn)
	if !ok || lc.gone {
		return gnet.Close
	}
	// A panic here would end the loop and every connection on it: the
	// connection at fault closes instead. (Requests have their own
	// recover, which answers 500.)
	defer func() {
		if r := recover(); r != nil {
			f.g.m.panics.Inc()
			f.g.log.Error("panic on the event loop", slog.Any("panic", r))
			action = gnet.Close
		}
	}()
	if lc.up {
		lc.ls.answerTraffic(lc, time.Now())
	} else {
		lc.ls.requestTraffic(lc, time.Now())
	}
	return gnet.None
}

func (lc *loopConn) setPhase(ph uint8, now time.Time, timeout time.Duration) {
	lc.phase = ph
	if timeout > 0 {
		lc.deadline = now.Add(timeout)
	} else {
		lc.deadline = time.Time{}
	}
}

// closeConn closes a connection of this loop now.
func (ls *loopState) closeConn(lc *loopConn) {
	if lc.c != nil {
		_ = ls.el.Close(lc.c)
	}
}

// sweep acts on the deadlines that have passed, resumes clients whose
// answers have drained and, while shutting down, closes idle clients.
func (ls *loopState) sweep(now time.Time) {
	f := ls.f
	for lc := range ls.conns {
		if lc.gone {
			continue
		}
		switch lc.phase {
		case phStalled:
			if lc.c.OutboundBuffered() == 0 {
				ls.requestTraffic(lc, now)
				continue
			}
		case phClosing:
			if lc.c.OutboundBuffered() == 0 {
				ls.closeConn(lc)
				continue
			}
		case phIdle:
			if !lc.up && f.closing.Load() && lc.c.InboundBuffered() == 0 {
				ls.closeConn(lc)
				continue
			}
		}
		if lc.deadline.IsZero() || now.Before(lc.deadline) {
			continue
		}
		switch lc.phase {
		case phHeader, phBody:
			ls.timedOutRequest(lc)
		case phWait: // no upstream connection came free in time
			ls.failExchange(lc, fasthttp.ErrTimeout, now)
		case phBusy:
			cl := lc.cl
			lc.gone = true
			ls.closeConn(lc)
			ls.ups--
			if cl != nil && !cl.gone {
				ls.failExchange(cl, fasthttp.ErrTimeout, now)
			}
		default: // idle client or upstream, stalled or closing client
			ls.closeConn(lc)
		}
	}
}

// timedOutRequest answers 408 to a request that did not arrive in time,
// as the fast front does.
func (ls *loopState) timedOutRequest(lc *loopConn) {
	f := ls.f
	f.g.m.badReqs.WithLabelValues(config.FrontLoop, "read_timeout").Inc()
	f.g.m.countRequest(2, fasthttp.StatusRequestTimeout)
	resp := &lc.resp
	resp.Reset()
	fastJSON(resp, fasthttp.StatusRequestTimeout, errorBody("request read timeout", ""))
	ls.write(lc, true)
}

// requestTraffic reads the client's next request, if it has all arrived
// and nothing is in flight, and starts it.
func (ls *loopState) requestTraffic(lc *loopConn, now time.Time) {
	f := ls.f
	busy := lc.ex != nil || lc.phase == phClosing
	// The next request waits until the last answer has left: answers
	// never queue behind one another for a client that does not read, and
	// a connection handed to the fast front leaves nothing unsent behind
	// (gnet's close drops what the socket does not take at once).
	draining := lc.c.OutboundBuffered() > 0
	if (busy || draining) && lc.c.InboundBuffered() > loopMaxPipelined {
		// The loop reads whatever arrives: a client that sends this far
		// ahead of its answers is not buffered for, it is cut off.
		f.g.m.badReqs.WithLabelValues(config.FrontLoop, "pipelined_too_far").Inc()
		ls.closeConn(lc)
		return
	}
	if busy {
		return // pipelined bytes wait for the answer before them
	}
	if draining {
		lc.setPhase(phStalled, now, f.cfg.Server.WriteTimeout)
		return
	}
	buf, _ := lc.c.Peek(-1)
	if len(buf) == 0 {
		if lc.phase == phStalled {
			lc.setPhase(phIdle, now, f.cfg.Server.IdleTimeout)
		}
		return
	}
	end := bytes.Index(buf, crlf2)
	if end < 0 {
		if len(buf) >= f.cfg.Server.MaxHeaderBytes {
			ls.handOverClient(lc)
			return
		}
		if lc.phase != phHeader {
			lc.setPhase(phHeader, now, headerTimeout(f.cfg))
		}
		return
	}
	h := &lc.req.Header
	lc.req.Reset()
	// fasthttp also ends a header at a bare LF line: then it reads less
	// than the block found here, and the fast front serves the request.
	hdr := buf[:end+4]
	if len(hdr) > f.cfg.Server.MaxHeaderBytes || h.Read(ls.reader(hdr)) != nil || ls.consumed(hdr) != len(hdr) || !loopServes(h) {
		ls.handOverClient(lc)
		return
	}
	n := max(h.ContentLength(), 0) // -2: no body, a request without Content-Length has none
	if n > f.maxInline {
		ls.handOverClient(lc)
		return
	}
	total := end + 4 + n
	if len(buf) < total {
		if lc.phase != phBody {
			lc.setPhase(phBody, now, f.cfg.Server.ReadTimeout)
		}
		return
	}
	if n > 0 {
		lc.req.SetBody(buf[end+4 : total])
	}
	_, _ = lc.c.Discard(total)
	ls.begin(lc, now)
}

var crlf2 = []byte("\r\n\r\n")

func headerTimeout(cfg *config.Config) time.Duration {
	if cfg.Server.ReadHeaderTimeout > 0 {
		return cfg.Server.ReadHeaderTimeout
	}
	return cfg.Server.ReadTimeout
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

// begin decides a request and sends it upstream, or answers it.
func (ls *loopState) begin(lc *loopConn, now time.Time) {
	f := ls.f
	g := f.g
	g.m.inflight.Inc()
	f.busy.Add(1)
	ex := f.fast.exchanges.Get().(*Exchange)
	*ex = Exchange{ID: g.ids.next(), Start: now}
	lc.ex, lc.p = ex, g.pipeline()
	lc.head = lc.req.Header.IsHead()
	lc.closeAfter = lc.req.Header.ConnectionClose()
	lc.retried = false
	lc.resp.Reset()
	lc.setPhase(phWait, now, 0)
	if f.offLoop {
		ls.offLoop(lc, func() bool {
			return f.fast.admitRequest(context.Background(), lc.p, &lc.req, &lc.resp, lc.peer, ex)
		}, ls.admitted)
		return
	}
	defer func() {
		if r := recover(); r != nil {
			ls.panicked(lc, r)
		}
	}()
	ls.admitted(lc, f.fast.admitRequest(context.Background(), lc.p, &lc.req, &lc.resp, lc.peer, ex))
}

// admitted sends an admitted request upstream, or answers a refused one.
func (ls *loopState) admitted(lc *loopConn, ok bool) {
	f := ls.f
	defer func() {
		if r := recover(); r != nil {
			ls.panicked(lc, r)
		}
	}()
	if !ok {
		ls.finish(lc)
		return
	}
	ex := lc.ex
	ls.lines = ls.lines[:0]
	f.fast.prepare(&lc.req, lc.p, lc.peer, ex, false, &ls.lines)
	lc.req.URI().DisablePathNormalizing = true // the path is canonical already
	lc.wire = lc.wire[:0]
	ls.bw.Reset(appendWriter{&lc.wire})
	if err := lc.req.Write(ls.bw); err != nil {
		panic(fmt.Sprintf("serialising a request: %v", err))
	}
	_ = ls.bw.Flush()
	// The forwarding lines go at the end of the header block.
	lc.wire = slices.Insert(lc.wire, bytes.Index(lc.wire, crlf2)+2, ls.lines...)
	ls.upstreamFor(lc, time.Now())
}

// offLoop runs work, a decision that may wait on a remote store, on a
// goroutine of its own, then then on the loop with its result. Meanwhile
// the loop leaves lc's request and answer alone (lc.deciding), and a client
// that leaves is only marked gone: its exchange ends when then would run.
func (ls *loopState) offLoop(lc *loopConn, work func() bool, then func(*loopConn, bool)) {
	lc.deciding = true
	go func() {
		var ok bool
		var failed any
		func() {
			defer func() { failed = recover() }()
			ok = work()
		}()
		err := ls.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			lc.deciding = false
			switch {
			case lc.gone:
				ls.done(lc)
			case failed != nil:
				ls.panicked(lc, failed)
			default:
				then(lc, ok)
			}
			return nil
		}))
		if err != nil { // the loops have stopped: the exchange ends here
			ls.f.g.m.inflight.Dec()
			ls.f.busy.Add(-1)
		}
	}()
}

// panicked answers 500 for a request whose handling panicked, as the fast
// front does, and closes the connection.
func (ls *loopState) panicked(lc *loopConn, r any) {
	g := ls.f.g
	g.m.panics.Inc()
	id := ""
	if lc.ex != nil {
		id = lc.ex.ID
	}
	g.log.Error("panic serving request", slog.String("request_id", id), slog.Any("panic", r))
	if up := lc.upc; up != nil {
		lc.upc, up.cl = nil, nil
		up.gone = true
		ls.closeConn(up)
		ls.ups--
	}
	lc.resp.Reset()
	fastJSON(&lc.resp, 500, errorBody("internal error", id))
	lc.closeAfter = true
	ls.finish(lc)
}

// upstreamFor gives the client's request an upstream connection: an idle
// one, a new one, or a place in the queue for the next that comes free.
func (ls *loopState) upstreamFor(cl *loopConn, now time.Time) {
	f := ls.f
	for len(ls.idle) > 0 {
		up := ls.idle[len(ls.idle)-1]
		ls.idle = ls.idle[:len(ls.idle)-1]
		if !up.gone {
			ls.send(cl, up, now)
			return
		}
	}
	if ls.ups >= f.maxUpConns {
		cl.setPhase(phWait, now, f.cfg.Upstream.ResponseHeaderTimeout)
		ls.wait = append(ls.wait, cl)
		return
	}
	ls.dial(cl)
}

// dial opens an upstream connection for cl off the loop; it joins the loop
// through OnOpen, or the dial's failure comes back through Execute.
func (ls *loopState) dial(cl *loopConn) {
	f := ls.f
	up := &loopConn{ls: ls, up: true, cl: cl, phase: phDial}
	cl.upc = up
	ls.ups++
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

func (ls *loopState) dialFailed(up *loopConn, err error) {
	if !up.gone { // else counted out when given up
		ls.ups--
		up.gone = true
	}
	if cl := up.cl; cl != nil && !cl.gone && cl.upc == up {
		ls.failExchange(cl, err, time.Now())
	}
	ls.serveWaiter(time.Now())
}

// send writes the client's request on an upstream connection.
func (ls *loopState) send(cl, up *loopConn, now time.Time) {
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
func (ls *loopState) release(up *loopConn, now time.Time) {
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
			up.gone = true
			ls.closeConn(up)
			ls.ups--
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
// else answered 502 (or, for an answer that ends at close, finished).
func (ls *loopState) upstreamClosed(up *loopConn) {
	ls.ups--
	cl := up.cl
	up.cl = nil
	now := time.Now()
	if cl == nil || cl.gone || cl.upc != up {
		ls.serveWaiter(now)
		return
	}
	cl.upc = nil
	if up.eof {
		buf, _ := up.c.Peek(-1)
		ls.complete(cl, up, buf, true, now)
		ls.serveWaiter(now)
		return
	}
	if !up.got && up.reused && !cl.retried && idempotent(cl.req.Header.Method()) {
		cl.retried = true
		ls.upstreamFor(cl, now)
		return
	}
	ls.failExchange(cl, errUpstreamClosed, now)
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

// failExchange answers the client's request with the upstream error.
func (ls *loopState) failExchange(cl *loopConn, err error, now time.Time) {
	if cl.ex == nil {
		return
	}
	if up := cl.upc; up != nil {
		cl.upc, up.cl = nil, nil
		if !up.gone {
			up.gone = true
			ls.closeConn(up)
			ls.ups--
		}
	}
	ls.f.g.m.upstream.Observe(now.Sub(cl.sent).Seconds())
	ls.f.fast.upstreamError(&cl.resp, cl.ex, err)
	ls.finish(cl)
}

// clientGone forgets a client that closed; an upstream connection carrying
// its request is closed, since its answer has nowhere to go.
func (ls *loopState) clientGone(cl *loopConn) {
	if up := cl.upc; up != nil {
		cl.upc, up.cl = nil, nil
		if !up.gone && up.phase == phBusy {
			up.gone = true
			ls.closeConn(up)
			ls.ups--
		}
	}
	if !cl.deciding { // else the decision's goroutine still holds the exchange
		ls.done(cl)
	}
}

// done ends the client's exchange in flight, if any.
func (ls *loopState) done(cl *loopConn) {
	if cl.ex == nil {
		return
	}
	ls.f.ended(cl.ex, cl.resp.StatusCode())
	cl.ex, cl.p = nil, nil
}

// ended accounts for an exchange answered with status, on the loop or off
// it, and recycles it.
func (f *loopFront) ended(ex *Exchange, status int) {
	f.g.m.countRequest(2, status)
	f.g.m.inflight.Dec()
	f.busy.Add(-1)
	f.fast.exchanges.Put(ex)
}

// answerTraffic reads an upstream answer; once it is whole, the client
// gets it.
func (ls *loopState) answerTraffic(up *loopConn, now time.Time) {
	cl := up.cl
	if cl == nil || cl.gone || cl.upc != up {
		// Bytes nobody asked for: the connection cannot be trusted.
		up.gone = true
		ls.closeConn(up)
		ls.ups--
		return
	}
	up.got = true
	buf, _ := up.c.Peek(-1)
	// An answer that has not all come is parsed again only when it may
	// have: each parse reads it from the start.
	if len(buf) <= ls.limit(cl)+loopAnswerHeader {
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
	ls.complete(cl, up, buf, false, now)
}

// limit bounds the body of cl's answer that the loop buffers: an inspected
// one up to max_body_bytes (past it, 502), another up to maxBuffered (past
// it, streamed off the loop).
func (ls *loopState) limit(cl *loopConn) int {
	if cl.ex.Inspect {
		return ls.f.cfg.Server.MaxBodyBytes
	}
	return ls.f.maxBuffered
}

// complete parses the answer in buf. Whole, it goes to the client; short,
// it waits for more (or, too large to buffer, leaves the loop). atEOF: the
// upstream has closed, nothing more comes.
func (ls *loopState) complete(cl, up *loopConn, buf []byte, atEOF bool, now time.Time) {
	f := ls.f
	defer func() {
		if r := recover(); r != nil {
			ls.panicked(cl, r)
		}
	}()
	limit := ls.limit(cl)
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
		if !atEOF {
			_, _ = up.c.Discard(n)
		}
		f.g.m.upstream.Observe(now.Sub(cl.sent).Seconds())
		keep := !atEOF && n == len(buf) && !resp.ConnectionClose()
		cl.upc, up.cl = nil, nil
		if keep {
			ls.release(up, now)
		} else if !atEOF {
			up.gone = true
			ls.closeConn(up)
			ls.ups--
			ls.serveWaiter(now)
		}
		resp.Header.SetNoDefaultContentType(true)
		if f.offLoop && cl.ex.Inspect {
			ls.offLoop(cl, func() bool {
				f.fast.answer(context.Background(), cl.p, cl.ex, resp, now)
				return true
			}, func(cl *loopConn, _ bool) { ls.finish(cl) })
			return
		}
		f.fast.answer(context.Background(), cl.p, cl.ex, resp, now)
		ls.finish(cl)
		return
	}
	fr := frameAnswer(buf, cl.head, loopAnswerHeader)
	// Too large: by its Content-Length or a chunk's announced size (which
	// fasthttp checks before reading it), or by what has come.
	tooLarge := errors.Is(err, fasthttp.ErrBodyTooLarge) || fr.size > limit || len(buf) > limit+loopAnswerHeader
	switch {
	case fr.err != nil:
		ls.failExchange(cl, fmt.Errorf("malformed answer: %w", fr.err), now)
	case (fr.untilClose || tooLarge) && !cl.ex.Inspect:
		ls.handOverAnswer(cl, up)
	case tooLarge:
		ls.failExchange(cl, fasthttp.ErrBodyTooLarge, now)
	case atEOF:
		ls.failExchange(cl, errUpstreamClosed, now)
	case fr.untilClose:
		up.eof = true // an inspected answer that ends at close: wait for it, up to limit
	case fr.whole:
		ls.failExchange(cl, fmt.Errorf("malformed answer: %w", err), now)
	default:
		up.need, up.chunkAt = fr.need, fr.chunkAt
	}
}

// finish writes the answer in cl.resp and takes the client's next request.
func (ls *loopState) finish(cl *loopConn) {
	closing := cl.closeAfter || ls.f.closing.Load()
	ls.write(cl, closing)
	ls.done(cl)
	if !closing && !cl.gone {
		ls.requestTraffic(cl, time.Now())
	}
}

// write sends cl.resp as the fast front's server would: its Date, no
// default Content-Type, no body for HEAD; closing, the connection closes
// once it has drained.
func (ls *loopState) write(cl *loopConn, closing bool) {
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
		ls.closeConn(cl)
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
			ls.closeConn(cl)
		}
		return
	}
	cl.setPhase(phIdle, now, ls.f.cfg.Server.IdleTimeout)
}

// handOverClient gives a client connection, with what it has sent and the
// loop has not read, to the fast front.
func (ls *loopState) handOverClient(cl *loopConn) {
	f := ls.f
	if f.closing.Load() { // shutting down: no new work for the fast front
		ls.closeConn(cl)
		return
	}
	rest, nc, err := ls.takeConn(cl)
	if err != nil {
		f.g.log.Warn("loop front: hand over", slog.String("error", err.Error()))
		return
	}
	f.handed.Add(1)
	go func() {
		defer f.handed.Done()
		f.handoff.put(&prefixConn{Conn: nc, rest: rest})
	}()
}

// takeConn takes a connection off the loop: a duplicate of its descriptor
// as a net.Conn, and a copy of the bytes read and not consumed. The loop's
// own descriptor closes without the socket closing.
func (ls *loopState) takeConn(lc *loopConn) ([]byte, net.Conn, error) {
	buf, _ := lc.c.Peek(-1)
	rest := append([]byte(nil), buf...)
	fd, err := lc.c.Dup()
	lc.gone = true
	delete(ls.conns, lc)
	ls.closeConn(lc)
	if err != nil {
		return nil, nil, fmt.Errorf("dup: %w", err)
	}
	file := os.NewFile(uintptr(fd), "tcp")
	nc, err := net.FileConn(file)
	_ = file.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("file conn: %w", err)
	}
	return rest, nc, nil
}

// handOverAnswer streams an uninspected answer that the loop will not
// buffer, off the loop: the client's connection and the upstream's leave
// it; the answer is relayed as the fast front relays one, and the client's
// connection then stays with the fast front.
func (ls *loopState) handOverAnswer(cl, up *loopConn) {
	f := ls.f
	ex, p := cl.ex, cl.p
	head := cl.head
	closeAfter := cl.closeAfter
	cl.upc, up.cl = nil, nil
	ls.ups--
	answer, unc, uerr := ls.takeConn(up)
	rest, cnc, cerr := ls.takeConn(cl)
	if uerr != nil || cerr != nil {
		for _, c := range []net.Conn{unc, cnc} {
			if c != nil {
				_ = c.Close()
			}
		}
		f.g.log.Warn("loop front: hand over answer", slog.Any("error", errors.Join(uerr, cerr)))
		f.ended(ex, 502)
		ls.serveWaiter(time.Now())
		return
	}
	ls.serveWaiter(time.Now())
	f.handed.Add(1)
	go func() {
		defer f.handed.Done()
		status, ok := f.relayAnswer(cnc, unc, answer, ex, p, head, closeAfter)
		f.ended(ex, status)
		if ok && !closeAfter && !f.closing.Load() {
			f.handoff.put(&prefixConn{Conn: cnc, rest: rest})
			return
		}
		_ = cnc.Close()
	}()
}

// relayAnswer reads the upstream's answer (its first bytes in answer, the
// rest from up) and streams it to the client; it returns the status sent,
// and whether the client's connection may serve another request.
func (f *loopFront) relayAnswer(client, up net.Conn, answer []byte, ex *Exchange, p *Pipeline, head, closing bool) (int, bool) {
	defer up.Close()
	idle := f.cfg.Upstream.ResponseHeaderTimeout
	ur := &deadlineReader{c: up, d: idle}
	var resp fasthttp.Response
	resp.SkipBody = head
	resp.StreamBody = true
	br := bufio.NewReader(io.MultiReader(bytes.NewReader(answer), ur))
	if err := resp.ReadLimitBody(br, 0); err != nil {
		f.fast.upstreamError(&resp, ex, err)
	} else {
		f.fast.answer(context.Background(), p, ex, &resp, time.Now())
	}
	resp.Header.SetNoDefaultContentType(true)
	if closing {
		resp.SetConnectionClose()
	}
	if t := f.cfg.Server.WriteTimeout; t > 0 {
		_ = client.SetWriteDeadline(time.Now().Add(t))
	}
	w := bufio.NewWriter(client)
	ok := resp.Write(w) == nil && w.Flush() == nil
	_ = resp.CloseBodyStream()
	_ = client.SetWriteDeadline(time.Time{})
	return resp.StatusCode(), ok
}
