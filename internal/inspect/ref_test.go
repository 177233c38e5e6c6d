package inspect

// This file is the scanner and rewriter as they were before the
// performance work of 2026-11 (scan.go and rewrite.go at 595d160), renamed
// with an r0 prefix: a reference that FuzzDiff and TestDiffMutations hold
// the optimized code to, result for result and byte for byte (error
// offsets and messages included). When behaviour is meant to change,
// change or drop it with the change. Changed since: member names with
// escapes are decoded (by encoding/json here) before they are matched, and
// string ids, authors and links with escapes are the strings they spell
// (r0decode).

import (
	"github.com/warden-gw/warden/internal/refusal"

	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"slices"
)

// r0maxDepth bounds nesting, so hostile input cannot exhaust the stack.
const r0maxDepth = 256

// r0span is a class field's value in the body.
type r0span struct {
	start, end int32
	rec        int32
	class      uint8
	field      uint8
}

type r0recState struct {
	path    int32 // record path index
	obj     int32 // offset of '{' when the record is an object, else -1
	empty   bool  // the object has no members
	id      ref
	classes ClassSet
	masked  ClassSet
	rules   uint64   // bits index r0Result.rules
	spans   [2]int32 // the record's spans are within spans[0:1] of r0Result.spans
}

// r0Result is one inspected answer. Reuse it with Reset; it is not safe for
// concurrent use.
type r0Result struct {
	route    *Route
	body     []byte
	recs     []r0recState
	open     []int32
	spans    []r0span
	authors  []ref
	links    []ref
	idbuf    []byte
	rules    []string
	ruleJSON [][]byte
	qid      []byte
	stack    []r0frame
	edits    []r0edit
	errAt    int
	errMsg   string
}

// Reset empties r for another answer, keeping its memory.
func (r *r0Result) Reset() {
	*r = r0Result{recs: r.recs[:0], open: r.open[:0], spans: r.spans[:0],
		authors: r.authors[:0], links: r.links[:0], idbuf: r.idbuf[:0], rules: r.rules[:0], ruleJSON: r.ruleJSON[:0], edits: r.edits[:0], qid: r.qid[:0], stack: r.stack[:0]}
}

// Route is the route the answer was inspected for.
func (r *r0Result) Route() *Route { return r.route }

// Len is the number of records found.
func (r *r0Result) Len() int { return len(r.recs) }

// ID returns record i's id as bytes of r (valid until Reset); nil if none.
func (r *r0Result) ID(i int) []byte {
	x := r.recs[i].id
	if x.start < 0 {
		return nil
	}
	return r.idbuf[x.start:x.end]
}

// Classes returns the classes r0present in record i.
func (r *r0Result) Classes(i int) ClassSet { return r.recs[i].classes }

// Masked returns the classes masked in record i so far.
func (r *r0Result) Masked(i int) ClassSet { return r.recs[i].masked }

// NumLinks is the number of linked ids; Link returns one (valid until Reset).
func (r *r0Result) NumLinks() int       { return len(r.links) }
func (r *r0Result) Link(i int) []byte   { x := r.links[i]; return r.idbuf[x.start:x.end] }
func (r *r0Result) NumAuthors() int     { return len(r.authors) }
func (r *r0Result) Author(i int) []byte { x := r.authors[i]; return r.idbuf[x.start:x.end] }

// Inspect scans body (decoded JSON) once for the route's records, classes,
// authors and links. It keeps body for Rewrite. Errors wrap ErrMalformed.
func (r *r0Result) Inspect(rt *Route, body []byte) error {
	r.route, r.body = rt, body
	s := r0scanner{r: r, b: body}
	i, err := s.scan(rt.root, r0skipWS(body, 0))
	if err == nil {
		i = r0skipWS(body, i)
		if i != len(body) {
			err = s.fail(i, "data after the top-level value")
		}
	}
	if err != nil {
		return fmt.Errorf("%w at byte %d: %s", ErrMalformed, r.errAt, r.errMsg)
	}
	return nil
}

