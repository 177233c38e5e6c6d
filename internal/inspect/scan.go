package inspect

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// maxDepth bounds nesting, so hostile input cannot exhaust the stack.
const maxDepth = 256

// ErrMalformed is wrapped by Inspect when the answer is not valid JSON.
var ErrMalformed = errors.New("malformed JSON")

// ref is a [start, end) range in Result.idbuf; start < 0 means none.
type ref struct{ start, end int32 }

// span is a class field's value in the body.
type span struct {
	start, end int32
	rec        int32
	class      uint8
	field      uint8
}

type recState struct {
	path    int32 // record path index
	obj     int32 // offset of '{' when the record is an object, else -1
	empty   bool  // the object has no members
	id      ref
	classes ClassSet
	masked  ClassSet
	rules   uint64   // bits index Result.rules
	spans   [2]int32 // the record's spans are within spans[0:1] of Result.spans
}

// Result is one inspected answer. Reuse it with Reset; it is not safe for
// concurrent use.
type Result struct {
	route    *Route
	body     []byte
	recs     []recState
	open     []int32
	spans    []span
	authors  []ref
	links    []ref
	idbuf    []byte
	rules    []string
	ruleJSON [][]byte
	qid      []byte
	edits    []edit
	errAt    int
	errMsg   string
}

// Reset empties r for another answer, keeping its memory.
func (r *Result) Reset() {
	*r = Result{recs: r.recs[:0], open: r.open[:0], spans: r.spans[:0],
		authors: r.authors[:0], links: r.links[:0], idbuf: r.idbuf[:0], rules: r.rules[:0], ruleJSON: r.ruleJSON[:0], edits: r.edits[:0], qid: r.qid[:0]}
}

// Route is the route the answer was inspected for.
func (r *Result) Route() *Route { return r.route }

// Len is the number of records found.
func (r *Result) Len() int { return len(r.recs) }

// ID returns record i's id as bytes of r (valid until Reset); nil if none.
func (r *Result) ID(i int) []byte {
	x := r.recs[i].id
	if x.start < 0 {
		return nil
	}
	return r.idbuf[x.start:x.end]
}

// Classes returns the classes present in record i.
func (r *Result) Classes(i int) ClassSet { return r.recs[i].classes }

// Masked returns the classes masked in record i so far.
func (r *Result) Masked(i int) ClassSet { return r.recs[i].masked }

// NumLinks is the number of linked ids; Link returns one (valid until Reset).
func (r *Result) NumLinks() int       { return len(r.links) }
func (r *Result) Link(i int) []byte   { x := r.links[i]; return r.idbuf[x.start:x.end] }
func (r *Result) NumAuthors() int     { return len(r.authors) }
func (r *Result) Author(i int) []byte { x := r.authors[i]; return r.idbuf[x.start:x.end] }

// Inspect scans body (decoded JSON) once for the route's records, classes,
// authors and links. It keeps body for Rewrite. Errors wrap ErrMalformed.
func (r *Result) Inspect(rt *Route, body []byte) error {
	r.route, r.body = rt, body
	s := scanner{r: r, b: body}
	i, err := s.value(rt.root, skipWS(body, 0), 0)
	if err == nil {
		i = skipWS(body, i)
		if i != len(body) {
			err = s.fail(i, "data after the top-level value")
		}
	}
	if err != nil {
		return fmt.Errorf("%w at byte %d: %s", ErrMalformed, r.errAt, r.errMsg)
	}
	return nil
}

type scanner struct {
	r *Result
	b []byte
}

var errScan = errors.New("scan")

func (s *scanner) fail(i int, msg string) error {
	s.r.errAt, s.r.errMsg = i, msg
	return errScan
}

var wsTab = [256]bool{' ': true, '\t': true, '\n': true, '\r': true}

// strSafe marks bytes that may appear in a string without a closer look.
var strSafe = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func skipWS(b []byte, i int) int {
	for i < len(b) && wsTab[b[i]] {
		i++
	}
	return i
}

// value scans the value at b[i] (no leading space) at trie node n (nil when
// no path reaches it) and returns the offset after it.
func (s *scanner) value(n *node, i, depth int) (int, error) {
	b := s.b
	if i >= len(b) {
		return i, s.fail(i, "unexpected end")
	}
	if n == nil {
		return s.skip(i, depth)
	}
	start := i
	rec := int32(-1)
	if n.rec >= 0 {
		rec = int32(len(s.r.recs))
		obj := int32(-1)
		if b[i] == '{' {
			obj = int32(i)
		}
		sp := int32(len(s.r.spans))
		s.r.recs = append(s.r.recs, recState{path: int32(n.rec), obj: obj, id: ref{-1, -1}, spans: [2]int32{sp, sp}})
		s.r.open = append(s.r.open, rec)
	}
	var err error
	switch b[i] {
	case '{':
		i, err = s.object(n, i, depth+1)
	case '[':
		i, err = s.array(n, i, depth+1)
	default:
		i, err = s.scalar(i)
	}
	if err != nil {
		return i, err
	}
	if len(n.acts) > 0 {
		s.act(n, start, i)
	}
	if rec >= 0 {
		s.r.open = s.r.open[:len(s.r.open)-1]
		r := &s.r.recs[rec]
		r.spans[1] = int32(len(s.r.spans))
		if r.obj >= 0 {
			r.empty = b[skipWS(b, int(r.obj)+1)] == '}'
		}
	}
	return i, nil
}

