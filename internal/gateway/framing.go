package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"

	"github.com/valyala/fasthttp"
)

// answerFrame is what the bytes of an answer received so far say of its
// end: the loop front reads answers whole, and must know when one is.
type answerFrame struct {
	need       int  // bytes the whole answer takes, once known
	chunkAt    int  // where a chunked body starts, while its end is unknown
	size       int  // its body's announced size, or what has come of it
	whole      bool // all of it has come
	untilClose bool // it ends when the upstream closes
	err        error
}

var (
	errAnswerHeaderTooLarge = errors.New("answer header too large")
	errTooManyInterim       = errors.New("too many interim answers")
	errUnaskedSwitch        = errors.New("101 Switching Protocols to a request that asked for none")
)

// frameAnswer reads the framing of an answer from its first bytes in b,
// following fasthttp's parsing (which reads it once whole): interim 1xx
// answers skipped, no body after HEAD, 204 or 304, else Content-Length,
// chunked, or until close.
func frameAnswer(b []byte, head bool, maxHeader int) answerFrame {
	off := 0
	for range 100 {
		end := bytes.Index(b[off:], crlf2)
		if end < 0 {
			if len(b)-off > maxHeader {
				return answerFrame{err: errAnswerHeaderTooLarge}
			}
			return answerFrame{}
		}
		hdr := off + end + 4
		var h fasthttp.ResponseHeader
		if err := h.Read(bufio.NewReader(bytes.NewReader(b[off:hdr]))); err != nil {
			return answerFrame{err: fmt.Errorf("answer header: %w", err)}
		}
		st := h.StatusCode()
		switch {
		case st == fasthttp.StatusSwitchingProtocols:
			return answerFrame{err: errUnaskedSwitch}
		case st >= 100 && st < 200:
			off = hdr
			continue
		case head || st == fasthttp.StatusNoContent || st == fasthttp.StatusNotModified:
			return answerFrame{need: hdr, whole: true}
		}
		switch n := h.ContentLength(); {
		case n >= 0:
			return answerFrame{need: hdr + n, size: n, whole: len(b) >= hdr+n}
		case n == -1: // chunked
			end, ok, err := chunkedEnd(b[hdr:])
			if err != nil {
				return answerFrame{err: err}
			}
			if ok {
				return answerFrame{need: hdr + end, size: end, whole: true}
			}
			return answerFrame{size: len(b) - hdr, chunkAt: hdr}
		default:
			return answerFrame{untilClose: true, size: len(b) - hdr}
		}
	}
	return answerFrame{err: errTooManyInterim}
}

var errBadChunk = errors.New("malformed chunked body")

// chunkedEnd finds the end of a chunked body at the start of b, trailers
// included: n is its length when ok; not ok and no error, more must come.
// It accepts what fasthttp's parser accepts: hex sizes, extensions after
// ';' with no line feed in them, CRLF line ends.
func chunkedEnd(b []byte) (n int, ok bool, err error) {
	i := 0
	for {
		size, digits := 0, 0
		for i < len(b) && digits <= 16 {
			d := unhex(b[i])
			if d < 0 {
				break
			}
			size = size<<4 | d
			i++
			digits++
		}
		if i == len(b) {
			return 0, false, nil
		}
		if digits == 0 || digits > 16 || size < 0 {
			return 0, false, errBadChunk
		}
		// Optional whitespace, then an optional extension, then CRLF.
		ows, ext := false, false
	line:
		for ; i < len(b); i++ {
			switch c := b[i]; {
			case c == '\r':
				break line
			case c == '\n':
				return 0, false, errBadChunk
			case ext:
			case c == ' ' || c == '\t':
				ows = true
			case c == ';' && !ows:
				ext = true
			default:
				return 0, false, errBadChunk
			}
		}
		if i+1 >= len(b) {
			return 0, false, nil
		}
		if b[i+1] != '\n' {
			return 0, false, errBadChunk
		}
		i += 2
		if size == 0 {
			return trailerEnd(b, i)
		}
		if len(b)-i < size+2 {
			return 0, false, nil
		}
		i += size
		if b[i] != '\r' || b[i+1] != '\n' {
			return 0, false, errBadChunk
		}
		i += 2
	}
}

// trailerEnd finds the empty line that ends the trailer section from i.
func trailerEnd(b []byte, i int) (int, bool, error) {
	for {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return 0, false, nil
		}
		if j == 0 || b[i+j-1] != '\r' {
			return 0, false, errBadChunk
		}
		if j == 1 {
			return i + 2, true, nil
		}
		i += j + 1
	}
}

// readAnswer reads an answer as fasthttp's Response.ReadLimitBody does
// (interim 1xx answers skipped, trailers read), and also reports whether
// its body ends at close: fasthttp reads such a body to the end of what
// it is given and records that length as Content-Length, so afterwards
// the answer cannot tell.
func readAnswer(resp *fasthttp.Response, br *bufio.Reader, limit int) (untilClose bool, err error) {
	if err := resp.Header.Read(br); err != nil {
		return false, err
	}
	for n := 0; ; n++ {
		st := resp.StatusCode()
		if st < 100 || st > 199 {
			break
		}
		if st == fasthttp.StatusSwitchingProtocols {
			return false, errUnaskedSwitch
		}
		if n >= 100 {
			return false, errTooManyInterim
		}
		if err := resp.Header.Read(br); err != nil {
			return false, err
		}
	}
	st := resp.StatusCode()
	if resp.SkipBody || st == fasthttp.StatusNoContent || st == fasthttp.StatusNotModified {
		return false, nil
	}
	n := resp.Header.ContentLength()
	if err := resp.ReadBody(br, limit); err != nil {
		return false, err
	}
	if n == -1 {
		if err := resp.Header.ReadTrailer(br); err != nil {
			return false, err
		}
	}
	return n == -2, nil
}
