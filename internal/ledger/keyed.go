package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// A keyed section (format 4) maps sorted 32-bit keys to byte payloads, cut
// in blocks of about blockTarget bytes, each compressed on its own (zstd),
// so that a look-up decompresses one block, not the section:
//
//	nb uvarint, per block: first key (delta from the previous block's),
//	keys in it, raw length, compressed length (uvarints); the blocks.
//
// A block's raw bytes are, per key: the key's delta from the previous
// (0 for the block's first), the payload's length, the payload. A
// section whose blocks do not decode is an error where it is read (the
// query fails naming the file; verify reports it), never a panic.
type keyed struct {
	first []uint32 // first key of each block
	nkeys []uint32
	raw   []uint32 // raw length of each block
	off   []int    // where each block starts in data; len nb+1
	data  []byte
	dir   int // the directory's length in bytes (format 5's CRC32C covers it)

	mu  sync.Mutex
	dec []*block // decoded blocks, nil until used
	bad error    // a block that did not decode
}

// block is one decoded block.
type block struct {
	keys     []uint32
	off, end []uint32 // key i's payload is raw[off[i]:end[i]]
	raw      []byte
}

const (
	blockTarget = 16 << 10
	maxBlockRaw = 64 << 20 // a block claiming more is corrupt
)

// keyedBuilder cuts sorted keys and their payloads into blocks.
type keyedBuilder struct {
	blocks [][]byte
	first  []uint32
	nkeys  []uint32
	last   uint32
	cur    []byte
	// sink, when set, takes each block as it is closed instead of blocks
	// (a day's rollup is written as it is merged, not kept): raw is
	// reused after sink returns.
	sink func(raw []byte) error
	err  error // the first error sink returned
}

// add appends key (greater than the previous) and its payload.
func (b *keyedBuilder) add(key uint32, payload []byte) {
	if len(b.cur) == 0 {
		b.first = append(b.first, key)
		b.nkeys = append(b.nkeys, 0)
		b.last = key
	}
	b.cur = binary.AppendUvarint(b.cur, uint64(key-b.last))
	b.cur = binary.AppendUvarint(b.cur, uint64(len(payload)))
	b.cur = append(b.cur, payload...)
	b.last = key
	b.nkeys[len(b.nkeys)-1]++
	if len(b.cur) >= blockTarget {
		b.close()
	}
}

// close ends the block being filled.
func (b *keyedBuilder) close() {
	if len(b.cur) == 0 {
		return
	}
	if b.sink == nil {
		b.blocks = append(b.blocks, b.cur)
		b.cur = nil
		return
	}
	if err := b.sink(b.cur); err != nil && b.err == nil {
		b.err = err
	}
	b.cur = b.cur[:0]
}

// rawBlocks is every block's raw bytes, the last one closed.
func (b *keyedBuilder) rawBlocks() [][]byte {
	b.close()
	return b.blocks
}

// appendTo compresses the blocks after dst.
func (b *keyedBuilder) appendTo(dst []byte, enc *zstd.Encoder) []byte {
	raws := b.rawBlocks()
	comp := make([][]byte, len(raws))
	for i, r := range raws {
		comp[i] = enc.EncodeAll(r, nil)
	}
	rawLen, compLen := make([]int, len(raws)), make([]int, len(raws))
	for i := range raws {
		rawLen[i], compLen[i] = len(raws[i]), len(comp[i])
	}
	dst = appendKeyedDir(dst, b.first, b.nkeys, rawLen, compLen)
	for _, c := range comp {
		dst = append(dst, c...)
	}
	return dst
}

// appendKeyedDir appends a keyed section's directory: the count of
// blocks, then each block's first key (delta), keys, raw and compressed
// lengths.
func appendKeyedDir(dst []byte, first, nkeys []uint32, raw, comp []int) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(first)))
	var prev uint32
	for i := range first {
		dst = binary.AppendUvarint(dst, uint64(first[i]-prev))
		dst = binary.AppendUvarint(dst, uint64(nkeys[i]))
		dst = binary.AppendUvarint(dst, uint64(raw[i]))
		dst = binary.AppendUvarint(dst, uint64(comp[i]))
		prev = first[i]
	}
	return dst
}

var errKeyed = errors.New("malformed keyed section")

// parseKeyed reads a section's directory; b is the whole section (kept
// referenced: the blocks are decompressed from it on use).
func parseKeyed(b []byte) (*keyed, error) {
	k, comp, rest, err := parseKeyedDir(b)
	if err != nil {
		return nil, err
	}
	return k, k.setData(comp, rest)
}

// parseKeyedDir reads a directory at the start of b; the blocks' bytes
// are given to setData (after the directory in an hour's section, before
// it in a day's rollup).
func parseKeyedDir(b []byte) (k *keyed, comp []uint64, rest []byte, err error) {
	d := decoder{b: b}
	nb := d.count(4)
	k = &keyed{first: make([]uint32, nb), nkeys: make([]uint32, nb), raw: make([]uint32, nb), off: make([]int, nb+1)}
	var first uint64
	for i := 0; i < nb && d.err == nil; i++ {
		delta := d.uvarint()
		if i > 0 && delta == 0 {
			d.fail(errKeyed)
		}
		first += delta
		n, raw, c := d.uvarint(), d.uvarint(), d.uvarint()
		if first >= 1<<32 || n == 0 || n > raw || raw > maxBlockRaw {
			d.fail(errKeyed)
		}
		k.first[i], k.nkeys[i], k.raw[i] = uint32(first), uint32(n), uint32(raw)
		comp = append(comp, c)
	}
	if d.err != nil {
		return nil, nil, nil, d.err
	}
	k.dir = len(b) - len(d.b)
	return k, comp, d.b, nil
}

