package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

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
// bare LFs) is handed over before any decision (handOverClient), and an
// answer that must be streamed (larger than the loop buffers, delimited by
// close, or chunked, uninspected and not all come at once: events, a long
// download) is handed over with its upstream connection (handOverAnswer).
// A handed connection stays with the fast front until it closes.
//
// The files split it by role: this one the front and its loops,
// loopclient.go a client's connection (its requests read, decided and
// answered), loopupstream.go the upstream connections (the pool, a
// request sent, its answer read), loophandover.go what leaves the loop,
// loopdecide.go decisions that wait on a remote store.
//
// With the memory store the decisions run on the loop (microseconds). With
// Redis they wait on the network: the loop gathers the decisions of one
// round of events, runs them at once on deciders (goroutines it keeps) and
// waits for them a short while, so they share one Redis call and resume
// on the loop without a wake-up each (offLoop).
type loopFront struct {
	gnet.BuiltinEventEngine
	*h1             // the request path on fasthttp's types
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
	busy    atomic.Int64 // requests in flight on the loops
	// handedOver counts the client connections handed to the fast front:
	// its requests count as the loop's in metrics, so tests read this.
	handedOver atomic.Int64
	handed     sync.WaitGroup // goroutines handing connections to the fast front, answers streamed off the loops
	stop       chan struct{}
	once       sync.Once

	// decisions hands an off-loop decision to an idle decider; idle
	// counts the deciders waiting on it (loopdecide.go).
	decisions chan func()
	idle      atomic.Int32
}

// Bounds of the loop front. A request body or uninspected answer larger
// than these leaves the loop: the loop cannot pause reading one connection
// (gnet reads whatever arrives), so it buffers only what is small.
const (
	loopMaxInline    = 64 << 10
	loopMaxBuffered  = 1 << 20
	loopMaxPipelined = 1 << 20 // sent ahead of the answers: past it, refused and closed (refusePipelined)
	loopAnswerHeader = 64 << 10
	loopMinTick      = 10 * time.Millisecond
)

