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
	"os"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// What leaves the loop: a client connection whose request the loop does
// not serve goes to the fast front (handOverClient); an answer the loop
// will not buffer is streamed off the loop with both connections, and the
// client's then goes to the fast front (handOverAnswer).

// handOverClient gives a client connection, with what it has sent and the
// loop has not read, to the fast front.
func (ls *loopState) handOverClient(cl *clientConn) {
	f := ls.f
	if f.closing.Load() { // shutting down: no new work for the fast front
		cl.close()
		return
	}
	delete(ls.clients, cl)
	rest, nc, err := cl.take()
	if err != nil {
		f.g.log.Warn("loop front: hand over", slog.String("error", err.Error()))
		return
	}
	f.handedOver.Add(1)
	f.handed.Add(1)
	go func() {
		defer f.handed.Done()
		f.handoff.put(&prefixConn{Conn: nc, rest: rest})
	}()
}

// take takes a connection off its loop: a duplicate of its descriptor as a
// net.Conn, and a copy of the bytes read and not consumed. The loop's own
// descriptor closes without the socket closing.
func (lc *loopConn) take() ([]byte, net.Conn, error) {
	buf, _ := lc.c.Peek(-1)
	rest := append([]byte(nil), buf...)
	fd, err := lc.c.Dup()
	lc.gone = true
	lc.close()
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
func (ls *loopState) handOverAnswer(cl *clientConn, up *upstreamConn) {
	f := ls.f
	ex, p := cl.ex, cl.p
	head := cl.head
	// A client that sent too far ahead (overrun) lost what it sent after
	// this request: its connection closes after the answer, without the
	// refusal the loop would have added.
	closeAfter := cl.closeAfter || cl.overrun
	cl.upc, up.cl = nil, nil
	ls.upOpen--
	delete(ls.upstreams, up)
	delete(ls.clients, cl)
	answer, unc, uerr := up.take()
	rest, cnc, cerr := cl.take()
	if uerr != nil || cerr != nil {
		for _, c := range []net.Conn{unc, cnc} {
			if c != nil {
				_ = c.Close()
			}
		}
		f.g.log.Warn("loop front: hand over answer", slog.Any("error", errors.Join(uerr, cerr)))
		f.countExchange(ex, 502)
		ls.serveWaiter(time.Now())
		return
	}
	ls.serveWaiter(time.Now())
	f.handed.Add(1)
	go func() {
		defer f.handed.Done()
		status, ok := f.relayAnswer(cnc, unc, answer, ex, p, head, closeAfter)
		f.countExchange(ex, status)
		if ok && !closeAfter && !f.closing.Load() {
			f.handoff.put(&prefixConn{Conn: cnc, rest: rest, idle: true})
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
		f.upstreamFailed(&resp, ex, err)
	} else {
		f.answer(context.Background(), p, ex, &resp)
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

// prefixConn reads rest before the connection: bytes an event loop had
// already read when it handed the connection over. idle: handed over
// after an answer, between requests (coarseListener).
type prefixConn struct {
	net.Conn
	rest []byte
	idle bool
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.rest) > 0 {
		n := copy(p, c.rest)
		c.rest = c.rest[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite is the connection's, for coarseConn's lingering close of a
// refused client.
func (c *prefixConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// handoffListener is the listener of connections the loop front hands to
// the fast front's server: Accept returns them as put; Close ends it, and
// a connection put after that is closed.
type handoffListener struct {
	addr   net.Addr
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, ch: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *handoffListener) put(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.closed:
		_ = c.Close()
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }

// deadlineReader reads with a deadline of d from each read: a relay ends
// when the upstream stalls that long, however long the answer runs.
type deadlineReader struct {
	c net.Conn
	d time.Duration
}

func (r *deadlineReader) Read(p []byte) (int, error) {
	if r.d > 0 {
		_ = r.c.SetReadDeadline(time.Now().Add(r.d))
	}
	return r.c.Read(p)
}