// setData places the blocks (compressed lengths comp) in data, which
// they must fill.
func (k *keyed) setData(comp []uint64, data []byte) error {
	k.data = data
	at := uint64(0)
	for i, c := range comp {
		k.off[i] = int(at)
		if c > uint64(len(k.data)) {
			return errKeyed
		}
		at += c
		if at > uint64(len(k.data)) {
			return errKeyed
		}
	}
	k.off[len(comp)] = int(at)
	if at != uint64(len(k.data)) {
		return errKeyed
	}
	k.dec = make([]*block, len(comp))
	return nil
}

// block decodes block i (once; later calls return it).
func (k *keyed) block(i int, dec *zstd.Decoder) (*block, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if bl := k.dec[i]; bl != nil {
		return bl, nil
	}
	bl, err := k.decode(i, dec, nil)
	if err != nil {
		if k.bad == nil {
			k.bad = err
		}
		return nil, k.bad
	}
	k.dec[i] = bl
	return bl, nil
}

// decode decompresses and parses block i into buf's memory, keeping
// nothing (the sealer merging a day's hours reads each block once).
func (k *keyed) decode(i int, dec *zstd.Decoder, buf []byte) (*block, error) {
	raw, err := decodeSized(dec, k.data[k.off[i]:k.off[i+1]], uint64(k.raw[i]), buf)
	var bl *block
	if err == nil {
		bl, err = parseBlock(raw, k.first[i], int(k.nkeys[i]))
	}
	if err != nil {
		return nil, fmt.Errorf("block %d: %w", i, err)
	}
	return bl, nil
}

func parseBlock(raw []byte, first uint32, n int) (*block, error) {
	d := decoder{b: raw}
	bl := &block{keys: make([]uint32, n), off: make([]uint32, n), end: make([]uint32, n), raw: raw}
	key := uint64(first)
	for i := 0; i < n && d.err == nil; i++ {
		delta := d.uvarint()
		if (i == 0) != (delta == 0) {
			d.fail(errKeyed)
		}
		key += delta
		l := d.uvarint()
		if key >= 1<<32 || l > uint64(len(d.b)) {
			d.fail(errKeyed)
			break
		}
		at := uint32(len(raw) - len(d.b))
		bl.keys[i], bl.off[i], bl.end[i] = uint32(key), at, at+uint32(l)
		d.b = d.b[l:]
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.b) != 0 {
		return nil, errTrailing
	}
	return bl, nil
}

// get returns key's payload; nil when none (or when its block does not
// decode: the error says so).
func (k *keyed) get(key uint32, dec *zstd.Decoder) ([]byte, error) {
	i := sort.Search(len(k.first), func(i int) bool { return k.first[i] > key }) - 1
	if i < 0 {
		return nil, nil
	}
	bl, err := k.block(i, dec)
	if err != nil {
		return nil, err
	}
	j, ok := slices.BinarySearch(bl.keys, key)
	if !ok {
		return nil, nil
	}
	return bl.raw[bl.off[j]:bl.end[j]], nil
}

// eachSorted calls fn with the payload of each of keys (sorted) found,
// and its index in keys: one block look-up per block, not per key (reach
// looks up a thousand authors in each partition). It stops at the first
// block that does not decode and returns its error.
func (k *keyed) eachSorted(keys []uint32, dec *zstd.Decoder, fn func(i int, payload []byte)) error {
	bi, pos := -1, 0
	var bl *block
	for i, key := range keys {
		if len(k.first) == 0 || key < k.first[0] {
			continue
		}
		next := bi
		for next+1 < len(k.first) && k.first[next+1] <= key {
			next++
		}
		if next != bi {
			var err error
			if bl, err = k.block(next, dec); err != nil {
				return err
			}
			bi, pos = next, 0
		}
		// Galloping from the last key found: the next is usually near.
		hi := 1
		for pos+hi < len(bl.keys) && bl.keys[pos+hi] < key {
			hi *= 2
		}
		j, ok := slices.BinarySearch(bl.keys[pos:min(pos+hi+1, len(bl.keys))], key)
		pos += j
		if ok {
			fn(i, bl.raw[bl.off[pos]:bl.end[pos]])
		}
	}
	return nil
}

// rawBlocks decodes every block and returns their raw bytes (verify
// compares them with the blocks the Accesses make).
func (k *keyed) rawBlocks(dec *zstd.Decoder) ([][]byte, error) {
	out := make([][]byte, len(k.first))
	for i := range out {
		bl, err := k.block(i, dec)
		if err != nil {
			return nil, err
		}
		out[i] = bl.raw
	}
	return out, nil
}
