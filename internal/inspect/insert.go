package inspect

// insertion is a JSON value Rewrite puts before a record: the bytes
// insbuf[start:end], then a comma, at body offset at; path is the record
// path of the record it goes before (InsertedLinks reads it as one).
type insertion struct{ at, start, end, path int32 }

// Insert has Rewrite put rec, one JSON value, before record i, which must
// be an object element of an array; it reports whether it can. Inserted
// values are not records of r (Len, ID, Fill and the budgets never see
// them) and are not inspected: the caller vouches that rec is valid JSON.
func (r *Result) Insert(i int, rec []byte) bool {
	o := int(r.recs[i].obj)
	if o < 0 {
		return false
	}
	j := o - 1
	for j >= 0 && wsTab[r.body[j]] {
		j--
	}
	if j < 0 || r.body[j] != '[' && r.body[j] != ',' {
		return false
	}
	start := int32(len(r.insbuf))
	r.insbuf = append(r.insbuf, rec...)
	r.ins = append(r.ins, insertion{at: int32(o), start: start, end: int32(len(r.insbuf)), path: r.recs[i].path})
	return true
}

// NumInserted is the number of values Insert added.
func (r *Result) NumInserted() int { return len(r.ins) }

// InsertedLinks appends to dst the ids the route's links select in the
// inserted values, each read as a record of its neighbour's record path
// (where it goes out): the ids the answer shows the caller beyond its own
// links (Link), which a look-up must find remembered as those are. A
// value that cannot be read adds nothing. The slices stay valid until the
// next call or Reset. Only answers with insertions (the canaries') call
// it; its scratch memory is kept with r for the next.
func (r *Result) InsertedLinks(dst [][]byte) [][]byte {
	if len(r.ins) == 0 || r.route == nil {
		return dst
	}
	rt := r.route
	if r.insScan == nil {
		r.insScan = new(Result)
	}
	tmp := r.insScan
	tmp.route = rt
	tmp.recs, tmp.spans, tmp.links, tmp.idbuf = tmp.recs[:0], tmp.spans[:0], tmp.links[:0], tmp.idbuf[:0]
	for _, in := range r.ins {
		tmp.cur = tmp.cur[:0]
		for range rt.nrec {
			tmp.cur = append(tmp.cur, -1)
		}
		b := r.insbuf[in.start:in.end]
		s := scanner{r: tmp, b: b}
		n := len(tmp.links)
		if _, err := s.scan(rt.recNodes[in.path], skipWS(b, 0)); err != nil {
			tmp.links = tmp.links[:n] // a value half read links nothing
		}
	}
	for _, x := range tmp.links {
		dst = append(dst, tmp.idbuf[x.start:x.end])
	}
	return dst
}