func newLoopFront(g *Gateway, cfg *config.Config) (*loopFront, error) {
	up := g.pipeline().upstream
	n := runtime.GOMAXPROCS(0)
	f := &loopFront{
		h1:          newH1(g, cfg, frontLoop),
		fast:        newFastFront(g, cfg, frontLoop), // what it serves counts as the loop's
		upAddr:      hostPort(up.Host, up.Scheme),
		maxInline:   min(loopMaxInline, cfg.Server.MaxBodyBytes),
		maxBuffered: min(loopMaxBuffered, cfg.Server.MaxBodyBytes),
		maxUpConns:  max(1, maxConns(cfg.Upstream)/n),
		maxIdle:     max(1, cfg.Upstream.IdleConns/n),
		offLoop:     cfg.Store.Backend != config.StoreMemory,
		tick: max(loopMinTick, deadlineSlack(cfg.Server.ReadHeaderTimeout, cfg.Server.ReadTimeout,
			cfg.Server.WriteTimeout, cfg.Server.IdleTimeout, cfg.Upstream.ResponseHeaderTimeout, cfg.Upstream.IdleTimeout)),
		stop:      make(chan struct{}),
		decisions: make(chan func()),
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
	f         *loopFront
	el        gnet.EventLoop
	clients   map[*clientConn]struct{}   // for the sweep
	upstreams map[*upstreamConn]struct{} // open, for the sweep
	idle      []*upstreamConn            // idle upstream connections, most recent last
	upOpen    int                        // upstream connections open or dialling
	wait      []*clientConn              // clients waiting for an upstream connection
	rd        bytes.Reader
	br        *bufio.Reader
	out       []byte // an answer as bw wrote it
	bw        *bufio.Writer
	lines     []byte      // forwarding header lines of the request being sent
	decisions []*decision // gathered for the next runDecisions
	timer     *time.Timer // bounds runDecisions' wait
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

// loopConn is what a client's connection and an upstream's on a loop
// share: the loop, the phase and its deadline.
type loopConn struct {
	c        gnet.Conn
	ls       *loopState
	phase    uint8
	gone     bool      // closed or handed over: later events for it are stale
	deadline time.Time // of the phase; zero: none
}

func (lc *loopConn) setPhase(ph uint8, now time.Time, timeout time.Duration) {
	lc.phase = ph
	if timeout > 0 {
		lc.deadline = now.Add(timeout)
	} else {
		lc.deadline = time.Time{}
	}
}

// expired reports whether the phase's deadline has passed.
func (lc *loopConn) expired(now time.Time) bool {
	return !lc.deadline.IsZero() && !now.Before(lc.deadline)
}

// close closes the connection now; OnClose follows.
func (lc *loopConn) close() {
	if lc.c != nil {
		_ = lc.ls.el.Close(lc.c)
	}
}

func (f *loopFront) serveListener(ln net.Listener) error {
	f.mu.Lock()
	if f.closing.Load() {
		// Shut down before serving: shutdown found no listener to close.
		f.mu.Unlock()
		return errServerClosed
	}
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
		cl := &clientConn{peer: peerAddr(c.RemoteAddr())}
		if _, err := f.cli.EnrollContext(c, cl); err != nil { // closes c
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
	ls := &loopState{f: f, el: el, clients: make(map[*clientConn]struct{}), upstreams: make(map[*upstreamConn]struct{})}
	// fasthttp reads a header only as large as its reader's buffer.
	ls.br = bufio.NewReaderSize(&ls.rd, max(f.cfg.Server.MaxHeaderBytes, loopAnswerHeader))
	ls.bw = bufio.NewWriterSize(appendWriter{&ls.out}, 16<<10)
	f.loops = append(f.loops, ls)
	return ls
}

// OnOpen enrolls a connection on its loop: a client's from the accept
// loop, an upstream's once dialled.
func (f *loopFront) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	now := time.Now()
	switch lc := c.Context().(type) {
	case *clientConn:
		lc.c, lc.ls = c, f.state(c.EventLoop())
		lc.ls.clients[lc] = struct{}{}
		// A new connection owes its first request's header within the
		// header timeout, as net/http and the fast front count it from
		// the accept: idle_timeout is the grace between answered
		// requests. Waiting idle_timeout (120s by default) for a first
		// byte let silent connections hold the front's connection bound.
		lc.setPhase(phIdle, now, firstRequestTimeout(f.cfg))
		return nil, gnet.None
	case *upstreamConn:
		lc.c = c
		lc.ls.upstreams[lc] = struct{}{}
		if lc.ls.dialled(lc, now) {
			return nil, gnet.None
		}
	}
	return nil, gnet.Close
}

func (f *loopFront) OnClose(c gnet.Conn, _ error) gnet.Action {
	switch lc := c.Context().(type) {
	case *clientConn:
		if lc.ls == nil {
			break
		}
		delete(lc.ls.clients, lc)
		if !lc.gone {
			lc.gone = true
			lc.ls.clientGone(lc)
		}
	case *upstreamConn:
		delete(lc.ls.upstreams, lc)
		if !lc.gone {
			lc.gone = true
			lc.ls.upstreamClosed(lc)
		}
	}
	return gnet.None
}

func (f *loopFront) OnTraffic(c gnet.Conn) (action gnet.Action) {
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
	switch lc := c.Context().(type) {
	case *clientConn:
		if !lc.gone {
			lc.ls.readRequest(lc, time.Now())
			return gnet.None
		}
	case *upstreamConn:
		if !lc.gone {
			lc.ls.answerArrived(lc, time.Now())
			return gnet.None
		}
	}
	return gnet.Close
}

// sweep acts on the deadlines that have passed, resumes clients whose
// answers have drained and, while shutting down, closes idle clients.
func (ls *loopState) sweep(now time.Time) {
	for cl := range ls.clients {
		if !cl.gone {
			ls.sweepClient(cl, now)
		}
	}
	for up := range ls.upstreams {
		if !up.gone {
			ls.sweepUpstream(up, now)
		}
	}
}

// countExchange accounts for an exchange answered with status, on the loop
// or off it, and recycles it.
func (f *loopFront) countExchange(ex *Exchange, status int) {
	f.g.m.countRequest(f.front, status)
	f.g.m.inflight.Dec()
	f.busy.Add(-1)
	f.recycle(ex)
}
