package trace

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/bits"
)

// scanJSON reads b as any run of JSON values: one document (an array or an
// object dump), NDJSON, Elasticsearch bulk (action and document lines),
// elasticdump ({"_source": {...}} lines), MongoDB extended JSON
// ({"$numberLong": "7"} read as 7). Every object holding a field trace
// reads is a record, at any depth. Leniently: commas and brackets between
// top-level values are skipped, so a chunk cut at a line boundary of an
// array printed one record per line reads alike; a malformed value is
// skipped to the next line and counted in bad.
func scanJSON(b []byte, emit func(*Record)) (bad int) {
	s := jsonScanner{b: b}
	for {
		for s.i < len(b) {
			c := b[s.i]
			if c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == ',' || c == '[' || c == ']' {
				s.i++
				continue
			}
			break
		}
		if s.i >= len(b) {
			return bad
		}
		var err error
		start := s.i
		if b[s.i] == '{' {
			_, err = s.object(0)
		} else {
			err = s.value(0, fNone, nil)
		}
		if err == nil {
			for i := range s.pending {
				emit(&s.pending[i])
			}
		}
		s.pending = s.pending[:0]
		if err != nil {
			// Resume on the next line: a document cut into chunks (or
			// one whose wrapper this cannot read) is read record by
			// record from the lines that open one.
			bad++
			if k := bytes.IndexByte(b[start:], '\n'); k >= 0 {
				s.i = start + k + 1
			} else {
				return bad
			}
		}
	}
}

type jsonScanner struct {
	b []byte
	i int
	// pending are the records of the top-level value being read: emitted
	// once it reads whole, dropped when it does not (its records are then
	// read again from the lines that open them).
	pending []Record
	wrap    []byte // the scalar of the last $-member read
}

// fWrap is the kind of a $-member of a MongoDB extended-JSON wrapper.
const fWrap = -1

var errJSON = errors.New("malformed JSON")

const maxJSONDepth = 128

func (s *jsonScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\n', '\r', '\t':
			s.i++
		default:
			return
		}
	}
}

// str reads a string at s.i ('"'); raw is its bytes between the quotes.
// With want, esc says whether it holds escapes; without (a key, a value
// nobody reads) esc may miss one not before a quote: the string is not
// scanned a second time for backslashes (a bio is most of a record).
func (s *jsonScanner) str(want bool) (raw []byte, esc bool, err error) {
	start := s.i + 1
	b := s.b
	// Most strings are short (keys, ids, names, e-mails): their first 24
	// bytes are searched 8 at a time for a quote or a backslash in
	// registers, cheaper than a call of IndexByte per string; escapes met
	// there are stepped over. A longer string goes on with IndexByte.
	j := start
	for end := min(len(b), start+24); j+8 <= end; {
		v := binary.LittleEndian.Uint64(b[j:])
		hit := zeroByte(v^quotes) | zeroByte(v^backslashes)
		if hit == 0 {
			j += 8
			continue
		}
		k := j + bits.TrailingZeros64(hit)/8
		if b[k] == '"' {
			s.i = k + 1
			return b[start:k], esc, nil
		}
		esc, j = true, k+2
	}
	for {
		if j > len(b) {
			return nil, false, errJSON
		}
		k := bytes.IndexByte(s.b[j:], '"')
		if k < 0 {
			return nil, false, errJSON
		}
		j += k
		// Count the backslashes before the quote.
		n := 0
		for m := j - 1; m >= start && s.b[m] == '\\'; m-- {
			n++
		}
		if n > 0 {
			esc = true
		}
		if n%2 == 0 {
			break
		}
		j++
	}
	if want && !esc && bytes.IndexByte(s.b[start:j], '\\') >= 0 {
		esc = true
	}
	s.i = j + 1
	return s.b[start:j], esc, nil
}

const (
	quotes      = 0x2222222222222222 // '"' in every byte
	backslashes = 0x5c5c5c5c5c5c5c5c // '\\' in every byte
)