type r0scanner struct {
	r *r0Result
	b []byte
}

var r0errScan = errors.New("scan")

func (s *r0scanner) fail(i int, msg string) error {
	s.r.errAt, s.r.errMsg = i, msg
	return r0errScan
}

var r0wsTab = [256]bool{' ': true, '\t': true, '\n': true, '\r': true}

// r0strSafe marks bytes that may appear in a string without a closer look.
var r0strSafe = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func r0skipWS(b []byte, i int) int {
	for i < len(b) && r0wsTab[b[i]] {
		i++
	}
	return i
}

// r0frame is an open object or array.
type r0frame struct {
	n     *node // the container's node; nil when no path reaches it
	rec   int32 // record opened at this container, -1
	start int32 // offset of its '{' or '['
	arr   bool
}

// scan walks the value at b[i] and everything in it in one loop (no
// recursion: the nesting is an explicit stack bounded by r0maxDepth) and
// returns the offset after it.
func (s *r0scanner) scan(root *node, i int) (int, error) {
	b := s.b
	r := s.r
	st := r.stack[:0]
	defer func() { r.stack = st[:0] }()
	cur := root
	var (
		start int
		rec   int32
		c     byte
		top   *r0frame
		e     int
		ok    bool
	)
value:
	if i >= len(b) {
		return i, s.fail(i, "unexpected end")
	}
	c = b[i]
	if cur == nil {
		// Nothing to record: scalars are scanned here directly.
		switch {
		case c == '"':
			if e, ok = r0scanString(b, i); !ok {
				return e, s.fail(e, "bad string")
			}
			i = e
			goto after
		case c >= '0' && c <= '9' || c == '-':
			if e, ok = r0scanNumber(b, i); !ok {
				return e, s.fail(e, "bad value")
			}
			i = e
			goto after
		}
	}
	start = i
	rec = -1
	if cur != nil && cur.rec >= 0 {
		rec = s.open(cur, i)
	}
	switch c {
	case '{', '[':
		if len(st) >= r0maxDepth {
			return i, s.fail(i, "nested too deep")
		}
		st = append(st, r0frame{n: cur, rec: rec, start: int32(i), arr: c == '['})
		i = r0skipWS(b, i+1)
		if c == '{' {
			if i < len(b) && b[i] == '}' {
				i++
				goto closed
			}
			goto key
		}
		if i < len(b) && b[i] == ']' {
			i++
			goto closed
		}
		if cur != nil {
			cur = cur.elem
		}
		goto value
	case '"':
		if e, ok = r0scanString(b, i); !ok {
			return e, s.fail(e, "bad string")
		}
		i = e
	case 't':
		if i, ok = r0lit(b, i, "true"); !ok {
			return i, s.fail(i, "bad literal")
		}
	case 'f':
		if i, ok = r0lit(b, i, "false"); !ok {
			return i, s.fail(i, "bad literal")
		}
	case 'n':
		if i, ok = r0lit(b, i, "null"); !ok {
			return i, s.fail(i, "bad literal")
		}
	default:
		if e, ok = r0scanNumber(b, i); !ok {
			return e, s.fail(e, "bad value")
		}
		i = e
	}
	if cur != nil {
		if len(cur.acts) > 0 {
			s.act(cur, start, i)
		}
		if rec >= 0 {
			s.close(rec)
		}
	}
	goto after

closed: // the container on top of the stack ended at i
	top = &st[len(st)-1]
	if top.n != nil {
		if len(top.n.acts) > 0 {
			s.act(top.n, int(top.start), i)
		}
		if top.rec >= 0 {
			s.close(top.rec)
		}
	}
	st = st[:len(st)-1]

after: // a value ended at i
	if len(st) == 0 {
		return i, nil
	}
	top = &st[len(st)-1]
	i = r0skipWS(b, i)
	if i >= len(b) {
		return i, s.fail(i, "unexpected end")
	}
	if top.arr {
		switch b[i] {
		case ',':
			i = r0skipWS(b, i+1)
			cur = nil
			if top.n != nil {
				cur = top.n.elem
			}
			goto value
		case ']':
			i++
			goto closed
		}
		return i, s.fail(i, "expected ',' or ']'")
	}
	switch b[i] {
	case ',':
		i = r0skipWS(b, i+1)
		goto key
	case '}':
		i++
		goto closed
	}
	return i, s.fail(i, "expected ',' or '}'")

key: // a member name at i, in the object on top
	if i >= len(b) || b[i] != '"' {
		return i, s.fail(i, "expected a member name")
	}
	if e, ok = r0scanString(b, i); !ok {
		return e, s.fail(e, "bad string")
	}
	cur = nil
	if n := st[len(st)-1].n; n != nil {
		key := b[i+1 : e-1]
		if bytes.IndexByte(key, '\\') >= 0 {
			// A name with escapes is what encoding/json decodes it to
			// (an implementation of its own, to hold unescape to).
			var name string
			if err := json.Unmarshal(b[i:e], &name); err != nil {
				return i, s.fail(i, "reference: "+err.Error())
			}
			key = []byte(name)
		}
		for j, k := range n.keys {
			if string(key) == k {
				cur = n.kids[j]
				break
			}
		}
	}
	i = r0skipWS(b, e)
	if i >= len(b) || b[i] != ':' {
		return i, s.fail(i, "expected ':'")
	}
	i = r0skipWS(b, i+1)
	goto value
}

