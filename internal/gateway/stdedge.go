package gateway

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/warden-gw/warden/internal/identify"
)

// The std front's edge: what net/http answers itself, before a request
// reaches the handler, made warden's where net/http lets it be.
//
//   - A header over server.max_header_bytes: net/http reads up to
//     stdHeaderSlack past the bound, and warden checks the bound itself
//     (stdHeaderSize): 431, rule request, reason header_too_large, with a
//     request id, recorded and counted, on every std connection (TLS and
//     HTTP/2 too).
//   - On a cleartext connection (stdConn), net/http's own text answers
//     between requests (400, 431 past the slack, 501, 505) are replaced
//     by warden's refusal, reason header_too_large for a 431, else
//     malformed; its 417 to an Expect other than 100-continue by
//     warden's, reason expectation_failed (expectationFailed: the other
//     fronts and HTTP/2 refuse it in the handler); and a header that
//     stops coming (a read timing out after bytes of a request came) is
//     answered 408, reason read_timeout, before net/http closes the
//     connection without an answer.
//   - Over TLS net/http writes those answers into the TLS stream, out of
//     warden's reach: they stay net/http's (text, no id, unrecorded), as
//     do HTTP/2's own refusals (its stream errors, its 431 past the header
//     list size it advertises); a connection that closes with a request
//     net/http read bytes of and never handed over is counted
//     (connState: warden_bad_requests_total, reason net_http).

// stdHeaderSlack is how far past server.max_header_bytes the std front
// lets net/http read a header (its MaxHeaderBytes) before net/http
// answers 431 itself: within it, warden answers.
const stdHeaderSlack = 64 << 10

// stdHeaderSize is r's header as net/http parsed it, in bytes as sent
// give or take the white space around values (which net/http drops: a
// header padded with it is counted short, up to stdHeaderSlack, where
// net/http's own bound takes over): the request line, each
// field line with its CRLF (Host's too, which net/http moves to r.Host),
// and the blank line that ends it.
func stdHeaderSize(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4 + len("Host: ") + len(r.Host) + 2 + 2
	for name, vs := range r.Header {
		for _, v := range vs {
			n += len(name) + len(v) + 4
		}
	}
	return n
}

// stdListener gives the std front's server its cleartext connections as
// stdConns.
type stdListener struct {
	net.Listener
	f *stdFront
}

func (l stdListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &stdConn{Conn: c, f: l.f}, nil
}

// stdConn is a cleartext connection of the std front. Until a request
// reaches the handler (served, set by ServeHTTP; cleared when the
// connection goes idle, stdFront.connState), net/http writes on it only
// its own answers to requests it would not read ("HTTP/1.1 400 ..."),
// which stdConn replaces with warden's; a read that times out after bytes
// of a request came (or, pipelined, were already in net/http's buffer:
// deadlines) is answered 408. (http.StateActive cannot tell: net/http
// sets it once any byte was read, before it knows the request is bad.) An HTTP/2
// connection (its preface read first) is left alone: HTTP/2 answers
// within its own frames.
type stdConn struct {
	net.Conn
	f      *stdFront
	served atomic.Bool // a request reached the handler since the connection opened or went idle
	heard  atomic.Bool // bytes came since the connection opened or went idle
	h2     atomic.Bool // prior-knowledge HTTP/2: not ours to answer
	// deadlines counts the read deadlines net/http set since the
	// connection went idle (or opened) with no request at the handler:
	// after an answer it sets one for the wait for the next request and,
	// once that request's first bytes are in its buffer, one for its
	// header. From the second on, a request is pending though Read may
	// have seen none of it: bytes pipelined behind the last request, read
	// with it, before the connection went idle.
	deadlines atomic.Int32
	// answered: warden answered in net/http's place; the connection ends.
	answered atomic.Bool
}

var (
	h2Preface = []byte("PRI * HTTP/2.0")
	// h1Response begins net/http's own answers: "HTTP/1.1 " but for its
	// 417, written in the request's version ("HTTP/1.0 417" to HTTP/1.0).
	h1Response = []byte("HTTP/1.")
)

func (c *stdConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && !c.heard.Load() {
		if !c.served.Load() && bytes.HasPrefix(b[:n], h2Preface) {
			c.h2.Store(true)
		}
		c.heard.Store(true)
	}
	if err != nil && (c.heard.Load() || c.deadlines.Load() >= 2) && !c.served.Load() && !c.h2.Load() {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			// Part of a request came, not all of it in time: net/http
			// closes without a word.
			c.refuse(http.StatusRequestTimeout, "read_timeout", "request read timeout", false)
		}
	}
	return n, err
}

