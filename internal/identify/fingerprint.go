package identify

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"hash"
	"hash/maphash"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
)

// HelloFingerprint hashes the traits of a TLS ClientHello into 16 hex
// digits (see the package documentation for the exact string hashed). Call it
// once per connection, from tls.Config.GetConfigForClient, and pass the result
// as Input.TLSFingerprint on each of the connection's requests.
func HelloFingerprint(h *tls.ClientHelloInfo) string {
	if h == nil {
		return ""
	}
	var b strings.Builder
	b.Grow(256)
	b.WriteString("v=")
	writeU16s(&b, h.SupportedVersions, false)
	b.WriteString(";c=")
	writeU16s(&b, h.CipherSuites, false)
	b.WriteString(";e=")
	writeU16s(&b, h.Extensions, true)
	b.WriteString(";g=")
	curves := make([]uint16, len(h.SupportedCurves))
	for i, c := range h.SupportedCurves {
		curves[i] = uint16(c)
	}
	writeU16s(&b, curves, false)
	b.WriteString(";p=")
	for i, p := range h.SupportedPoints {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(strconv.Itoa(int(p)))
	}
	b.WriteString(";s=")
	schemes := make([]uint16, len(h.SignatureSchemes))
	for i, s := range h.SignatureSchemes {
		schemes[i] = uint16(s)
	}
	writeU16s(&b, schemes, false)
	b.WriteString(";a=")
	for i, p := range h.SupportedProtos {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(p)
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:8])
}

// writeU16s writes vs as decimal, '-'-separated, GREASE values (RFC 8701)
// dropped, sorted when sorted is set.
func writeU16s(b *strings.Builder, vs []uint16, sorted bool) {
	if sorted {
		vs = slices.Clone(vs)
		slices.Sort(vs)
	}
	first := true
	for _, v := range vs {
		if isGREASE(v) {
			continue
		}
		if !first {
			b.WriteByte('-')
		}
		first = false
		b.WriteString(strconv.Itoa(int(v)))
	}
}

// isGREASE reports RFC 8701 values: 0x0a0a, 0x1a1a, ..., 0xfafa.
func isGREASE(v uint16) bool {
	return v&0x0f0f == 0x0a0a && v>>8 == v&0xff
}

// fpHash computes a request's fingerprint. It is pooled with its callback
// bound, and feeds the hash through a fixed buffer, so hashing header names
// allocates nothing and makes few calls into SHA-256.
type fpHash struct {
	h       hash.Hash
	sumBuf  [sha256.Size]byte
	buf     []byte // pending bytes, never beyond its capacity
	n       int
	flushed bool // buf no longer holds the whole input
	namesFn func(string)
}

func (f *fpHash) init() {
	f.h = sha256.New()
	f.buf = make([]byte, 0, 512)
	f.namesFn = f.name
}

func (f *fpHash) flush() {
	f.h.Write(f.buf)
	f.buf = f.buf[:0]
	f.flushed = true
}

// write queues s for hashing.
func (f *fpHash) write(s string) {
	for s != "" {
		if len(f.buf) == cap(f.buf) {
			f.flush()
		}
		n := copy(f.buf[len(f.buf):cap(f.buf)], s)
		f.buf = f.buf[:len(f.buf)+n]
		s = s[n:]
	}
}

// name queues one header name, lower-cased, after a ',' separator.
func (f *fpHash) name(s string) {
	if f.n > 0 {
		f.write(",")
	}
	f.n++
	for i := 0; i < len(s); i++ {
		if len(f.buf) == cap(f.buf) {
			f.flush()
		}
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		f.buf = append(f.buf, c)
	}
}

// sum hashes tls | names | ua, each part empty when not configured. A client
// seen lately (the same input) is answered from cache without SHA-256.
func (f *fpHash) sum(h Header, tlsFP string, parts fpParts, cache *fpCache) string {
	f.h.Reset()
	f.buf = f.buf[:0]
	f.n = 0
	f.flushed = false
	if parts.tls {
		f.write(tlsFP)
	}
	f.write("|")
	if parts.names && h != nil {
		h.Names(f.namesFn)
	}
	f.write("|")
	if parts.ua && h != nil {
		f.write(h.Peek("User-Agent"))
	}
	var slot *atomic.Pointer[fpEntry]
	var input string
	if !f.flushed {
		slot = cache.slot(f.buf)
		if e := slot.Load(); e != nil && e.input == string(f.buf) {
			return e.fp
		}
		input = string(f.buf)
	}
	f.flush()
	var out [16]byte
	hex.Encode(out[:], f.h.Sum(f.sumBuf[:0])[:8])
	fp := string(out[:])
	if slot != nil {
		slot.Store(&fpEntry{input: input, fp: fp})
	}
	return fp
}

// fpCache maps a fingerprint's input to the fingerprint. It is
// direct-mapped like internTable: bounded, lock-free, and a new entry takes
// its slot from whatever held it.
type fpCache struct {
	seed  maphash.Seed
	mask  uint64
	slots []atomic.Pointer[fpEntry]
}

type fpEntry struct{ input, fp string }

func newFPCache(slots int) *fpCache { // slots: a power of two
	return &fpCache{seed: maphash.MakeSeed(), mask: uint64(slots - 1), slots: make([]atomic.Pointer[fpEntry], slots)}
}

func (c *fpCache) slot(input []byte) *atomic.Pointer[fpEntry] {
	return &c.slots[maphash.Bytes(c.seed, input)&c.mask]
}

type fpParts struct{ tls, names, ua bool }