// open starts a record at b[i] for node n and returns its index.
func (s *r0scanner) open(n *node, i int) int32 {
	r := s.r
	ri := int32(len(r.recs))
	obj := int32(-1)
	if s.b[i] == '{' {
		obj = int32(i)
	}
	sp := int32(len(r.spans))
	r.recs = append(r.recs, r0recState{path: int32(n.rec), obj: obj, id: ref{-1, -1}, spans: [2]int32{sp, sp}})
	r.open = append(r.open, ri)
	return ri
}

// close ends record ri, the innermost open one.
func (s *r0scanner) close(ri int32) {
	r := s.r
	r.open = r.open[:len(r.open)-1]
	rec := &r.recs[ri]
	rec.spans[1] = int32(len(r.spans))
	if rec.obj >= 0 {
		rec.empty = s.b[r0skipWS(s.b, int(rec.obj)+1)] == '}'
	}
}

func r0lit(b []byte, i int, w string) (int, bool) {
	if len(b)-i < len(w) || string(b[i:i+len(w)]) != w {
		return i, false
	}
	return i + len(w), true
}

// r0scanString returns the offset after the string starting at b[i] ('"').
func r0scanString(b []byte, i int) (int, bool) {
	i++
	for {
		// Eight bytes at a time until one may be '"', '\\' or a control
		// character (the lowest flagged byte is exact).
		for i+8 <= len(b) {
			x := binary.LittleEndian.Uint64(b[i:])
			q := x ^ 0x2222222222222222
			e := x ^ 0x5c5c5c5c5c5c5c5c
			m := ((q - r0lo8) &^ q) | ((e - r0lo8) &^ e) | ((x - 0x2020202020202020) &^ x)
			if m &= r0hi8; m != 0 {
				i += bits.TrailingZeros64(m) / 8
				break
			}
			i += 8
		}
		for i < len(b) && r0strSafe[b[i]] {
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
				if i+6 > len(b) || !r0isHex(b[i+2]) || !r0isHex(b[i+3]) || !r0isHex(b[i+4]) || !r0isHex(b[i+5]) {
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
	r0lo8 = 0x0101010101010101
	r0hi8 = 0x8080808080808080
)

func r0isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func r0isDigit(c byte) bool { return c >= '0' && c <= '9' }

// r0scanNumber checks JSON's number grammar.
func r0scanNumber(b []byte, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return i, false
	case b[i] == '0':
		i++
	case r0isDigit(b[i]):
		for i < len(b) && r0isDigit(b[i]) {
			i++
		}
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !r0isDigit(b[i]) {
			return i, false
		}
		for i < len(b) && r0isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !r0isDigit(b[i]) {
			return i, false
		}
		for i < len(b) && r0isDigit(b[i]) {
			i++
		}
	}
	return i, true
}

// act records what the route wants of the value b[start:end].
func (s *r0scanner) act(n *node, start, end int) {
	r := s.r
	v := s.b[start:end]
	x := ref{-1, -1} // the id, copied to idbuf once for every action
	for _, a := range n.acts {
		if a.kind == actClass {
			ri := s.openRec(a.rec)
			if ri < 0 {
				continue
			}
			r.spans = append(r.spans, r0span{start: int32(start), end: int32(end), rec: ri, class: uint8(a.class), field: uint8(a.field)})
			if r0present(v) {
				r.recs[ri].classes |= 1 << uint(a.class)
			}
			continue
		}
		if x.start < 0 {
			id, ok := r0scalarID(v)
			if !ok {
				continue
			}
			x = ref{int32(len(r.idbuf)), int32(len(r.idbuf) + len(id))}
			r.idbuf = append(r.idbuf, id...)
		}
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
func (s *r0scanner) openRec(p int) int32 {
	for j := len(s.r.open) - 1; j >= 0; j-- {
		if ri := s.r.open[j]; s.r.recs[ri].path == int32(p) {
			return ri
		}
	}
	return -1
}

// r0present reports whether a field's value carries data: not null, "", [] or {}.
func r0present(v []byte) bool {
	switch len(v) {
	case 4:
		return string(v) != "null"
	case 2:
		return v[0] != '"' && v[0] != '[' && v[0] != '{'
	}
	return len(v) > 0
}

// r0scalarID returns a string's content, decoded, or a number's text as
// an id.
func r0scalarID(v []byte) ([]byte, bool) {
	if len(v) >= 2 && v[0] == '"' {
		return r0decode(v[1 : len(v)-1]), len(v) > 2
	}
	if len(v) > 0 && (v[0] == '-' || r0isDigit(v[0])) {
		return v, true
	}
	return nil, false
}

// r0NoteMember is the member warden adds to a record it masked:
//
//	"_warden":{"masked":["email","phone"],"rules":["contact-account"],"request_id":"r1"}
//
// masked lists the fields nulled, rules the rules that nulled them.
const r0NoteMember = "_warden"

// r0maxRules is how many distinct rules one answer's notes can name.
const r0maxRules = 64

// Mask marks class c of record i to be nulled, by rule. It reports whether
// the record carries that class (there was something to mask).
func (r *r0Result) Mask(i, c int, rule string) bool {
	rec := &r.recs[i]
	bit := ClassSet(1) << uint(c)
	if rec.classes&bit == 0 {
		return false
	}
	rec.masked |= bit
	k := slices.Index(r.rules, rule)
	if k < 0 && len(r.rules) < r0maxRules {
		k = len(r.rules)
		r.rules = append(r.rules, rule)
		if k < cap(r.ruleJSON) { // reuse the quoted rule's memory
			r.ruleJSON = r.ruleJSON[:k+1]
			r.ruleJSON[k] = refusal.AppendString(r.ruleJSON[k][:0], rule)
		} else {
			r.ruleJSON = append(r.ruleJSON, refusal.AppendString(nil, rule))
		}
	}
	if k >= 0 {
		rec.rules |= 1 << uint(k)
	}
	return true
}

// NumMasked is the number of records with at least one class masked.
func (r *r0Result) NumMasked() int {
	n := 0
	for i := range r.recs {
		if r.recs[i].masked != 0 {
			n++
		}
	}
	return n
}

// r0edit replaces body[start:end] with null (rec < 0) or inserts record rec's
// note at start (start == end).
type r0edit struct {
	start, end int32
	rec        int32
}

// Rewrite appends to dst the body with every masked class field nulled and a
// note on each masked record, and returns it; with nothing masked it returns
// nil (the answer goes out byte for byte). The output is valid JSON when the
// input was.
func (r *r0Result) Rewrite(dst []byte, requestID string) []byte {
	// Edits in body order: records open in order and a record's own spans
	// follow its note; only nested records can break the order.
	ed := r.edits[:0]
	nulls := 0
	for i := range r.recs {
		rec := &r.recs[i]
		if rec.masked == 0 {
			continue
		}
		if rec.obj >= 0 {
			ed = append(ed, r0edit{start: rec.obj + 1, end: rec.obj + 1, rec: int32(i)})
		}
		for _, sp := range r.spans[rec.spans[0]:rec.spans[1]] {
			if sp.rec == int32(i) && rec.masked&(1<<uint(sp.class)) != 0 && r0present(r.body[sp.start:sp.end]) {
				ed = append(ed, r0edit{start: sp.start, end: sp.end, rec: -1})
				nulls++
			}
		}
	}
	r.edits = ed
	if nulls == 0 {
		return nil
	}
	if !slices.IsSortedFunc(ed, r0cmpEdit) {
		slices.SortFunc(ed, r0cmpEdit)
	}
	r.qid = refusal.AppendString(r.qid[:0], requestID) // quoted once per answer
	qid := r.qid
	b := slices.Grow(dst[:0], len(r.body)+len(ed)*24+len(qid)*len(ed)/2+64)
	pos := int32(0)
	for _, e := range ed {
		if e.start < pos { // inside a value already nulled
			continue
		}
		b = append(b, r.body[pos:e.start]...)
		if e.rec < 0 {
			b = append(b, "null"...)
			pos = e.end
			continue
		}
		b = r.note(b, int(e.rec), qid)
		pos = e.start
	}
	return append(b, r.body[pos:]...)
}

func r0cmpEdit(a, b r0edit) int {
	if a.start != b.start {
		return int(a.start - b.start)
	}
	return int(b.rec - a.rec) // a note before a null at the same offset
}

func (r *r0Result) note(b []byte, i int, qid []byte) []byte {
	rec := &r.recs[i]
	b = append(b, `"`+r0NoteMember+`":{"masked":[`...)
	first := true
	for _, sp := range r.spans[rec.spans[0]:rec.spans[1]] {
		if sp.rec != int32(i) || rec.masked&(1<<uint(sp.class)) == 0 || !r0present(r.body[sp.start:sp.end]) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, r.route.fieldJSON[sp.class][sp.field]...)
	}
	b = append(b, `],"rules":[`...)
	first = true
	for k, rule := range r.ruleJSON {
		if rec.rules&(1<<uint(k)) == 0 {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, rule...)
	}
	b = append(b, `],"request_id":`...)
	b = append(b, qid...)
	b = append(b, '}')
	if !rec.empty {
		b = append(b, ',')
	}
	return b
}

// Rules lists the rules that masked something, in the order first used.
func (r *r0Result) Rules() []string { return r.rules }

// r0decode returns the string whose content is raw (a valid string's):
// each run of escapes is what encoding/json decodes it to (a run, so a
// surrogate pair is decoded together, and a lone surrogate is U+FFFD),
// every byte not escaped is kept as it is (encoding/json would turn
// invalid UTF-8 into U+FFFD; an id is kept byte for byte, as one without
// escapes is).
func r0decode(raw []byte) []byte {
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw
	}
	var out []byte
	for i := 0; i < len(raw); {
		if raw[i] != '\\' {
			out = append(out, raw[i])
			i++
			continue
		}
		j := i
		for j < len(raw) && raw[j] == '\\' {
			if raw[j+1] == 'u' {
				j += 6
			} else {
				j += 2
			}
		}
		var str string
		if err := json.Unmarshal([]byte("\""+string(raw[i:j])+"\""), &str); err != nil {
			panic("reference: " + err.Error()) // scanString accepted it
		}
		out = append(out, str...)
		i = j
	}
	return out
}
