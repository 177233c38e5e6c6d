package ration

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"io"
)

// zlibReader reads HTTP deflate: zlib-wrapped, or raw as some servers send.
func zlibReader(b []byte) (io.Reader, error) {
	if r, err := zlib.NewReader(bytes.NewReader(b)); err == nil {
		return r, nil
	}
	return flate.NewReader(bytes.NewReader(b)), nil
}