func (s *scanner) object(n *node, i, depth int) (int, error) {
	b := s.b
	if depth > maxDepth {
		return i, s.fail(i, "nested too deep")
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return i, s.fail(i, "expected a member name")
		}
		ks := i + 1
		e, ok := scanString(b, i)
		if !ok {
			return e, s.fail(e, "bad string")
		}
		var kid *node
		if n != nil {
			key := b[ks : e-1]
			for j, k := range n.keys {
				if string(key) == k {
					kid = n.kids[j]
					break
				}
			}
		}
		i = skipWS(b, e)
		if i >= len(b) || b[i] != ':' {
			return i, s.fail(i, "expected ':'")
		}
		var err error
		if i, err = s.value(kid, skipWS(b, i+1), depth); err != nil {
			return i, err
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return i, s.fail(i, "unexpected end in object")
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			return i + 1, nil
		default:
			return i, s.fail(i, "expected ',' or '}'")
		}
	}
}

func (s *scanner) array(n *node, i, depth int) (int, error) {
	b := s.b
	if depth > maxDepth {
		return i, s.fail(i, "nested too deep")
	}
	var kid *node
	if n != nil {
		kid = n.elem
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1, nil
	}
	for {
		var err error
		if i, err = s.value(kid, i, depth); err != nil {
			return i, err
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return i, s.fail(i, "unexpected end in array")
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case ']':
			return i + 1, nil
		default:
			return i, s.fail(i, "expected ',' or ']'")
		}
	}
}

// skip scans a value no path reaches: structure and strings only.
func (s *scanner) skip(i, depth int) (int, error) {
	b := s.b
	switch b[i] {
	case '{':
		return s.object(nil, i, depth+1)
	case '[':
		return s.array(nil, i, depth+1)
	}
	return s.scalar(i)
}

func (s *scanner) scalar(i int) (int, error) {
	b := s.b
	switch c := b[i]; c {
	case '"':
		e, ok := scanString(b, i)
		if !ok {
			return e, s.fail(e, "bad string")
		}
		return e, nil
	case 't':
		return s.lit(i, "true")
	case 'f':
		return s.lit(i, "false")
	case 'n':
		return s.lit(i, "null")
	default:
		e, ok := scanNumber(b, i)
		if !ok {
			return e, s.fail(e, "bad value")
		}
		return e, nil
	}
}

func (s *scanner) lit(i int, w string) (int, error) {
	if len(s.b)-i < len(w) || string(s.b[i:i+len(w)]) != w {
		return i, s.fail(i, "bad literal")
	}
	return i + len(w), nil
}

// scanString returns the offset after the string starting at b[i] ('"').
func scanString(b []byte, i int) (int, bool) {
	i++
	for {
		// Eight bytes at a time until one may be '"', '\\' or a control
		// character (the lowest flagged byte is exact).
		for i+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[i:])
			q := x ^ 0x2222222222222222
			e := x ^ 0x5c5c5c5c5c5c5c5c
			m := ((q - lo8) &^ q) | ((e - lo8) &^ e) | ((x - 0x2020202020202020) &^ x)
			if m &= hi8; m != 0 {
				i += bits.TrailingZeros64(m) / 8
				break
			}
			i += 8
		}
		for i < len(b) && strSafe[b[i]] {
			i++
		}
		if i >= len(b) {
			return i, false
		}
		switch b[i] {
		case '"':
			return i + 1, true
		case '\\':
			if i+1 >= len(b) {
				return i, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return i, false
				}
				i += 6
			default:
				return i, false
			}
		default: // a control character
			return i, false
		}
	}
}

const (
	lo8 = 0x0101010101010101
	hi8 = 0x8080808080808080
)

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// scanNumber checks JSON's number grammar.
func scanNumber(b []byte, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return i, false
	case b[i] == '0':
		i++
	case isDigit(b[i]):
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return i, false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return i, false
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	return i, true
}

// act records what the route wants of the value b[start:end].
func (s *scanner) act(n *node, start, end int) {
	r := s.r
	b := s.b
	for _, a := range n.acts {
		if a.kind == actClass {
			ri := s.openRec(a.rec)
			if ri < 0 {
				continue
			}
			r.spans = append(r.spans, span{start: int32(start), end: int32(end), rec: ri, class: uint8(a.class), field: uint8(a.field)})
			if present(b[start:end]) {
				r.recs[ri].classes |= 1 << uint(a.class)
			}
			continue
		}
		v, ok := scalarID(b[start:end])
		if !ok {
			continue
		}
		x := ref{int32(len(r.idbuf)), int32(len(r.idbuf) + len(v))}
		r.idbuf = append(r.idbuf, v...)
		switch a.kind {
		case actID:
			if ri := s.openRec(a.rec); ri >= 0 {
				r.recs[ri].id = x
			}
		case actAuthor:
			r.authors = append(r.authors, x)
		case actLink:
			r.links = append(r.links, x)
		}
	}
}

// openRec finds the innermost open record of record path p.
func (s *scanner) openRec(p int) int32 {
	for j := len(s.r.open) - 1; j >= 0; j-- {
		if ri := s.r.open[j]; s.r.recs[ri].path == int32(p) {
			return ri
		}
	}
	return -1
}

// present reports whether a field's value carries data: not null, "", [] or {}.
func present(v []byte) bool {
	switch len(v) {
	case 4:
		return string(v) != "null"
	case 2:
		return v[0] != '"' && v[0] != '[' && v[0] != '{'
	}
	return len(v) > 0
}

// scalarID returns a string's raw content or a number's text as an id.
func scalarID(v []byte) ([]byte, bool) {
	if len(v) >= 2 && v[0] == '"' {
		return v[1 : len(v)-1], len(v) > 2
	}
	if len(v) > 0 && (v[0] == '-' || isDigit(v[0])) {
		return v, true
	}
	return nil, false
}
