package inspect

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
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
	present    bool // present(value), for Rewrite
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
	cur      []int32 // per record path, its open record (paths do not nest in themselves)
	spans    []span
	authors  []ref
	links    []ref
	idbuf    []byte
	rules    []string
	ruleJSON [][]byte
	qid      []byte
	stack    []frame
	edits    []edit
	ins      []insertion // values to insert before records
	insbuf   []byte
	insScan  *Result // InsertedLinks' scratch, kept across Reset
	name     []byte  // a member name with escapes, decoded (scanner.kid)
	errAt    int
	errMsg   string
}

// Reset empties r for another answer, keeping its memory.
func (r *Result) Reset() {
	*r = Result{recs: r.recs[:0], cur: r.cur[:0], spans: r.spans[:0],
		authors: r.authors[:0], links: r.links[:0], idbuf: r.idbuf[:0], rules: r.rules[:0], ruleJSON: r.ruleJSON[:0], edits: r.edits[:0], qid: r.qid[:0], stack: r.stack[:0],
		ins: r.ins[:0], insbuf: r.insbuf[:0], insScan: r.insScan, name: r.name[:0]}
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
	r.cur = r.cur[:0]
	for range rt.nrec {
		r.cur = append(r.cur, -1)
	}
	s := scanner{r: r, b: body}
	i, err := s.scan(rt.root, skipWS(body, 0))
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

// frame is an open object or array.
type frame struct {
	n     *node // the container's node; noNode when no path reaches it
	rec   int32 // record opened at this container, -1
	start int32 // offset of its '{' or '['
	arr   bool
}

// scan walks the value at b[i] and everything in it in one loop (no
// recursion: the nesting is an explicit stack bounded by maxDepth) and
// returns the offset after it. The innermost container's node and kind are
// kept in locals (topN, topArr) so the per-token path does not load the
// frame; whitespace is skipped only when the next byte may be some, as
// compact JSON has none. Short strings, integers and known member names are
// handled inline: Go keeps no register across a call, so every call here
// costs a reload of the loop's state.
func (s *scanner) scan(root *node, i int) (int, error) {
	if i >= len(s.b) || s.b[i] != '{' && s.b[i] != '[' {
		// A scalar answer: handled apart, so that in the loop every value
		// has a container around it.
		return s.scalar(root, i)
	}
	b := s.b
	r := s.r
	st := r.stack[:0]
	// The closure keeps st in memory; a plain local measured slower (one
	// more value for the register allocator to carry around the loop).
	defer func() { r.stack = st[:0] }()
	cur := root
	var (
		topN   *node
		topArr bool
		start  int
		rec    int32
		c      byte
		e      int
		ok     bool
		esc    bool
	)
value:
	if i >= len(b) {
		return i, s.fail(i, "unexpected end")
	}
	c = b[i]
valueC: // c is b[i]
	if c == '"' {
		if i+17 <= len(b) {
			// Fifteen bytes and the closing quote in two words.
			m := special(binary.LittleEndian.Uint64(b[i+1 : i+9]))
			n := special(binary.LittleEndian.Uint64(b[i+9 : i+17]))
			t := bits.TrailingZeros64(m)
			if m == 0 {
				t = 64 + bits.TrailingZeros64(n)
			}
			if e = i + 1 + t>>3; t < 128 && b[e] == '"' {
				e++
				goto str
			}
		}
		if e, esc, ok = scanString(b, i); !ok {
			return e, s.fail(e, "bad string")
		}
	str:
		if cur == nil {
			i = e
			goto after
		}
		start, i = i, e
		goto scalar
	}
	start = i
	switch c {
	case '{', '[':
		rec = -1
		if cur != nil && cur.rec >= 0 {
			rec = s.open(cur, i)
		}
		goto push
	case 't':
		if i, ok = lit(b, i, "true"); !ok {
			return i, s.fail(i, "bad literal")
		}
	case 'f':
		if i, ok = lit(b, i, "false"); !ok {
			return i, s.fail(i, "bad literal")
		}
	case 'n':
		if i, ok = lit(b, i, "null"); !ok {
			return i, s.fail(i, "bad literal")
		}
	default:
		// An integer not starting with 0 is taken here; anything else,
		// valid or not, goes to scanNumber.
		e = i
		if c == '-' {
			e++
		}
		if e < len(b) && b[e]-'1' < 9 {
			e++
			if e+8 <= len(b) {
				// The first byte that is not a digit, eight at a time.
				x := binary.LittleEndian.Uint64(b[e : e+8])
				if m := ((x + 0x4646464646464646) | (x - 0x3030303030303030)) & hi8; m != 0 {
					e += bits.TrailingZeros64(m) >> 3
					goto digits
				}
				e += 8
			}
			for e < len(b) && b[e]-'0' < 10 {
				e++
			}
		digits:
			if e >= len(b) || b[e] != '.' && b[e]|0x20 != 'e' {
				i = e
				break
			}
		}
		if e, ok = scanNumber(b, i); !ok {
			return e, s.fail(e, "bad value")
		}
		i = e
	}
	if cur == nil {
		goto after
	}

scalar: // the scalar b[start:i] reached node cur
	if cur.rec < 0 {
		// What act does, inline: a call would cost a reload of the loop's
		// state, and fields and ids are most of the values recorded.
		if len(cur.cls) > 0 {
			p := present(b[start:i])
			for k := range cur.cls {
				a := &cur.cls[k]
				if ri := r.cur[a.rec]; ri >= 0 {
					r.spans = append(r.spans, span{start: int32(start), end: int32(i), rec: ri, class: a.class, field: a.field, present: p})
					if p {
						r.recs[ri].classes |= 1 << a.class
					}
				}
			}
		}
		if len(cur.ids) > 0 {
			if id, ok := scalarID(b[start:i]); ok {
				x := ref{int32(len(r.idbuf)), int32(len(r.idbuf) + len(id))} // one copy for every action
				if esc && b[start] == '"' {
					// A string with an escape is the id it spells. esc is
					// what scanString said of the last string it scanned:
					// one taken by the word compares above has no escape,
					// whatever esc still says (unescape then copies it as
					// it is), and clearing esc there cost every value.
					r.idbuf = unescape(r.idbuf, id)
					x.end = int32(len(r.idbuf))
				} else {
					r.idbuf = append(r.idbuf, id...)
				}
				for k := range cur.ids {
					switch a := &cur.ids[k]; a.kind {
					case actID:
						if ri := r.cur[a.rec]; ri >= 0 {
							r.recs[ri].id = x
						}
					case actAuthor:
						r.authors = append(r.authors, x)
					case actLink:
						r.links = append(r.links, x)
					}
				}
			}
		}
		goto after
	}
	rec = s.open(cur, start)
	if len(cur.acts) > 0 {
		s.act(cur, start, i)
	}
	s.close(rec)
	goto after

push: // b[i] opens a container of node cur (may be nil) and record rec
	if len(st) >= maxDepth {
		return i, s.fail(i, "nested too deep")
	}
	topN, topArr = cur, c == '['
	if topN == nil {
		topN = noNode
	}
	st = append(st, frame{n: topN, rec: rec, start: int32(i), arr: topArr})
	i++
	if i < len(b) && b[i] <= ' ' {
		i = skipWS(b, i)
	}
	if topArr {
		if i < len(b) && b[i] == ']' {
			i++
			goto closed
		}
		if cur != nil {
			cur = cur.elem
		}
		goto value
	}
	if i < len(b) && b[i] == '}' {
		i++
		goto closed
	}
	goto key

closed: // the container on top of the stack ended at i
	{
		top := &st[len(st)-1]
		if len(top.n.acts) > 0 {
			s.act(top.n, int(top.start), i)
		}
		if top.rec >= 0 {
			s.close(top.rec)
		}
		st = st[:len(st)-1]
		if len(st) == 0 {
			return i, nil
		}
		top = &st[len(st)-1]
		topN, topArr = top.n, top.arr
	}

after: // a value ended at i, inside the container on top
	if i >= len(b) {
		return i, s.fail(i, "unexpected end")
	}
	if c = b[i]; c <= ' ' {
		if i = skipWS(b, i); i >= len(b) {
			return i, s.fail(i, "unexpected end")
		}
		c = b[i]
	}
	i++
	if c == ',' {
		if !topArr {
			if i < len(b) && b[i] == '"' {
				goto name
			}
			if i < len(b) && b[i] <= ' ' {
				i = skipWS(b, i)
			}
			goto key
		}
		if i < len(b) && b[i] <= ' ' {
			i = skipWS(b, i)
		}
		cur = topN.elem
		goto value
	}
	if topArr {
		if c == ']' {
			goto closed
		}
		return i - 1, s.fail(i-1, "expected ',' or ']'")
	}
	if c == '}' {
		goto closed
	}
	return i - 1, s.fail(i-1, "expected ',' or '}'")

key: // a member name at i, in the object on top
	if i >= len(b) || b[i] != '"' {
		return i, s.fail(i, "expected a member name")
	}
name: // b[i] is its opening quote
	cur = nil
	if i+17 <= len(b) {
		w := binary.LittleEndian.Uint64(b[i+1 : i+9])
		w2 := binary.LittleEndian.Uint64(b[i+9 : i+17])
		// A name the tree knows, closing quote included, is a valid
		// string: no need to scan it. Any other name is not in the tree.
		for kw := topN.first[byte(w)]; kw != nil; kw = kw.next {
			if w&kw.mask == kw.val && w2&kw.mask2 == kw.val2 && (kw.rest == "" || i+2+kw.n <= len(b) && string(b[i+17:i+2+kw.n]) == kw.rest) {
				cur = kw.kid
				e = i + 2 + kw.n
				goto colon
			}
		}
		m := special(w)
		n := special(w2)
		t := bits.TrailingZeros64(m)
		if m == 0 {
			t = 64 + bits.TrailingZeros64(n)
		}
		if e = i + 1 + t>>3; t < 128 && b[e] == '"' {
			e++
			goto colon
		}
		if e, esc, ok = scanString(b, i); !ok {
			return e, s.fail(e, "bad string")
		}
		// A name with an escape may yet be a known one, written so. A
		// name without is no known one: the words said so.
		if esc && len(topN.keys) > 0 {
			cur = s.kid(topN, b[i+1:e-1], true)
		}
		goto colon
	}
	// Too near the end for the word compares.
	if e, esc, ok = scanString(b, i); !ok {
		return e, s.fail(e, "bad string")
	}
	cur = s.kid(topN, b[i+1:e-1], esc)
colon:
	if e+1 < len(b) && b[e] == ':' && b[e+1] > ' ' { // compact
		i = e + 1
		c = b[i]
		goto valueC
	}
	i = e
	if i < len(b) && b[i] <= ' ' {
		i = skipWS(b, i)
	}
	if i >= len(b) || b[i] != ':' {
		return i, s.fail(i, "expected ':'")
	}
	i++
	if i < len(b) && b[i] <= ' ' {
		i = skipWS(b, i)
	}
	goto value
}

// scalar scans a top-level scalar at b[i] for node n.
func (s *scanner) scalar(n *node, i int) (int, error) {
	b := s.b
	if i >= len(b) {
		return i, s.fail(i, "unexpected end")
	}
	start := i
	var ok bool
	switch b[i] {
	case '"':
		if i, _, ok = scanString(b, i); !ok {
			return i, s.fail(i, "bad string")
		}
	case 't':
		if i, ok = lit(b, i, "true"); !ok {
			return i, s.fail(i, "bad literal")
		}
	case 'f':
		if i, ok = lit(b, i, "false"); !ok {
			return i, s.fail(i, "bad literal")
		}
	case 'n':
		if i, ok = lit(b, i, "null"); !ok {
			return i, s.fail(i, "bad literal")
		}
	default:
		if i, ok = scanNumber(b, i); !ok {
			return i, s.fail(i, "bad value")
		}
	}
	if n != nil {
		rec := int32(-1)
		if n.rec >= 0 {
			rec = s.open(n, start)
		}
		if len(n.acts) > 0 {
			s.act(n, start, i)
		}
		if rec >= 0 {
			s.close(rec)
		}
	}
	return i, nil
}

// kid is the child node of n for the member name raw (a valid string's
// content, as in the body; esc: it holds an escape), nil if no path goes
// there. A name with escapes is the string they spell, as for any JSON
// client ("em\u0061il" is email): it is decoded into the Result's scratch
// memory and matched so.
func (s *scanner) kid(n *node, raw []byte, esc bool) *node {
	if len(n.keys) == 0 {
		return nil
	}
	if esc {
		s.r.name = unescape(s.r.name[:0], raw)
		raw = s.r.name
	}
	for j, k := range n.keys {
		if string(raw) == k {
			return n.kids[j]
		}
	}
	return nil
}

// unescape appends to dst the string whose content is raw, which
// scanString accepted (every escape complete). A \u escape of a lone
// surrogate, or of a high surrogate not followed by a \u escape of a low
// one, is U+FFFD, as encoding/json decodes it; bytes not escaped are
// copied as they are, as names without escapes are compared.
func unescape(dst, raw []byte) []byte {
	for {
		j := bytes.IndexByte(raw, '\\')
		if j < 0 {
			return append(dst, raw...)
		}
		dst = append(dst, raw[:j]...)
		raw = raw[j:]
		if raw[1] != 'u' {
			dst = append(dst, unescapeTab[raw[1]])
			raw = raw[2:]
			continue
		}
		c := hex4(raw[2:6])
		raw = raw[6:]
		if utf16.IsSurrogate(c) {
			d := utf8.RuneError
			if len(raw) >= 6 && raw[0] == '\\' && raw[1] == 'u' {
				if d = utf16.DecodeRune(c, hex4(raw[2:6])); d != utf8.RuneError {
					raw = raw[6:]
				}
			}
			c = d
		}
		dst = utf8.AppendRune(dst, c)
	}
}

// unescapeTab maps the byte after a backslash to what it stands for
// (\u apart).
var unescapeTab = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// hex4 is the value of four hex digits.
func hex4(h []byte) rune {
	var v rune
	for _, c := range h[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		v = v<<4 | rune(c)
	}
	return v
}

// open starts a record at b[i] for node n and returns its index.
func (s *scanner) open(n *node, i int) int32 {
	r := s.r
	ri := int32(len(r.recs))
	obj := int32(-1)
	if s.b[i] == '{' {
		obj = int32(i)
	}
	sp := int32(len(r.spans))
	r.recs = append(r.recs, recState{path: int32(n.rec), obj: obj, id: ref{-1, -1}, spans: [2]int32{sp, sp}})
	r.cur[n.rec] = ri
	return ri
}

// close ends record ri, the innermost open one.
func (s *scanner) close(ri int32) {
	r := s.r
	rec := &r.recs[ri]
	r.cur[rec.path] = -1
	rec.spans[1] = int32(len(r.spans))
	if rec.obj >= 0 {
		rec.empty = s.b[skipWS(s.b, int(rec.obj)+1)] == '}'
	}
}

func lit(b []byte, i int, w string) (int, bool) {
	if len(b)-i < len(w) || string(b[i:i+len(w)]) != w {
		return i, false
	}
	return i + len(w), true
}

// scanString returns the offset after the string starting at b[i] ('"'),
// and whether the string holds an escape (member names with one are
// decoded before they are matched). On failure it returns the offset of
// the offending byte (len(b) when the string is not closed).
func scanString(b []byte, i int) (int, bool, bool) {
	esc := false
	i++
	for {
		// Sixteen bytes at a time until one may be '"', '\\' or a control
		// character: most strings end within the first sixteen, so the loop
		// exit is predictable.
		for i+16 <= len(b) {
			m := special(binary.LittleEndian.Uint64(b[i : i+8]))
			n := special(binary.LittleEndian.Uint64(b[i+8 : i+16]))
			if m|n != 0 {
				t := bits.TrailingZeros64(m)
				if m == 0 {
					t = 64 + bits.TrailingZeros64(n)
				}
				i += t >> 3
				goto flagged
			}
			i += 16
		}
		if i+8 <= len(b) {
			if m := special(binary.LittleEndian.Uint64(b[i : i+8])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				goto flagged
			}
			i += 8
		}
		for i < len(b) && strSafe[b[i]] {
			i++
		}
		if i >= len(b) {
			return i, esc, false
		}
	flagged: // b[i] is '"', '\\' or a control character
		switch b[i] {
		case '"':
			return i + 1, esc, true
		case '\\':
			esc = true
			if i+1 >= len(b) {
				return i, esc, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return i, esc, false
				}
				i += 6
			default:
				return i, esc, false
			}
		default: // a control character
			return i, esc, false
		}
	}
}

