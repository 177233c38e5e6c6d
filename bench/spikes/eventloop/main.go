// Spike: an event-loop HTTP/1.1 keep-alive proxy on gnet, every client
// connection paired with an upstream connection on the same loop. Mode
// "relay" forwards bytes; mode "http" parses each request header with
// fasthttp, re-serialises it (plus 5 forwarding headers) and parses each
// response header to find the body's end, as a real proxy front must.
// Assumes GET requests without bodies and Content-Length answers.
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"log"
	"net"

	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/fasthttp"
)

type pair struct {
	client, up gnet.Conn
	pending    []byte
	isUp       bool
	other      *pair // the peer side's record
	rh         fasthttp.RequestHeader
	resp       fasthttp.ResponseHeader
	out        []byte
	br         *bufio.Reader
	rd         bytes.Reader
}

type proxy struct {
	gnet.BuiltinEventEngine
	upstream string
	mode     string
}

func (p *proxy) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	if pr, ok := c.Context().(*pair); ok && pr.isUp { // enrolled upstream
		cl := pr.other
		cl.up = c
		if len(cl.pending) > 0 {
			c.Write(cl.pending)
			cl.pending = nil
		}
		return nil, gnet.None
	}
	cl := &pair{client: c}
	cl.rh.DisableNormalizing()
	cl.br = bufio.NewReaderSize(&cl.rd, 16<<10)
	c.SetContext(cl)
	nc, err := net.Dial("tcp", p.upstream)
	if err != nil {
		return nil, gnet.Close
	}
	upr := &pair{isUp: true, other: cl}
	upr.br = bufio.NewReaderSize(&upr.rd, 16<<10)
	if _, err := c.EventLoop().Enroll(gnet.NewContext(context.Background(), upr), nc); err != nil {
		return nil, gnet.Close
	}
	return nil, gnet.None
}

func (p *proxy) OnTraffic(c gnet.Conn) gnet.Action {
	pr := c.Context().(*pair)
	if p.mode == "relay" {
		buf, _ := c.Next(-1)
		if pr.isUp {
			pr.other.client.Write(buf)
		} else if pr.up != nil {
			pr.up.Write(buf)
		} else {
			pr.pending = append(pr.pending, buf...)
		}
		return gnet.None
	}
	if pr.isUp {
		// Whole answers only: header, then Content-Length bytes.
		for {
			buf, _ := c.Peek(-1)
			end := bytes.Index(buf, []byte("\r\n\r\n"))
			if end < 0 {
				return gnet.None
			}
			pr.rd.Reset(buf[:end+4])
			pr.br.Reset(&pr.rd)
			if err := pr.resp.Read(pr.br); err != nil {
				return gnet.Close
			}
			n := end + 4 + pr.resp.ContentLength()
			if len(buf) < n {
				return gnet.None
			}
			pr.other.client.Write(buf[:n])
			c.Discard(n)
		}
	}
	for {
		buf, _ := c.Peek(-1)
		end := bytes.Index(buf, []byte("\r\n\r\n"))
		if end < 0 {
			return gnet.None
		}
		pr.rd.Reset(buf[:end+4])
		pr.br.Reset(&pr.rd)
		if err := pr.rh.Read(pr.br); err != nil {
			return gnet.Close
		}
		pr.rh.Add("X-Forwarded-For", "127.0.0.1")
		pr.rh.Add("Forwarded", "for=127.0.0.1;proto=http")
		pr.rh.Add("X-Forwarded-Proto", "http")
		pr.rh.Add("X-Forwarded-Host", "127.0.0.1:18085")
		pr.rh.Add("X-Request-Id", "0123456789abcdef01234567")
		pr.out = pr.rh.AppendBytes(pr.out[:0])
		c.Discard(end + 4)
		if pr.up != nil {
			pr.up.Write(pr.out)
		} else {
			pr.pending = append(pr.pending, pr.out...)
		}
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:18085", "")
	up := flag.String("upstream", "127.0.0.1:18081", "")
	mode := flag.String("mode", "http", "relay or http")
	flag.Parse()
	log.Fatal(gnet.Run(&proxy{upstream: *up, mode: *mode}, "tcp://"+*addr, gnet.WithMulticore(true), gnet.WithTCPNoDelay(gnet.TCPNoDelay)))
}
