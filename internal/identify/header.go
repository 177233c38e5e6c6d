package identify

import (
	"net/netip"
)

// Header is the request's header as the HTTP front sees it. Strings handed
// out may alias the front's buffers: Identify uses them only during the call
// and copies what it keeps.
type Header interface {
	// Peek returns the first value of the header named name (any case), or
	// "" when absent.
	Peek(name string) string
	// Values calls fn with every value line of the header named name, in
	// wire order.
	Values(name string, fn func(v string))
	// Count is the number of value lines of the header named name (any
	// case).
	Count(name string) int
	// Names calls fn with every header name, in wire order when the front
	// knows it (once per line, repeated names included).
	Names(fn func(name string))
}

// Input is what Identify reads of one request.
type Input struct {
	Peer           netip.Addr // the TCP peer
	Header         Header
	TLSFingerprint string // HelloFingerprint of the connection's handshake, "" for cleartext
}