// special flags (high bit of the byte) the bytes of x that are '"', '\\'
// or below 0x20. The lowest flag is exact; flags above it may be false
// (borrows). x^'"' and x^'\\' have x's high bits, so one &^x clears the
// bytes >= 0x80 for all three tests.
func special(x uint64) uint64 {
	return (((x ^ 0x2222222222222222) - lo8) | ((x ^ 0x5c5c5c5c5c5c5c5c) - lo8) | (x - 0x2020202020202020)) &^ x & hi8
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
	v := s.b[start:end]
	if len(n.cls) > 0 {
		p := present(v)
		for k := range n.cls {
			a := &n.cls[k]
			ri := r.cur[a.rec]
			if ri < 0 {
				continue
			}
			r.spans = append(r.spans, span{start: int32(start), end: int32(end), rec: ri, class: a.class, field: a.field, present: p})
			if p {
				r.recs[ri].classes |= 1 << a.class
			}
		}
	}
	if len(n.ids) == 0 {
		return
	}
	id, ok := scalarID(v)
	if !ok {
		return
	}
	x := ref{start: int32(len(r.idbuf))} // one copy for every action
	if v[0] == '"' && bytes.IndexByte(id, '\\') >= 0 {
		r.idbuf = unescape(r.idbuf, id) // the id it spells
	} else {
		r.idbuf = append(r.idbuf, id...)
	}
	x.end = int32(len(r.idbuf))
	for k := range n.ids {
		switch a := &n.ids[k]; a.kind {
		case actID:
			if ri := r.cur[a.rec]; ri >= 0 {
				r.recs[ri].id = x
			}
		case actAuthor:
			r.authors = append(r.authors, x)
		case actLink:
			r.links = append(r.links, x)
		}
	}
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

// scalarID returns a string's raw content (its escapes still to decode)
// or a number's text as an id.
func scalarID(v []byte) ([]byte, bool) {
	if len(v) >= 2 && v[0] == '"' {
		return v[1 : len(v)-1], len(v) > 2
	}
	if len(v) > 0 && (v[0] == '-' || isDigit(v[0])) {
		return v, true
	}
	return nil, false
}
