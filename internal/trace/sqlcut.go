package trace

import (
	"bytes"
	"maps"
	"slices"
)

// sqlFramer cuts a dump into chunks where no string is open (see sql.go),
// and decides the columns of each table's rows as it passes them.
type sqlFramer struct {
	bs      bool                // backslash escapes in strings (MySQL)
	at      sqlAt               // where the next chunk begins
	schemas map[string][][]byte // CREATE TABLE's column names, by tableName
	// layouts are handed to the chunks: replaced to add one, never changed.
	layouts map[string]layout
	// head is the last INSERT's text up to its rows (a copy), and key its
	// key: repeated, it is compared, not read again (sqlScanner.head).
	head []byte
	key  string
}

func newSQLFramer(sample []byte) *sqlFramer {
	return &sqlFramer{bs: mysqlDialect(sample), schemas: map[string][][]byte{}, layouts: map[string]layout{}}
}

// mysqlDialect reports whether the dump's strings take backslash escapes:
// MySQL's and MariaDB's (and PostgreSQL's with standard_conforming_strings
// off), not PostgreSQL's or sqlite's by default, where a backslash is a
// byte like any other.
func mysqlDialect(sample []byte) bool {
	for _, m := range []string{"MySQL dump", "MariaDB dump", "/*!40", "INSERT INTO `", "REPLACE INTO `", "ENGINE=", "standard_conforming_strings = off"} {
		if bytes.Contains(sample, []byte(m)) {
			return true
		}
	}
	return false
}

// split returns the end of the last whole piece of b (all of it at the
// dump's end: eof) and the sqlChunk that piece is read with.
func (f *sqlFramer) split(b []byte, eof bool) (int, any) {
	c := sqlChunk{at: f.at}
	end, at := f.frame(b, eof)
	if end > 0 {
		f.at = at
	}
	c.layouts = f.layouts
	return end, c
}

// frame goes over b's statements from f.at, learning the columns of the
// rows in them, and returns where b may be cut and what is there.
func (f *sqlFramer) frame(b []byte, eof bool) (int, sqlAt) {
	at, i := f.at, 0
	switch at.mode {
	case atCopy:
		e, ok := copyEnd(b, 0)
		if !ok {
			if eof {
				return len(b), at
			}
			return bytes.LastIndexByte(b, '\n') + 1, at
		}
		i = e
	case atRows:
		e := insertEnd(b, 0, f.bs)
		if e < 0 {
			if eof {
				return len(b), at
			}
			return rowCut(b, 0, f.bs), at
		}
		i = e + 1
	}
	for {
		s := skipSQLSpace(b, i)
		if s >= len(b) {
			if eof {
				return len(b), sqlAt{}
			}
			return i, sqlAt{} // before a comment not closed yet
		}
		next, cut, cutAt := f.statement(b, s, eof)
		if next < 0 {
			if eof {
				return len(b), sqlAt{}
			}
			if cut > 0 {
				return cut, cutAt
			}
			return i, sqlAt{}
		}
		i = next
	}
}

// statement frames the statement at s: next is where the one after may
// begin, -1 when it does not end within b; then cut, when above 0, is
// where b may be cut inside it and cutAt what is there (none when its
// columns are yet to be decided: the piece is cut before it).
func (f *sqlFramer) statement(b []byte, s int, eof bool) (next, cut int, cutAt sqlAt) {
	switch verbOf(b[s:]) {
	case vInsert:
		data := s + len(f.head)
		if f.head == nil || !bytes.HasPrefix(b[s:], f.head) {
			h, ok := insertHead(b, s)
			if !ok {
				break
			}
			if !f.learn(b, s, h, eof) {
				return -1, 0, sqlAt{}
			}
			f.head, f.key, data = bytes.Clone(b[s:h.data]), string(h.key), h.data
		}
		if e := insertEnd(b, data, f.bs); e >= 0 {
			return e + 1, 0, sqlAt{}
		}
		return -1, rowCut(b, data, f.bs), sqlAt{atRows, f.key}
	case vCopy:
		h, ok := copyHead(b, s, f.bs)
		if h.data < 0 {
			return -1, 0, sqlAt{} // read on: whether data follow is not known
		}
		if ok {
			if !f.learn(b, s, h, eof) {
				return -1, 0, sqlAt{}
			}
			if e, ok := copyEnd(b, h.data); ok {
				return e, 0, sqlAt{}
			}
			return -1, h.data + bytes.LastIndexByte(b[h.data:], '\n') + 1, sqlAt{atCopy, string(h.key)}
		}
	case vCreateTable:
		e := stmtEnd(b, s, f.bs)
		if e < 0 {
			return -1, 0, sqlAt{}
		}
		if t, names, ok := createTable(b, s, e); ok {
			f.schemas[t] = cloneNames(names) // b is a buffer used again
		}
		return e + 1, 0, sqlAt{}
	}
	e := stmtEnd(b, s, f.bs)
	if e < 0 {
		return -1, 0, sqlAt{}
	}
	return e + 1, 0, sqlAt{}
}

func cloneNames(names [][]byte) [][]byte {
	out := make([][]byte, len(names))
	for i, n := range names {
		out[i] = bytes.Clone(n)
	}
	return out
}

// learn decides the columns of the rows h heads, the first time its key
// is met: by the names of its column list, else of its table's CREATE
// TABLE, and for fields no name gives, by the values of its first rows
// (200 from s on, or all there are), as a CSV's are decided. false: b
// does not hold enough of them yet (not at the dump's end, eof), and
// nothing is decided: b is to be cut before s, so that the next piece
// begins with them (or, at its start, read on to hold them), since the
// columns of a key, once handed to a chunk, stay.
func (f *sqlFramer) learn(b []byte, s int, h sqlHead, eof bool) bool {
	if _, ok := f.layouts[string(h.key)]; ok {
		return true
	}
	names := f.schemas[tableName(h.table)]
	if h.cols != nil {
		names = columnNames(h.cols, false)
	}
	cols, named := columns(names, nil, false)
	if !named || slices.Contains(cols.fields(), -1) {
		rows, all := sampleRows(b, s, h.key, f.bs)
		// Rows of megabytes each: what 4 MiB hold is enough.
		if !all && !eof && (len(rows) == 0 || len(b)-s < 4<<20) {
			return false
		}
		cols, _ = columns(names, rows, false)
	}
	m := maps.Clone(f.layouts)
	m[string(h.key)] = cols
	f.layouts = m
	return true
}

// sampleRows are the values of up to 200 rows of key from the statement
// at s on, while the statements are key's; all says no more are to come
// (200 read, or another table's rows met), not that b ended.
func sampleRows(b []byte, s int, key []byte, bs bool) (rows [][][]byte, all bool) {
	sc := sqlScanner{b: b, bs: bs}
	sc.table = func(k []byte) (uint64, bool) {
		if !bytes.Equal(k, key) {
			sc.stop = true
			return 0, false
		}
		return ^uint64(0), true
	}
	sc.row = func(vals [][]byte) bool {
		rows = append(rows, append([][]byte(nil), vals...))
		return len(rows) < 200
	}
	for i := s; i < len(b) && !sc.stop; {
		i = sc.statement(i)
	}
	return rows, sc.stop
}