// zeroByte has the high bit of the lowest zero byte of v set (and maybe of
// bytes above it, never below): the first match in little-endian order.
func zeroByte(v uint64) uint64 {
	return (v - 0x0101010101010101) &^ v & 0x8080808080808080
}

func unescape(raw []byte) []byte {
	q := make([]byte, 0, len(raw)+2)
	q = append(append(append(q, '"'), raw...), '"')
	var v string
	if json.Unmarshal(q, &v) != nil {
		return raw
	}
	return []byte(v)
}

// object reads an object at s.i, emits it when it holds a field, and
// returns the scalar of a MongoDB extended-JSON wrapper ({"$numberLong":
// "7"}), nil for any other object.
func (s *jsonScanner) object(depth int) (scalar []byte, err error) {
	if depth > maxJSONDepth {
		return nil, errJSON
	}
	s.i++ // '{'
	var rec Record
	wrapper, members := true, 0
	for {
		s.ws()
		if s.i >= len(s.b) {
			return nil, errJSON
		}
		if s.b[s.i] == '}' {
			s.i++
			break
		}
		if members > 0 {
			if s.b[s.i] != ',' {
				return nil, errJSON
			}
			s.i++
			s.ws()
		}
		if s.i >= len(s.b) || s.b[s.i] != '"' {
			return nil, errJSON
		}
		key, _, err := s.str(false)
		if err != nil {
			return nil, err
		}
		members++
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return nil, errJSON
		}
		s.i++
		s.ws()
		if len(key) == 0 || key[0] != '$' {
			wrapper = false
		}
		kind := fieldOf(key)
		if len(key) > 0 && key[0] == '$' {
			kind, s.wrap = fWrap, nil
		}
		if err := s.value(depth, kind, &rec); err != nil {
			return nil, err
		}
		if kind == fWrap && members == 1 {
			scalar = s.wrap
		}
	}
	if wrapper && members == 1 {
		return scalar, nil
	}
	if !rec.empty() {
		s.pending = append(s.pending, rec)
	}
	return nil, nil
}

// value reads one value; a scalar goes to rec as kind.
func (s *jsonScanner) value(depth, kind int, rec *Record) error {
	if s.i >= len(s.b) {
		return errJSON
	}
	switch c := s.b[s.i]; {
	case c == '"':
		want := rec != nil && kind != fNone
		raw, esc, err := s.str(want)
		if err != nil {
			return err
		}
		if want {
			if esc {
				raw = unescape(raw)
			}
			s.put(kind, raw, rec)
		}
	case c == '{':
		sc, err := s.object(depth + 1)
		if err != nil {
			return err
		}
		if sc != nil && rec != nil {
			rec.set(kind, sc)
		}
	case c == '[':
		s.i++
		for n := 0; ; n++ {
			s.ws()
			if s.i >= len(s.b) {
				return errJSON
			}
			if s.b[s.i] == ']' {
				s.i++
				return nil
			}
			if n > 0 {
				if s.b[s.i] != ',' {
					return errJSON
				}
				s.i++
				s.ws()
			}
			if err := s.value(depth+1, fNone, nil); err != nil {
				return err
			}
		}
	default:
		start := s.i
		for s.i < len(s.b) {
			c := s.b[s.i]
			if c == ',' || c == '}' || c == ']' || c == ' ' || c == '\n' || c == '\r' || c == '\t' {
				break
			}
			s.i++
		}
		if s.i == start {
			return errJSON
		}
		if rec != nil && (c == '-' || c >= '0' && c <= '9') {
			s.put(kind, s.b[start:s.i], rec)
		}
	}
	return nil
}

// put sets a scalar of a member named kind; a $-member's goes to s.wrap.
func (s *jsonScanner) put(kind int, v []byte, rec *Record) {
	if kind == fWrap {
		s.wrap = v
		return
	}
	rec.set(kind, v)
}
