package inspect

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
)

var (
	// ErrOversize is returned by Decode when the decoded answer exceeds
	// the configured max_body.
	ErrOversize = errors.New("answer larger than max_body")
	// ErrEncoding is returned for a content encoding warden cannot decode;
	// such answers pass untouched.
	ErrEncoding = errors.New("unsupported content encoding")
)

// codec pools compressors per Map (no package state).
type codec struct {
	gzr sync.Pool // *gzip.Reader
	gzw sync.Pool // *gzip.Writer
	zw  sync.Pool // *zlib.Writer
}

// JSON reports whether a Content-Type is JSON (application/json or
// application/*+json, any parameters).
func JSON(contentType string) bool {
	ct := contentType
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	if len(ct) < len("application/json") || !strings.EqualFold(ct[:len("application/")], "application/") {
		return false
	}
	sub := ct[len("application/"):]
	return strings.EqualFold(sub, "json") || len(sub) > 5 && strings.EqualFold(sub[len(sub)-5:], "+json")
}

// encodingOf normalises a Content-Encoding: "" for identity.
func encodingOf(enc string) (string, bool) {
	switch e := strings.ToLower(strings.TrimSpace(enc)); e {
	case "", "identity":
		return "", true
	case "gzip", "x-gzip":
		return "gzip", true
	case "deflate":
		return "deflate", true
	default:
		return e, false
	}
}

// Identity reports whether a Content-Encoding leaves the body as it is.
func Identity(enc string) bool {
	e, _ := encodingOf(enc)
	return e == ""
}

// Decode returns the answer body decoded from its Content-Encoding, appended
// to dst[:0] (body itself when not encoded). It fails with ErrOversize past
// max_body and ErrEncoding for encodings other than gzip and deflate.
func (m *Map) Decode(enc string, body, dst []byte) ([]byte, error) {
	e, ok := encodingOf(enc)
	if !ok {
		return nil, fmt.Errorf("inspect: decode %q: %w", e, ErrEncoding)
	}
	max := m.cfg.MaxBody
	if e == "" {
		if int64(len(body)) > max {
			return nil, ErrOversize
		}
		return body, nil
	}
	var r io.Reader
	switch e {
	case "gzip":
		zr, _ := m.codec.gzr.Get().(*gzip.Reader)
		if zr == nil {
			zr = new(gzip.Reader)
		}
		defer m.codec.gzr.Put(zr)
		if err := zr.Reset(bytes.NewReader(body)); err != nil {
			return nil, fmt.Errorf("inspect: decode gzip: %w", err)
		}
		zr.Multistream(true)
		r = zr
	case "deflate":
		// HTTP's deflate is zlib-wrapped; some servers send raw deflate.
		zr, err := zlib.NewReader(bytes.NewReader(body))
		if err != nil {
			r = flate.NewReader(bytes.NewReader(body))
		} else {
			r = zr
		}
		if c, ok := r.(io.Closer); ok {
			defer c.Close()
		}
	}
	buf := bytes.NewBuffer(dst[:0])
	n, err := io.Copy(buf, io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("inspect: decode %s: %w", e, err)
	}
	if n > max {
		return nil, ErrOversize
	}
	return buf.Bytes(), nil
}

// Encode appends plain, encoded as enc (the answer's Content-Encoding), to
// dst[:0].
func (m *Map) Encode(enc string, plain, dst []byte) ([]byte, error) {
	e, ok := encodingOf(enc)
	if !ok {
		return nil, fmt.Errorf("inspect: encode %q: %w", e, ErrEncoding)
	}
	if e == "" {
		return append(dst[:0], plain...), nil
	}
	buf := bytes.NewBuffer(dst[:0])
	switch e {
	case "gzip":
		w, _ := m.codec.gzw.Get().(*gzip.Writer)
		if w == nil {
			w, _ = gzip.NewWriterLevel(buf, gzip.BestSpeed)
		} else {
			w.Reset(buf)
		}
		defer m.codec.gzw.Put(w)
		if _, err := w.Write(plain); err != nil {
			return nil, fmt.Errorf("inspect: encode gzip: %w", err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("inspect: encode gzip: %w", err)
		}
	case "deflate":
		w, _ := m.codec.zw.Get().(*zlib.Writer)
		if w == nil {
			w, _ = zlib.NewWriterLevel(buf, zlib.BestSpeed)
		} else {
			w.Reset(buf)
		}
		defer m.codec.zw.Put(w)
		if _, err := w.Write(plain); err != nil {
			return nil, fmt.Errorf("inspect: encode deflate: %w", err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("inspect: encode deflate: %w", err)
		}
	}
	return buf.Bytes(), nil
}
