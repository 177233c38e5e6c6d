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
// reads is a record, at any depth. A record with no id of its own takes a
// numeric "_id" (a store's key holding the platform's id: mongoexport,
// elasticdump's beside "_source"; an ObjectId is no id), and a bulk
// document (an update's "doc" or "upsert") the "_id" of the action line
// before it. Leniently: commas and brackets between
// top-level values are skipped, so a chunk cut at a line boundary of an
// array printed one record per line reads alike; a malformed value is
// skipped to the next line and counted in bad.
func scanJSON(b []byte, emit func(*Record)) (bad int) {
	s := jsonScanner{b: b}
	i := 0
	for {
		for i < len(b) && jsonClass[b[i]]&cBetween != 0 {
			i++
		}
		if i >= len(b) {
			return bad
		}
		var err error
		start := i
		// A bulk action's _id, for this document only.
		s.carry, s.next, s.carryUpdate, s.nextUpdate, s.updated = s.next, nil, s.nextUpdate, false, false
		if b[i] == '{' {
			i, _, err = s.object(i, 0)
		} else {
			i, err = s.value(i, 0, fNone, nil)
		}
		if err == nil {
			for k := range s.pending {
				emit(&s.pending[k])
			}
		}
		s.pending = s.pending[:0]
		if err != nil {
			// Resume on the next line: a document cut into chunks (or
			// one whose wrapper this cannot read) is read record by
			// record from the lines that open one.
			bad++
			k := bytes.IndexByte(b[start:], '\n')
			if k < 0 {
				return bad
			}
			i = start + k + 1
		}
	}
}

// jsonScanner reads the values of b. Its methods take the offset to read
// at and return the one after what they read: an offset kept in a local
// stays in a register through a record's members, one in the struct is
// stored and loaded around every call.
type jsonScanner struct {
	b []byte
	// pending are the records of the top-level value being read: emitted
	// once it reads whole, dropped when it does not (its records are then
	// read again from the lines that open them).
	pending []Record
	wrap    []byte // the scalar of the last $-member read
	wrapNum bool   // that member is $numberLong or $numberInt (not $oid, $date)
	// next is the "_id" of a bulk action line ({"index": {"_id": "7"}}),
	// carry the one before the top-level value being read: its id when it
	// has none.
	next, carry []byte
	// nextUpdate, carryUpdate: that action is an update, whose document
	// holds the record in "doc" or "upsert" (an index's "doc" member is
	// its document's own); updated: the carry went to them, not to the
	// document around them.
	nextUpdate, carryUpdate, updated bool
}

// fWrap is the kind of a $-member of a MongoDB extended-JSON wrapper.
const fWrap = -1

var errJSON = errors.New("malformed JSON")

const maxJSONDepth = 128

// Byte classes, so a test for several bytes is one load.
const (
	cSpace   = 1 << iota // JSON whitespace
	cBetween             // skipped between top-level values: space , [ ]
	cEnd                 // ends a number or literal: space , } ]
)

var jsonClass = func() (t [256]uint8) {
	for _, c := range []byte(" \t\r\n") {
		t[c] = cSpace | cBetween | cEnd
	}
	t[','] = cBetween | cEnd
	t['['] = cBetween
	t[']'] = cBetween | cEnd
	t['}'] = cEnd
	return t
}()

func skipSpace(b []byte, i int) int {
	for i < len(b) && jsonClass[b[i]]&cSpace != 0 {
		i++
	}
	return i
}

