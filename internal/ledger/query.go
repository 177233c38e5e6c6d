package ledger

import (
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/warden-gw/warden/internal/identify"
)

// WhoTookRow is one identity that was served a subject.
type WhoTookRow struct {
	Value   string    `json:"value"`   // the facet's value; "" for Accesses without it
	Classes []string  `json:"classes"` // classes served unmasked
	Count   int       `json:"count"`   // Accesses that served the subject
	First   time.Time `json:"first"`
	Last    time.Time `json:"last"`
}

// WhoTookResult answers who-took.
type WhoTookResult struct {
	Subject string       `json:"subject"`
	By      string       `json:"by"`
	Class   string       `json:"class,omitempty"`
	Rows    []WhoTookRow `json:"rows"`
}

// WhoTook lists the identities, by facet by, that were served subject's
// record; with class, only Accesses that served that class unmasked.
// Partitions whose index shows no such taker are not scanned.
func (r *Reader) WhoTook(subject, class string, by identify.Facet) *WhoTookResult {
	f := int(by) - 1
	res := &WhoTookResult{Subject: subject, By: by.String(), Class: class, Rows: []WhoTookRow{}}
	rows := map[string]*WhoTookRow{}
	for _, p := range r.parts {
		sid, ok := p.id(nsID, subject)
		if !ok {
			continue
		}
		var ckey uint64
		if class != "" {
			c, ok := p.id(nsName, class)
			if !ok {
				continue
			}
			ckey = uint64(c) + 1
		}
		if b := p.idx.get(famTakers, f, uint64(sid)<<32|ckey); (b == nil || b.IsEmpty()) && anyFacet(p, f) {
			continue
		}
		for i := range p.entries {
			e := &p.entries[i]
			if !r.win.has(e.t) {
				continue
			}
			var served uint64
			hit := false
			for _, rc := range e.recs {
				if rc.id != sid {
					continue
				}
				s := rc.classes &^ rc.masked
				if class != "" && !hasClass(e, s, uint32(ckey-1)) {
					continue
				}
				hit, served = true, served|s
			}
			if !hit {
				continue
			}
			val := ""
			if v := e.facets[f]; v != 0 {
				val = p.name(nsFacet+f, v-1)
			}
			row := rows[val]
			t := time.UnixMicro(e.t).UTC()
			if row == nil {
				row = &WhoTookRow{Value: val, Classes: []string{}, First: t, Last: t}
				rows[val] = row
			}
			row.Count++
			if t.Before(row.First) {
				row.First = t
			}
			if t.After(row.Last) {
				row.Last = t
			}
			for s := served; s != 0; s &= s - 1 {
				if i := bits.TrailingZeros64(s); i < len(e.classes) {
					if c := p.name(nsName, e.classes[i]); !slices.Contains(row.Classes, c) {
						row.Classes = append(row.Classes, c)
					}
				}
			}
		}
	}
	for _, row := range rows {
		slices.Sort(row.Classes)
		res.Rows = append(res.Rows, *row)
	}
	slices.SortFunc(res.Rows, func(a, b WhoTookRow) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return strings.Compare(a.Value, b.Value)
	})
	return res
}

// anyFacet reports whether p's index is complete for facet f: an Access
// without the facet is not indexed under it, so a partition holding such
// Accesses is scanned.
func anyFacet(p *partition, f int) bool {
	for i := range p.entries {
		if p.entries[i].facets[f] == 0 && len(p.entries[i].recs) > 0 {
			return false
		}
	}
	return true
}

// hasClass reports whether class c (a name integer) is among the bits of
// set s of e's classes.
func hasClass(e *entry, s uint64, c uint32) bool {
	for i, x := range e.classes {
		if x == c && s&(1<<uint(i)) != 0 {
			return true
		}
	}
	return false
}

// TookByResult answers took-by.
type TookByResult struct {
	Facet    string         `json:"facet"`
	Value    string         `json:"value"`
	Served   map[string]int `json:"served"`   // class -> distinct subjects served it unmasked
	Masked   map[string]int `json:"masked"`   // class -> distinct subjects it was masked on
	Subjects int            `json:"subjects"` // distinct subjects any record of which was served
	Lists    int            `json:"lists"`    // distinct lists fetched (answers, not refusals)
	Accesses int            `json:"accesses"` // Accesses in the window, refusals included
	First    *time.Time     `json:"first"`
	Last     *time.Time     `json:"last"`
}

