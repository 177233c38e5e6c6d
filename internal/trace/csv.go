package trace

import (
	"bytes"
	"slices"
)

// csvLayout is where a CSV copy keeps the fields trace reads.
type csvLayout struct {
	sep    byte
	header bool
	cols   layout
}

// layout is the column of each field kind (fID to fPhone, and fStoreID:
// a store's own key, "_id"), -1 when none.
type layout [fStoreID + 1]int

// fields are a layout's field kinds, fStoreID left out.
func (l *layout) fields() []int { return l[fID:fStoreID] }

// csvFields splits one line into fields (quotes honoured within the line,
// "" inside quotes kept doubled: the fields trace reads never hold them).
func csvFields(line []byte, sep byte, dst [][]byte) [][]byte {
	dst = dst[:0]
	for i := 0; i <= len(line); {
		if i < len(line) && line[i] == '"' {
			j := i + 1
			for j < len(line) {
				if line[j] == '"' {
					if j+1 < len(line) && line[j+1] == '"' {
						j += 2
						continue
					}
					break
				}
				j++
			}
			dst = append(dst, line[i+1:min(j, len(line))])
			i = j + 1
			for i < len(line) && line[i] != sep {
				i++
			}
			i++
			continue
		}
		k := bytes.IndexByte(line[i:], sep)
		if k < 0 {
			dst = append(dst, line[i:])
			break
		}
		dst = append(dst, line[i:i+k])
		i += k + 1
	}
	return dst
}

// csvRowEnd is the index of the newline ending the row b starts with, -1
// when b ends first. A newline inside a quoted field (one whose first
// byte is a quote, as csvFields reads it) is the field's; a quote within
// an unquoted field (5'10") is a byte like any other, and so is a field's
// first quote when the next one is not a closing quote (followed by a
// separator or the line's end): the row ends at its first newline.
func csvRowEnd(b []byte, sep byte) int {
	k := bytes.IndexByte(b, '\n')
	if k < 0 || bytes.IndexByte(b[:k], '"') < 0 {
		return k // most rows
	}
	for i := 0; i < len(b); {
		if b[i] == '"' { // a quoted field: to its closing quote
			j := i + 1
			for {
				q := bytes.IndexByte(b[j:], '"')
				if q < 0 {
					return -1
				}
				j += q + 1
				if j < len(b) && b[j] == '"' {
					j++ // "" inside quotes
					continue
				}
				break
			}
			if j < len(b) && b[j] != sep && b[j] != '\r' && b[j] != '\n' {
				// Not a field's closing quote ("tall ... "x): the
				// opening one was stray, read as lines were.
				return k
			}
			i = j
		}
		// To the field's end: a separator, or the row's newline.
		for i < len(b) && b[i] != sep && b[i] != '\n' {
			i++
		}
		if i >= len(b) {
			return -1
		}
		if b[i] == '\n' {
			return i
		}
		i++
	}
	return -1
}

// sniffCSV finds the separator, whether the first line is a header, and
// the column of each field (columns).
func sniffCSV(sample []byte) csvLayout {
	l := csvLayout{sep: ',', cols: noColumns}
	first, _, _ := bytes.Cut(sample, []byte{'\n'})
	first = bytes.TrimRight(first, "\r")
	best := 0
	for _, s := range []byte{',', ';', '\t', '|'} {
		if n := bytes.Count(first, []byte{s}); n > best {
			best, l.sep = n, s
		}
	}
	// The sample's rows, a quoted field's newlines within its row.
	var lines [][]byte
	for b := sample; len(b) > 0; {
		k := csvRowEnd(b, l.sep)
		if k < 0 {
			if len(lines) == 0 {
				lines = append(lines, b) // one row, not cut short
			}
			break // cut short by the sample
		}
		lines, b = append(lines, b[:k]), b[k+1:]
	}
	if len(lines) == 0 {
		return l
	}
	first = bytes.TrimRight(lines[0], "\r")
	hdr := csvFields(first, l.sep, nil)
	var rows [][][]byte
	for _, line := range lines[1:min(len(lines), 201)] {
		if line = bytes.TrimRight(line, "\r"); len(line) > 0 {
			rows = append(rows, csvFields(line, l.sep, nil))
		}
	}
	l.cols, l.header = columns(hdr, rows, true)
	if l.header {
		return l
	}
	// A first line whose values do not look like the column's is a header.
	for k := fID; k <= fPhone; k++ {
		if c := l.cols[k]; c >= 0 && !sniffAs(bytes.TrimSpace(fieldAt(hdr, c)), k) {
			l.header = true
		}
	}
	return l
}

// noColumns: no field has a column.
var noColumns = layout{-1, -1, -1, -1, -1, -1}

