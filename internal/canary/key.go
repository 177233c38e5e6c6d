package canary

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/dchest/siphash"
)

// minKeyLen is the shortest key accepted, in bytes.
const minKeyLen = 16

// key is one secret and the sub-keys derived from it: HMAC-SHA256 makes
// each profile; SipHash, keyed from the HMAC, makes the per-record
// decisions on the request path (a few nanoseconds each).
type key struct {
	mac     []byte
	anchor  sip // is a list record an anchor
	slot    sip // which canary a slot carries
	bias    sip // a slot's bias
	include sip // is a slot shown to an identity
	perm    sip // the username permutation
	graph   sip // a canary's followers and following
	cursor  sip // checks a canary list's cursor
	searchKeys
}

type sip struct{ k0, k1 uint64 }

func (s sip) sum(b []byte) uint64 { return siphash.Hash(s.k0, s.k1, b) }

// parseKeys reads "k1,k2,...": the first signs, the others verify.
func parseKeys(v string) ([]*key, error) {
	var ks []*key
	for i, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if len(s) < minKeyLen {
			return nil, fmt.Errorf("key %d is shorter than %d bytes", i+1, minKeyLen)
		}
		ks = append(ks, newKey([]byte(s)))
	}
	if len(ks) == 0 {
		return nil, errors.New("no key")
	}
	return ks, nil
}

func newKey(secret []byte) *key {
	k := &key{mac: secret}
	sub := func(label string) sip {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte("warden canary " + label))
		h := m.Sum(nil)
		return sip{binary.LittleEndian.Uint64(h), binary.LittleEndian.Uint64(h[8:])}
	}
	k.anchor, k.slot, k.bias, k.include = sub("anchor"), sub("slot"), sub("bias"), sub("include")
	k.perm, k.graph, k.cursor = sub("perm"), sub("graph"), sub("cursor")
	k.initSearch(secret)
	return k
}

// seed is HMAC-SHA256(key, "profile" || j): every field of canary j.
func (k *key) seed(j uint32) [4]uint64 {
	m := hmac.New(sha256.New, k.mac)
	var b [12]byte
	copy(b[:], "profile\x00")
	binary.BigEndian.PutUint32(b[8:], j)
	m.Write(b[:])
	var h [32]byte
	m.Sum(h[:0])
	return [4]uint64{binary.LittleEndian.Uint64(h[0:]), binary.LittleEndian.Uint64(h[8:]),
		binary.LittleEndian.Uint64(h[16:]), binary.LittleEndian.Uint64(h[24:])}
}

// indexBits is the width of a canary index: 2^26 canaries per key.
const (
	indexBits  = 26
	indexCount = 1 << indexBits
	halfBits   = indexBits / 2
	halfMask   = 1<<halfBits - 1
)

// permute is a keyed bijection on [0, 2^26) (four Feistel rounds): a
// username carries permute(j), so looking one up needs no table.
func (k *key) permute(j uint32) uint32 {
	l, r := j>>halfBits, j&halfMask
	for i := range 4 {
		l, r = r, l^k.round(i, r)
	}
	return l<<halfBits | r
}

func (k *key) unpermute(v uint32) uint32 {
	l, r := v>>halfBits, v&halfMask
	for i := 3; i >= 0; i-- {
		l, r = r^k.round(i, l), l
	}
	return l<<halfBits | r
}

func (k *key) round(i int, x uint32) uint32 {
	var b [5]byte
	b[0] = byte(i)
	binary.LittleEndian.PutUint32(b[1:], x)
	return uint32(k.perm.sum(b[:])) & halfMask
}