// strEnd finds the closing quote of the string whose bytes begin at
// start. With want, esc says whether the string holds escapes; without (a
// key, a value nobody reads) esc may miss one not before a quote: the
// string is not scanned a second time for backslashes (a bio is most of a
// record). end is -1 when the string does not close.
func strEnd(b []byte, start int, want bool) (end int, esc bool) {
	// Most strings are short (keys, ids, names, e-mails): their first 32
	// bytes are searched 8 at a time for a quote or a backslash in
	// registers, cheaper than a call of IndexByte per string; escapes met
	// there are stepped over. A longer string goes on with IndexByte.
	j := start
	for j+8 <= len(b) && j < start+32 {
		v := binary.LittleEndian.Uint64(b[j:])
		hit := zeroByte(v^quotes) | zeroByte(v^backslashes)
		if hit == 0 {
			j += 8
			continue
		}
		k := j + bits.TrailingZeros64(hit)/8
		if b[k] == '"' {
			return k, esc
		}
		esc, j = true, k+2
	}
	for {
		if j > len(b) {
			return -1, false
		}
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return -1, false
		}
		j += k
		// Count the backslashes before the quote.
		n := 0
		for m := j - 1; m >= start && b[m] == '\\'; m-- {
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
	if want && !esc && bytes.IndexByte(b[start:j], '\\') >= 0 {
		esc = true
	}
	return j, esc
}

// The known names as they start a member, little-endian: id":, email":,
// phone": and username (its quote and ':' tested apart).
const (
	idKey       = 0x3a226469
	emailKey    = 0x3a226c69616d65
	phoneKey    = 0x3a22656e6f6870
	usernameKey = 0x656d616e72657375
)

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

// object reads an object at b[i] ('{'), keeps it as a record when it holds
// a field, and returns the scalar of a MongoDB extended-JSON wrapper
// ({"$numberLong": "7"}), nil for any other object. A member whose value
// is a string (most of them) is read here; others go to value.
func (s *jsonScanner) object(i, depth int) (next int, scalar []byte, err error) {
	if depth > maxJSONDepth {
		return i, nil, errJSON
	}
	b := s.b
	i++ // '{'
	var rec Record
	wrapper, members, src := true, 0, -1 // src: the record of "_source"'s object
	for {
		if i < len(b) && jsonClass[b[i]]&cSpace != 0 {
			i = skipSpace(b, i)
		}
		if i >= len(b) {
			return i, nil, errJSON
		}
		c := b[i]
		if c == '}' {
			i++
			break
		}
		if members > 0 {
			if c != ',' {
				return i, nil, errJSON
			}
			i = skipSpace(b, i+1)
			if i >= len(b) {
				return i, nil, errJSON
			}
			c = b[i]
		}
		if c != '"' {
			return i, nil, errJSON
		}
		members++
		kind, end := fNone, -1
		// The names of the fields themselves, closing quote and ':'
		// included, told by one load and a compare, before any search.
		if i+11 <= len(b) {
			v := binary.LittleEndian.Uint64(b[i+1:])
			switch byte(v) { // the first letter, then the rest
			case 'i':
				if v&0xffffffff == idKey {
					kind, end = fID, i+3
				}
			case 'e':
				if v&0xffffffffffffff == emailKey {
					kind, end = fEmail, i+6
				}
			case 'p':
				if v&0xffffffffffffff == phoneKey {
					kind, end = fPhone, i+6
				}
			case 'u':
				if v == usernameKey && b[i+9] == '"' && b[i+10] == ':' {
					kind, end = fUsername, i+9
				}
			}
		}
		if end > 0 {
			wrapper = false
			i = end + 2
		} else {
			end = strEndFast(b, i+1)
			if end < 0 {
				if end, _ = strEnd(b, i+1, false); end < 0 {
					return i, nil, errJSON
				}
			}
			key := b[i+1 : end]
			i = end + 1
			if i < len(b) && b[i] != ':' {
				i = skipSpace(b, i)
			}
			if i >= len(b) || b[i] != ':' {
				return i, nil, errJSON
			}
			i++
			kind = fWrap
			if len(key) == 0 || key[0] != '$' {
				wrapper = false
				kind = fieldOfKey(key)
				// A store's member: "_id", or an object's value (most
				// other values are strings, passed over here).
				if kind == fNone && len(key) > 0 && (key[0] == '_' || i < len(b) && b[i] != '"') {
					var done bool
					if kind, i, done, err = s.storeMember(key, i, depth, members, &src); err != nil {
						return i, nil, err
					}
					if done {
						continue
					}
				}
			} else {
				s.wrap = nil
				s.wrapNum = string(key) == "$numberLong" || string(key) == "$numberInt"
			}
		}
		if i < len(b) && jsonClass[b[i]]&cSpace != 0 {
			i = skipSpace(b, i)
		}
		if i < len(b) && b[i] == '"' {
			want := kind != fNone
			end, esc := strEndFast(b, i+1), false
			if end < 0 {
				if end, esc = strEnd(b, i+1, want); end < 0 {
					return i, nil, errJSON
				}
			}
			if want {
				v := b[i+1 : end]
				if esc {
					v = unescape(v)
				}
				s.put(kind, v, &rec)
			}
			i = end + 1
		} else if i, err = s.value(i, depth, kind, &rec); err != nil {
			return i, nil, err
		}
		if kind == fWrap && members == 1 {
			scalar = s.wrap
		}
	}
	if wrapper && members == 1 {
		return i, scalar, nil
	}
	if rec.storeID != nil && src >= 0 { // elasticdump: the _id is its _source's
		if s.pending[src].ID == nil {
			s.pending[src].ID = rec.storeID
		}
		rec.storeID = nil
	}
	if rec.ID == nil {
		if rec.storeID != nil {
			rec.ID = rec.storeID
		} else if depth == 0 && s.carry != nil && !s.updated {
			rec.ID = s.carry
		}
	}
	if !rec.empty() {
		s.pending = append(s.pending, rec)
	}
	return i, nil, nil
}

// value reads one value at b[i]; a scalar goes to rec as kind.
func (s *jsonScanner) value(i, depth, kind int, rec *Record) (next int, err error) {
	b := s.b
	if i >= len(b) {
		return i, errJSON
	}
	switch c := b[i]; {
	case c == '"':
		want := rec != nil && kind != fNone
		end, esc := strEnd(b, i+1, want)
		if end < 0 {
			return i, errJSON
		}
		if want {
			v := b[i+1 : end]
			if esc {
				v = unescape(v)
			}
			s.put(kind, v, rec)
		}
		return end + 1, nil
	case c == '{':
		var sc []byte
		if i, sc, err = s.object(i, depth+1); err != nil {
			return i, err
		}
		if sc != nil && rec != nil && (kind != fStoreID || s.wrapNum) {
			rec.set(kind, sc)
		}
		return i, nil
	case c == '[':
		// Bounded like objects: arrays nested without end would
		// otherwise recurse as deep as the chunk is long.
		if depth > maxJSONDepth {
			return i, errJSON
		}
		i++
		for n := 0; ; n++ {
			i = skipSpace(b, i)
			if i >= len(b) {
				return i, errJSON
			}
			if b[i] == ']' {
				return i + 1, nil
			}
			if n > 0 {
				if b[i] != ',' {
					return i, errJSON
				}
				i = skipSpace(b, i+1)
			}
			if i, err = s.value(i, depth+1, fNone, nil); err != nil {
				return i, err
			}
		}
	default:
		start := i
		for i < len(b) && jsonClass[b[i]]&cEnd == 0 {
			i++
		}
		if i == start {
			return i, errJSON
		}
		if rec != nil && (c == '-' || c >= '0' && c <= '9') {
			s.put(kind, b[start:i], rec)
		}
		return i, nil
	}
}

// put sets a scalar of a member named kind; a $-member's goes to s.wrap.
func (s *jsonScanner) put(kind int, v []byte, rec *Record) {
	if kind == fWrap {
		s.wrap = v
		return
	}
	rec.set(kind, v)
}

// strEndFast returns the closing quote of a string whose bytes begin at j
// when it has no backslash before it in its first 32 bytes, else -1.
// Small enough to be inlined: a call spills the caller's registers.
func strEndFast(b []byte, j int) int {
	for end := min(j+24, len(b)-8); j <= end; j += 8 {
		v := binary.LittleEndian.Uint64(b[j:])
		x, y := v^quotes, v^backslashes
		if hit := ((x-0x0101010101010101)&^x | (y-0x0101010101010101)&^y) & 0x8080808080808080; hit != 0 {
			j += bits.TrailingZeros64(hit) / 8
			if b[j] == '"' {
				return j
			}
			break
		}
	}
	return -1
}

// storeMember reads a member trace names no field for when it is a
// store's: "_id" is fStoreID (read by the caller); "_source"'s object
// (elasticdump) is read here and its record's index put in src, to take
// the "_id" beside it; a bulk action's object ({"index": {"_id": ...}},
// the first member of a top-level value) is read here, is no record, and
// its "_id" is the next document's (an update's: the record of its "doc"
// or "upsert"). done says the value was read.
func (s *jsonScanner) storeMember(key []byte, i, depth, members int, src *int) (kind, next int, done bool, err error) {
	b := s.b
	if key[0] == '_' && string(key) == "_id" {
		return fStoreID, i, false, nil
	}
	if i < len(b) && jsonClass[b[i]]&cSpace != 0 {
		i = skipSpace(b, i)
	}
	if i >= len(b) || b[i] != '{' {
		return fNone, i, false, nil
	}
	action := depth == 0 && members == 1 && (string(key) == "index" || string(key) == "create" || string(key) == "update" || string(key) == "delete")
	// An update's document holds the record in "doc" or "upsert": they
	// take the action's _id, as an index's document does.
	update := depth == 0 && s.carryUpdate && (string(key) == "doc" || string(key) == "upsert")
	if !action && !update && string(key) != "_source" {
		return fNone, i, false, nil
	}
	n := len(s.pending)
	if next, err = s.value(i, depth, fNone, nil); err != nil || len(s.pending) == n {
		return fNone, next, true, err
	}
	if update {
		if r := &s.pending[len(s.pending)-1]; r.ID == nil {
			r.ID = s.carry
		}
		s.updated = true
		return fNone, next, true, nil
	}
	if !action {
		*src = len(s.pending) - 1
		return fNone, next, true, nil
	}
	if key[0] != 'd' { // index, create, update: a document follows
		s.next, s.nextUpdate = s.pending[len(s.pending)-1].ID, key[0] == 'u'
	}
	s.pending = s.pending[:n]
	return fNone, next, true, nil
}