// columns finds the column of each field kind from a header's names and
// some rows (a CSV's, a SQL table's): by the names, and for a field no name
// gives, by what the rows' values look like (the first column of each kind
// whose name, if any, is not another field's). named says some name was a
// field's. orFirst, with no rows and no name known, votes with the names
// themselves (a CSV of one line: it is data, not a header).
func columns(hdr [][]byte, rows [][][]byte, orFirst bool) (cols layout, named bool) {
	cols = noColumns
	// other: columns a header names as something trace does not read (a
	// count, a full name): never taken for a field by their values.
	other := map[int]bool{}
	for i, name := range hdr {
		name = bytes.TrimSpace(name)
		if string(name) == "_id" && cols[fStoreID] < 0 {
			// A store's own key (mongoexport's): the id of a row with
			// none when numeric (emitRow), never read by its values (an
			// ObjectId(...) would pass for a username).
			cols[fStoreID] = i
			named = true
			other[i] = true
			continue
		}
		if k := fieldOfKey(name); k != fNone && cols[k] < 0 {
			cols[k] = i
			named = true
		} else if k != fNone || notField(name) {
			other[i] = true
		}
	}
	if named && !slices.Contains(cols.fields(), -1) {
		return cols, named
	}
	if len(rows) == 0 && !named && orFirst {
		rows = [][][]byte{hdr}
	}
	// Count what each column's values look like.
	votes := map[[2]int]int{}
	phones := map[int]int{}               // of a column's digit values, the phones' (phoneDigits)
	distinct := map[int]map[string]bool{} // of a column's digit values, the different ones
	for _, f := range rows {
		for i, v := range f {
			v = bytes.TrimSpace(v)
			k := sniff(v)
			votes[[2]int{i, k}]++
			if k == fID && i < 64 && phoneDigits(v) {
				phones[i]++
			}
			if k == fID && i < 64 && !named {
				if distinct[i] == nil {
					distinct[i] = map[string]bool{}
				}
				distinct[i][string(v)] = true
			}
		}
	}
	// A column of digits is ids unless nine in ten of at least 10 values
	// are valid phone numbers ("14155552671", "4155552671"), which ids
	// seldom are (phoneDigits): read as ids, a first column of phones hid
	// the real ids beside it, numbers of 10 digits fell in the canaries'
	// id range (forgeries), shorter ones were subject ids no subject has,
	// and the phones a canary is found by were lost.
	for i, n := range phones {
		if d := votes[[2]int{i, fID}]; d >= 10 && n*10 >= d*9 {
			votes[[2]int{i, fPhone}] += d
			votes[[2]int{i, fID}] = 0
		}
	}
	for k := fID; k <= fPhone; k++ {
		if cols[k] >= 0 {
			continue
		}
		for i := 0; i < 64; i++ {
			if votes[[2]int{i, k}]*2 <= len(rows) || other[i] || slices.Contains(cols.fields(), i) {
				continue
			}
			// Among a header's unknown names, an id column's says so
			// ("identifier", "member_id") where a count's would not.
			// Without names, an id column's values differ from row to
			// row where a count's repeat (follower_count, full_name,
			// username, id): the count was taken for the id.
			if c := cols[k]; c < 0 || k == fID && named && !idName(fieldAt(hdr, c)) && idName(fieldAt(hdr, i)) ||
				k == fID && !named && len(distinct[i]) > 2*len(distinct[c]) {
				cols[k] = i
			}
		}
	}
	return cols, named
}

// shellNumber is the number a value of mongoexport's CSV writes in the
// shell's notation holds (NumberLong(161), NumberLong("161"),
// NumberInt(7)); v itself for any other (a plain number, ObjectId(...)).
func shellNumber(v []byte) []byte {
	for _, w := range []string{"NumberLong(", "NumberInt("} {
		if bytes.HasPrefix(v, []byte(w)) && len(v) > len(w) && v[len(v)-1] == ')' {
			return bytes.Trim(v[len(w):len(v)-1], `"' `)
		}
	}
	return v
}

// sniffAs reports whether v, a first line's value, looks like a value of
// a column of kind k (sniff; digits are also a phone column's: columns).
func sniffAs(v []byte, k int) bool {
	s := sniff(v)
	return s == k || k == fPhone && s == fID && phoneDigits(v)
}

// fieldAt is fields[i], or nil past the end (a header shorter than its rows).
func fieldAt(fields [][]byte, i int) []byte {
	if i < len(fields) {
		return fields[i]
	}
	return nil
}

// scanCSV reads the lines of b (whole lines) with layout l.
func scanCSV(b []byte, l *csvLayout, skipFirst bool, emit func(*Record)) {
	var f [][]byte
	var rec Record
	for len(b) > 0 {
		k := csvRowEnd(b, l.sep)
		if k < 0 {
			// A quote never closed (a chunk ends outside quotes, csvCut):
			// a stray one, read as lines were.
			k = bytes.IndexByte(b, '\n')
		}
		var line []byte
		if k < 0 {
			line, b = b, nil
		} else {
			line, b = b[:k], b[k+1:]
		}
		if skipFirst {
			skipFirst = false
			continue
		}
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) == 0 {
			continue
		}
		f = csvFields(line, l.sep, f)
		emitRow(&l.cols, f, &rec, emit)
	}
}

// emitRow emits the record of one row's fields (a CSV line's, a SQL
// row's) whose columns are cols, if it has a field. rec is the caller's,
// made again here: one a record, passed to emit, would be allocated.
func emitRow(cols *layout, f [][]byte, rec *Record, emit func(*Record)) {
	*rec = Record{}
	for kind := fID; kind <= fPhone; kind++ {
		if c := cols[kind]; c >= 0 && c < len(f) && len(f[c]) > 0 {
			rec.set(kind, bytes.TrimSpace(f[c]))
		}
	}
	if c := cols[fStoreID]; rec.ID == nil && c >= 0 && c < len(f) {
		if v := shellNumber(bytes.TrimSpace(f[c])); allDigits(v) {
			rec.ID = v // as the JSON reader takes a numeric "_id"
		}
	}
	if !rec.empty() {
		emit(rec)
	}
}