func (c *stdConn) Write(b []byte) (int, error) {
	if !c.served.Load() && bytes.HasPrefix(b, h1Response) && !c.h2.Load() {
		// net/http's own answer to a request it would not read: warden's
		// in its place.
		code, _ := strconv.Atoi(string(b[min(len(b), len("HTTP/1.1 ")):min(len(b), len("HTTP/1.1 ")+3)]))
		reason, msg := "malformed", "bad request"
		switch code {
		case http.StatusRequestHeaderFieldsTooLarge:
			reason, msg = "header_too_large", "request header too large"
		case http.StatusExpectationFailed:
			// An Expect other than 100-continue, answered before the
			// handler: as the other fronts answer it (expectationFailed).
			reason, msg = reasonExpectation, msgExpectation
		case http.StatusHTTPVersionNotSupported:
			msg = "HTTP version not supported"
		case http.StatusNotImplemented:
			msg = "transfer encoding not supported"
		case 0:
			code = http.StatusBadRequest
		}
		c.refuse(code, reason, msg, true)
		return len(b), nil
	}
	return c.Conn.Write(b)
}

// SetReadDeadline counts net/http's deadlines between requests
// (stdConn.deadlines).
func (c *stdConn) SetReadDeadline(t time.Time) error {
	if !c.served.Load() {
		c.deadlines.Add(1)
	}
	return c.Conn.SetReadDeadline(t)
}

// CloseWrite half-closes, as net/http does after its 431 to let the client
// read it before the connection closes.
func (c *stdConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// refuse answers status on the connection at its edge, once, as the fast
// front answers what fasthttp would not read: rule request, the reason as
// facet, a request id, recorded with the peer alone (nothing of the
// request was parsed), counted, logged. drain: read what the client is
// still sending first, so that closing does not reset the answer away.
func (c *stdConn) refuse(status int, reason, msg string, drain bool) {
	if c.answered.Swap(true) {
		return
	}
	g := c.f.g
	g.m.countRequest(frontStd, status)
	ex := &Exchange{ID: g.ids.next(), Start: time.Now()}
	var w rawReply
	g.badRequest(&w, g.pipeline(), frontStd, ex, &identify.Input{Peer: peerAddr(c.RemoteAddr())}, status, reason, msg)
	if drain {
		drainRefused(c.Conn)
	}
	_ = c.Conn.SetWriteDeadline(time.Now().Add(drainTotal))
	_, _ = c.Conn.Write(w.appendTo(nil))
}

// tlsConnState is what the std front keeps of a TLS connection: its
// ClientHello's fingerprint, and whether net/http read bytes of a request
// (http.StateActive) that has not reached ServeHTTP.
type tlsConnState struct {
	fp      string
	pending atomic.Bool
}

// connState follows a connection's state (http.Server.ConnState): a
// cleartext one's (stdConn), and a TLS one's, which closing with a request
// pending was refused or dropped by net/http itself (a request it could
// not parse, a header far past the bound, a late header, a client gone
// mid-request): counted in warden_bad_requests_total, reason net_http, the
// only trace warden has of it (at least one such request per connection:
// HTTP/2 streams net/http refused count once).
func (f *stdFront) connState(c net.Conn, s http.ConnState) {
	switch c := c.(type) {
	case *stdConn:
		if s == http.StateIdle {
			c.heard.Store(false)
			c.served.Store(false)
			c.deadlines.Store(0)
		}
	case *tls.Conn:
		v, ok := f.hello.Load(c.NetConn())
		if !ok {
			return
		}
		st := v.(*tlsConnState)
		switch s {
		case http.StateActive:
			st.pending.Store(true)
		case http.StateClosed, http.StateHijacked:
			if s == http.StateClosed && st.pending.Load() {
				f.g.m.badRequest(frontStd, "net_http")
			}
			f.hello.Delete(c.NetConn())
		}
	}
}

// rawReply is an answer written as HTTP/1.1 bytes straight to a
// connection (stdConn), closing it.
type rawReply struct {
	header []Header
	status int
	body   []byte
}

func (r *rawReply) setHeader(name, value string) {
	r.header = append(r.header, Header{Name: name, Value: value})
}

func (r *rawReply) writeJSON(status int, body []byte) { r.status, r.body = status, body }

func (r *rawReply) appendTo(b []byte) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(r.status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(r.status)...)
	b = append(b, "\r\nDate: "...)
	b = time.Now().UTC().AppendFormat(b, http.TimeFormat)
	for _, h := range r.header {
		b = append(b, "\r\n"...)
		b = append(b, h.Name...)
		b = append(b, ": "...)
		b = append(b, h.Value...)
	}
	b = append(b, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(r.body)), 10)
	b = append(b, "\r\nConnection: close\r\n\r\n"...)
	return append(b, r.body...)
}

var _ replyWriter = (*rawReply)(nil)
