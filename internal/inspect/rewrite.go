package inspect

import (
	"slices"

	"github.com/warden-gw/warden/internal/refusal"
)

// MaskedHeader is the response header on an answer warden masked:
// "Warden-Masked: 3; rules=contact-account,scope-contact".
const MaskedHeader = "Warden-Masked"

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
// note at start (start == end). sig is the note's list of masked fields,
// (class, field) in 16 bits each, up to four; 0 when longer or empty.
type edit struct {
	start, end int32
	rec        int32
	sig        uint64
}

// Rewrite appends to dst the body with every masked class field nulled, a
// note on each masked record and the values Insert added, and returns it;
// with nothing masked or inserted it returns nil (the answer goes out byte
// for byte). The output is valid JSON when the
// input was.
func (r *Result) Rewrite(dst []byte, requestID string) []byte {
	// Edits in body order: records open in order and a record's own spans
	// follow its note; only nested records can break the order.
	ed := r.edits[:0]
	nulls := 0
	sorted := true
	last := int32(-1)
	for i := range r.recs {
		rec := &r.recs[i]
		if rec.masked == 0 {
			continue
		}
		n := len(ed)
		if rec.obj >= 0 {
			ed = append(ed, edit{start: rec.obj + 1, end: rec.obj + 1, rec: int32(i)})
		}
		var sig uint64
		k := 0
		sps := r.spans[rec.spans[0]:rec.spans[1]]
		for j := range sps {
			if sp := &sps[j]; sp.present && sp.rec == int32(i) && rec.masked&(1<<sp.class) != 0 {
				ed = append(ed, edit{start: sp.start, end: sp.end, rec: -1})
				nulls++
				if k < 4 {
					sig |= (1<<15 | uint64(sp.class)<<8 | uint64(sp.field)) << (16 * k)
				} else {
					sig = 0
				}
				k++
			}
		}
		if rec.obj >= 0 && k <= 4 {
			ed[n].sig = sig
		}
		// The order check of cmpEdit, inline (a note sorts before a null
		// at the same offset).
		for j := n; j < len(ed); j++ {
			if st := ed[j].start; st < last || st == last && ed[j].rec >= 0 {
				sorted = false
			}
			last = ed[j].start
		}
	}
	for k, in := range r.ins {
		ed = append(ed, edit{start: in.at, end: in.at, rec: -2 - int32(k)})
		sorted = false
	}
	r.edits = ed
	if nulls == 0 && len(r.ins) == 0 {
		return nil
	}
	if !sorted {
		slices.SortFunc(ed, cmpEdit)
	}
	r.qid = refusal.AppendString(r.qid[:0], requestID) // quoted once per answer
	qid := r.qid
	b := slices.Grow(dst[:0], len(r.body)+len(ed)*24+len(qid)*len(ed)/2+64)
	pos := int32(0)
	// Records masked alike get the same note: the last one written is
	// copied when its fields and rules match.
	var (
		noteSig   uint64
		noteRules uint64
		ns, ne    int
	)
	for k := range ed {
		e := &ed[k]
		if e.start < pos { // inside a value already nulled
			continue
		}
		b = append(b, r.body[pos:e.start]...)
		if e.rec <= -2 { // an inserted value, then its comma
			in := r.ins[-2-e.rec]
			b = append(append(b, r.insbuf[in.start:in.end]...), ',')
			pos = e.start
			continue
		}
		if e.rec < 0 {
			b = append(b, 'n', 'u', 'l', 'l')
			pos = e.end
			continue
		}
		rec := &r.recs[e.rec]
		if e.sig != 0 && e.sig == noteSig && rec.rules == noteRules {
			b = append(b, b[ns:ne]...)
		} else {
			ns = len(b)
			b = r.note(b, int(e.rec), qid)
			ne = len(b)
			noteSig, noteRules = e.sig, rec.rules
		}
		if !rec.empty {
			b = append(b, ',')
		}
		pos = e.start
	}
	return append(b, r.body[pos:]...)
}

func cmpEdit(a, b edit) int {
	if a.start != b.start {
		return int(a.start - b.start)
	}
	return int(b.rec - a.rec) // a note, then a null, then an insertion at the same offset
}

// note appends record i's note member, without the comma after it.
func (r *Result) note(b []byte, i int, qid []byte) []byte {
	rec := &r.recs[i]
	b = append(b, `"`+NoteMember+`":{"masked":[`...)
	first := true
	for _, sp := range r.spans[rec.spans[0]:rec.spans[1]] {
		if !sp.present || sp.rec != int32(i) || rec.masked&(1<<sp.class) == 0 {
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
	return append(b, '}')
}

// Rules lists the rules that masked something, in the order first used.
func (r *Result) Rules() []string { return r.rules }
