package inspect

import "slices"

// NoteMember is the member warden adds to a record it masked:
//
//	"_warden":{"masked":["email","phone"],"rules":["contact-account"],"request_id":"r1"}
//
// masked lists the fields nulled, rules the rules that nulled them.
const NoteMember = "_warden"

// maxRules is how many distinct rules one answer's notes can name.
const maxRules = 64

// Mask marks class c of record i to be nulled, by rule. It reports whether
// the record carries that class (there was something to mask).
func (r *Result) Mask(i, c int, rule string) bool {
	rec := &r.recs[i]
	bit := ClassSet(1) << uint(c)
	if rec.classes&bit == 0 {
		return false
	}
	rec.masked |= bit
	k := slices.Index(r.rules, rule)
	if k < 0 && len(r.rules) < maxRules {
		k = len(r.rules)
		r.rules = append(r.rules, rule)
	}
	if k >= 0 {
		rec.rules |= 1 << uint(k)
	}
	return true
}

// NumMasked is the number of records with at least one class masked.
func (r *Result) NumMasked() int {
	n := 0
	for i := range r.recs {
		if r.recs[i].masked != 0 {
			n++
		}
	}
	return n
}

// edit replaces body[start:end] with null (rec < 0) or inserts record rec's
// note at start (start == end).
type edit struct {
	start, end int32
	rec        int32
}

// Rewrite appends to dst the body with every masked class field nulled and a
// note on each masked record, and returns it; with nothing masked it returns
// nil (the answer goes out byte for byte). The output is valid JSON when the
// input was.
func (r *Result) Rewrite(dst []byte, requestID string) []byte {
	ed := r.edits[:0]
	for _, sp := range r.spans {
		rec := &r.recs[sp.rec]
		if rec.masked&(1<<uint(sp.class)) != 0 && present(r.body[sp.start:sp.end]) {
			ed = append(ed, edit{start: sp.start, end: sp.end, rec: -1})
		}
	}
	if len(ed) == 0 {
		r.edits = ed
		return nil
	}
	for i := range r.recs {
		if rec := &r.recs[i]; rec.masked != 0 && rec.obj >= 0 {
			ed = append(ed, edit{start: rec.obj + 1, end: rec.obj + 1, rec: int32(i)})
		}
	}
	slices.SortFunc(ed, func(a, b edit) int {
		if a.start != b.start {
			return int(a.start - b.start)
		}
		return int(b.rec - a.rec) // a note before a null at the same offset
	})
	r.edits = ed
	w := appender{b: dst[:0]}
	w.b = slices.Grow(w.b, len(r.body)+len(ed)*16)
	pos := int32(0)
	for _, e := range ed {
		if e.start < pos { // inside a value already nulled
			continue
		}
		w.b = append(w.b, r.body[pos:e.start]...)
		if e.rec < 0 {
			w.b = append(w.b, "null"...)
			pos = e.end
			continue
		}
		r.note(&w, int(e.rec), requestID)
		pos = e.start
	}
	w.b = append(w.b, r.body[pos:]...)
	return w.b
}

func (r *Result) note(w *appender, i int, requestID string) {
	rec := &r.recs[i]
	w.b = append(w.b, `"`+NoteMember+`":{"masked":[`...)
	first := true
	for _, sp := range r.spans[rec.spans[0]:rec.spans[1]] {
		if sp.rec != int32(i) || rec.masked&(1<<uint(sp.class)) == 0 || !present(r.body[sp.start:sp.end]) {
			continue
		}
		if !first {
			w.b = append(w.b, ',')
		}
		first = false
		w.b = append(w.b, r.route.fieldJSON[sp.class][sp.field]...)
	}
	w.b = append(w.b, `],"rules":[`...)
	first = true
	for k, rule := range r.rules {
		if rec.rules&(1<<uint(k)) == 0 {
			continue
		}
		if !first {
			w.b = append(w.b, ',')
		}
		first = false
		appendJSONString(w, rule)
	}
	w.b = append(w.b, `],"request_id":`...)
	appendJSONString(w, requestID)
	w.b = append(w.b, '}')
	if !rec.empty {
		w.b = append(w.b, ',')
	}
}

type appender struct{ b []byte }

func (a *appender) WriteByte(c byte) error { a.b = append(a.b, c); return nil }
func (a *appender) WriteString(s string) (int, error) {
	a.b = append(a.b, s...)
	return len(s), nil
}

// Rules lists the rules that masked something, in the order first used.
func (r *Result) Rules() []string { return r.rules }
