package inspect

// Load empties r and fills it, for route rt, with records that an answer
// already served (as a ledger keeps them): each id, the classes present,
// nothing masked; and the ids the answer linked to. It is for deciding an
// answer again off the request path (warden replay): r holds no body, so
// Rewrite has nothing to render, and rules only read and mask it.
func (r *Result) Load(rt *Route, recs []Record, links []string) {
	r.Reset()
	r.route = rt
	for _, rec := range recs {
		id := ref{-1, -1}
		if rec.ID != "" {
			id = ref{int32(len(r.idbuf)), int32(len(r.idbuf) + len(rec.ID))}
			r.idbuf = append(r.idbuf, rec.ID...)
		}
		r.recs = append(r.recs, recState{path: -1, obj: -1, id: id, classes: rec.Classes})
	}
	for _, l := range links {
		r.links = append(r.links, ref{int32(len(r.idbuf)), int32(len(r.idbuf) + len(l))})
		r.idbuf = append(r.idbuf, l...)
	}
}

// MaskedBy appends to dst the rules that masked record i.
func (r *Result) MaskedBy(i int, dst []string) []string {
	bits := r.recs[i].rules
	for k, rule := range r.rules {
		if bits&(1<<uint(k)) != 0 {
			dst = append(dst, rule)
		}
	}
	return dst
}