// TookBy is what one identity took: distinct subjects per class served
// and masked, lists, first and last time. Partitions the window covers are
// answered from their index; the others are scanned.
func (r *Reader) TookBy(by identify.Facet, value string) *TookByResult {
	f := int(by) - 1
	res := &TookByResult{Facet: by.String(), Value: value, Served: map[string]int{}, Masked: map[string]int{}}
	served, masked := map[string]*roaring.Bitmap{}, map[string]*roaring.Bitmap{}
	bm := func(m map[string]*roaring.Bitmap, k string) *roaring.Bitmap {
		b := m[k]
		if b == nil {
			b = roaring.New()
			m[k] = b
		}
		return b
	}
	any, lists := roaring.New(), roaring.New()
	lo, hi := int64(1<<63-1), int64(-1<<63)
	for _, p := range r.parts {
		ident, ok := p.id(nsFacet+f, value)
		if !ok {
			continue
		}
		full := r.win.covers(p)
		for i := range p.entries {
			e := &p.entries[i]
			if e.facets[f] != ident+1 || !r.win.has(e.t) {
				continue
			}
			res.Accesses++
			if full {
				continue
			}
			lo, hi = min(lo, e.t), max(hi, e.t)
			if e.list != 0 && e.status < 400 {
				lists.Add(r.global(p, nsID, e.list-1))
			}
			for _, rc := range e.recs {
				g := r.global(p, nsID, rc.id)
				any.Add(g)
				for s := rc.classes; s != 0; s &= s - 1 {
					i := bits.TrailingZeros64(s)
					if i >= len(e.classes) {
						continue
					}
					name := p.name(nsName, e.classes[i])
					if rc.masked&(1<<uint(i)) != 0 {
						bm(masked, name).Add(g)
					} else {
						bm(served, name).Add(g)
					}
				}
			}
		}
		if !full {
			continue
		}
		key := uint64(ident) << 32
		if sp, ok := p.idx.spans[f][ident]; ok {
			lo, hi = min(lo, sp[0]), max(hi, sp[1])
		}
		r.globalize(p, nsID, p.idx.get(famTook, f, key), any)
		r.globalize(p, nsID, p.idx.get(famLists, f, uint64(ident)), lists)
		for c, name := range p.dict[nsName] {
			k := key | uint64(c+1)
			if b := p.idx.get(famTook, f, k); b != nil {
				r.globalize(p, nsID, b, bm(served, name))
			}
			if b := p.idx.get(famMasked, f, k); b != nil {
				r.globalize(p, nsID, b, bm(masked, name))
			}
		}
	}
	for k, b := range served {
		res.Served[k] = int(b.GetCardinality())
	}
	for k, b := range masked {
		res.Masked[k] = int(b.GetCardinality())
	}
	res.Subjects, res.Lists = int(any.GetCardinality()), int(lists.GetCardinality())
	if lo <= hi {
		a, b := time.UnixMicro(lo).UTC(), time.UnixMicro(hi).UTC()
		res.First, res.Last = &a, &b
	}
	return res
}

// Viewers returns, for each author, the identities (by facet by, as
// integers that hold within this reader) served their content in the
// window, and the pieces of their content served (impressions).
func (r *Reader) Viewers(authors []string, by identify.Facet) ([]*roaring.Bitmap, []uint64) {
	f := int(by) - 1
	r.viewNS = nsFacet + f
	out := make([]*roaring.Bitmap, len(authors))
	impr := make([]uint64, len(authors))
	for i := range out {
		out[i] = roaring.New()
	}
	for _, p := range r.parts {
		local := map[uint32]int{}
		for i, a := range authors {
			if v, ok := p.id(nsID, a); ok {
				local[v] = i
			}
		}
		if len(local) == 0 {
			continue
		}
		if r.win.covers(p) {
			for v, i := range local {
				r.globalize(p, nsFacet+f, p.idx.get(famViewers, f, uint64(v)), out[i])
				impr[i] += p.idx.impr[v]
			}
			continue
		}
		for k := range p.entries {
			e := &p.entries[k]
			if len(e.authors) == 0 || !r.win.has(e.t) {
				continue
			}
			for _, a := range e.authors {
				i, ok := local[a]
				if !ok {
					continue
				}
				impr[i]++
				if v := e.facets[f]; v != 0 {
					out[i].Add(r.global(p, nsFacet+f, v-1))
				}
			}
		}
	}
	return out, impr
}

// Found is an Access found by its request id, with the file it is in.
type Found struct {
	Entry *Entry
	File  string
}

// Find returns the Access of request id, nil when the window holds none.
func (r *Reader) Find(id string) *Found {
	for _, p := range r.parts {
		for i := range p.entries {
			if p.entries[i].reqID == id {
				return &Found{Entry: p.entryOf(&p.entries[i]), File: p.path}
			}
		}
	}
	return nil
}

// Distinct counts the distinct subjects of class served unmasked to
// facet value value in the window (class "" counts any record): what a
// budget counting by that facet and class saw.
func (r *Reader) Distinct(by identify.Facet, value, class string) int {
	f := int(by) - 1
	set := roaring.New()
	for _, p := range r.parts {
		ident, ok := p.id(nsFacet+f, value)
		if !ok {
			continue
		}
		var c uint32
		if class != "" {
			if c, ok = p.id(nsName, class); !ok {
				continue
			}
		}
		if r.win.covers(p) {
			key := uint64(ident) << 32
			if class != "" {
				key |= uint64(c) + 1
			}
			r.globalize(p, nsID, p.idx.get(famTook, f, key), set)
			continue
		}
		for i := range p.entries {
			e := &p.entries[i]
			if e.facets[f] != ident+1 || !r.win.has(e.t) {
				continue
			}
			for _, rc := range e.recs {
				if class == "" || hasClass(e, rc.classes&^rc.masked, c) {
					set.Add(r.global(p, nsID, rc.id))
				}
			}
		}
	}
	return int(set.GetCardinality())
}

// IdentityName is the value behind an identity integer Viewers returned.
func (r *Reader) IdentityName(v uint32) string {
	if names := r.glob[r.viewNS].names; int(v) < len(names) {
		return names[v]
	}
	return ""
}
