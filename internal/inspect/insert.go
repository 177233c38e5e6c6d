package inspect

// insertion is a JSON value Rewrite puts before a record: the bytes
// insbuf[start:end], then a comma, at body offset at.
type insertion struct{ at, start, end int32 }

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
	r.ins = append(r.ins, insertion{at: int32(o), start: start, end: int32(len(r.insbuf))})
	return true
}

// NumInserted is the number of values Insert added.
func (r *Result) NumInserted() int { return len(r.ins) }
