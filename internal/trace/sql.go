package trace

import (
	"bytes"
)

// A SQL dump (mysqldump, pg_dump in its plain format, sqlite3's .dump) is
// read statement by statement: the rows of every INSERT (REPLACE) and of
// every COPY ... FROM stdin block, of every table, each row a record read
// as a CSV row with a header is (columns: the names its INSERT or COPY
// lists, else its table's CREATE TABLE's; columns the names do not give
// are read by their values, as a CSV's). Other statements are passed over.
//
// Chunks: a dump is cut where no string is open, so that workers read its
// chunks apart: between statements, between an INSERT's rows, or between
// a COPY block's lines (sqlFramer). Telling where a string is open needs
// every quote before, so the framer goes over the whole dump on the
// reading goroutine; to keep that cheap it does not lex an INSERT's rows
// (the workers do) but counts its quotes (bytes.Count, vectorised): where
// their number since the statement began is even, no string is open
// (a doubled quote inside one counts twice; MySQL's \' is taken off).
// Other statements (CREATE, SET, functions with $$ bodies) are few and
// short, and are lexed. The framer also parses the CREATE TABLEs and
// decides each table's columns once (layouts), which the workers look up.
//
// Not read, or read wrong: strings in double quotes holding a single
// quote, or a comment inside an INSERT holding one (no dump tool writes
// either; the chunks around it then read as malformed); a value written
// as an expression (sqlite's replace('a\nb','\n',char(10)) for text with
// a newline) is no value; pg_dump's custom and tar archives are refused
// (read.go), with the pg_restore command that prints them as SQL.

// sqlAt is where a chunk of a dump begins.
type sqlAt struct {
	mode int
	key  string // the rows' table and column list, as written (sqlHead.key)
}

const (
	atStatement = iota // between statements
	atCopy             // in a COPY block's data lines
	atRows             // between an INSERT's rows
)

// sqlChunk is what a worker reads a chunk of a dump with: where it begins
// and the columns of every table and column list it may meet (a map the
// framer never changes once handed over: it makes a new one to add).
type sqlChunk struct {
	at      sqlAt
	layouts map[string]layout
}

// sqlScanner reads the statements of b, telling table of each statement's
// rows and row of each row.
type sqlScanner struct {
	b    []byte
	bs   bool // backslash escapes in strings (MySQL)
	vals [][]byte
	bad  int
	stop bool
	// table is told the key of the rows that follow and returns the
	// columns whose values row reads (a bit each; from 64 on none), and
	// false to pass the rows over.
	table func(key []byte) (need uint64, ok bool)
	// row is told each row's values (nil for NULL, as written unless
	// read: unescaped then), valid only during the call; false stops.
	row func(vals [][]byte) bool
	// head is the last INSERT's text up to its rows, and need and ok what
	// table said of them: a dump writing a statement a row (pg_dump
	// --inserts, sqlite) repeats it, and a compare is cheaper than reading
	// it again and looking its key up. nil once table is told of others.
	head     []byte
	need     uint64
	headRead bool
}

// use tells table of the rows of key that follow.
func (s *sqlScanner) use(key []byte) (uint64, bool) {
	s.head = nil
	return s.table(key)
}

// scanSQL reads a chunk of a dump, emitting its rows' records; it returns
// the rows and statements found malformed.
func scanSQL(b []byte, c sqlChunk, bs bool, emit func(*Record)) int {
	var cols layout
	var rec Record
	s := sqlScanner{b: b, bs: bs}
	s.table = func(key []byte) (uint64, bool) {
		l, ok := c.layouts[string(key)]
		if !ok {
			s.bad++ // the framer sees every statement the workers do
			return 0, false
		}
		cols = l
		return needOf(&cols), true
	}
	s.row = func(vals [][]byte) bool {
		emitRow(&cols, vals, &rec, emit)
		return true
	}
	s.scan(c.at, 0)
	return s.bad
}

// needOf is the columns cols reads, a bit each.
func needOf(cols *layout) uint64 {
	var need uint64
	for _, c := range cols[fID:] {
		if c >= 0 && c < 64 {
			need |= 1 << c
		}
	}
	return need
}

// scan reads from i, which is at in the dump.
func (s *sqlScanner) scan(at sqlAt, i int) {
	switch at.mode {
	case atCopy:
		need, ok := s.use([]byte(at.key))
		i = s.copyRows(i, need, ok)
	case atRows:
		need, ok := s.use([]byte(at.key))
		i = s.rows(i, need, ok)
	}
	for i < len(s.b) && !s.stop {
		i = s.statement(i)
	}
}

// statement reads the statement at or after i and returns where the next
// one may begin.
func (s *sqlScanner) statement(i int) int {
	b := s.b
	if i = skipSQLSpace(b, i); i >= len(b) {
		return len(b)
	}
	switch verbOf(b[i:]) {
	case vInsert:
		if s.head != nil && bytes.HasPrefix(b[i:], s.head) {
			return s.rows(i+len(s.head), s.need, s.headRead)
		}
		if h, ok := insertHead(b, i); ok {
			need, ok := s.use(h.key)
			s.head, s.need, s.headRead = b[i:h.data], need, ok
			return s.rows(h.data, need, ok)
		}
	case vCopy:
		if h, ok := copyHead(b, i, s.bs); ok {
			need, ok := s.use(h.key)
			return s.copyRows(h.data, need, ok)
		}
	}
	e := stmtEnd(b, i, s.bs)
	if e < 0 {
		return len(b)
	}
	return e + 1
}

// rows reads an INSERT's rows from i (after VALUES, or between two rows)
// to the statement's end, and returns the index after it.
func (s *sqlScanner) rows(i int, need uint64, ok bool) int {
	b := s.b
	if !ok {
		if e := insertEnd(b, i, s.bs); e >= 0 {
			return e + 1
		}
		return len(b)
	}
	for {
		i = skipSQLBlank(b, i)
		if i >= len(b) {
			return i // a chunk cut between rows, or the dump's end
		}
		if b[i] != '(' {
			// The end, or a clause after the rows (ON DUPLICATE KEY
			// UPDATE, ON CONFLICT, RETURNING).
			if e := stmtEnd(b, i, s.bs); e >= 0 {
				return e + 1
			}
			return len(b)
		}
		j, ok := s.tuple(i+1, need)
		if !ok {
			s.bad++
			if e := stmtEnd(b, j, s.bs); e >= 0 {
				return e + 1
			}
			return len(b)
		}
		if !s.row(s.vals) {
			s.stop = true
			return len(b)
		}
		if i = skipSQLBlank(b, j); i < len(b) && b[i] == ',' {
			i++
		}
	}
}

// tuple reads one row's values from i (after its '(') into s.vals and
// returns the index after its ')'; false when it is malformed or cut.
func (s *sqlScanner) tuple(i int, need uint64) (int, bool) {
	b := s.b
	s.vals = s.vals[:0]
	if i = skipSQLBlank(b, i); i < len(b) && b[i] == ')' {
		return i + 1, true
	}
	for col := 0; ; col++ {
		i = skipSQLBlank(b, i)
		if i >= len(b) {
			return i, false
		}
		v, j, ok := s.value(i, col < 64 && need&(1<<col) != 0)
		if !ok {
			return j, false
		}
		s.vals = append(s.vals, v)
		if j = skipSQLBlank(b, j); j < len(b) && b[j] != ',' && b[j] != ')' {
			j = exprEnd(b, j, s.bs) // a cast or an operator after the value: 'x'::text
		}
		if j < 0 || j >= len(b) {
			return len(b), false
		}
		switch b[j] {
		case ')':
			return j + 1, true
		case ';': // the statement ends in the row: the next one is not read as values
			return j, false
		}
		i = j + 1
	}
}

// value reads the value at b[i]: a string, a number, NULL (nil); anything
// else (an expression, TRUE, DEFAULT) is passed over as nil. want says the
// value is read: a string's escapes are then undone (a copy).
func (s *sqlScanner) value(i int, want bool) (v []byte, next int, ok bool) {
	b := s.b
	switch c := b[i]; {
	case c == '\'' || c == '"': // "": MySQL's other string quote
		return s.str(i+1, c, want)
	case c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.':
		j := i + 1
		for j < len(b) && sqlClass[b[j]]&sqlEndsValue == 0 {
			j++
		}
		return b[i:j], j, true
	case (c == 'N' || c == 'n') && len(b)-i >= 4 && bytes.EqualFold(b[i:i+4], []byte("NULL")) &&
		(len(b)-i == 4 || sqlClass[b[i+4]]&sqlEndsValue != 0):
		return nil, i + 4, true
	case (c == 'X' || c == 'x' || c == 'B' || c == 'b') && i+1 < len(b) && b[i+1] == '\'':
		return s.str(i+2, '\'', false) // a hex or bit string: as written
	case c == '_': // a character set's introducer: _binary '...', _utf8mb4'...'
		j := skipSQLBlank(b, identEnd(b, i))
		if j < len(b) && b[j] == '\'' {
			return s.str(j+1, '\'', want)
		}
	}
	j := exprEnd(b, i, s.bs)
	if j < 0 {
		return nil, len(b), false
	}
	return nil, j, true
}

// str reads a string whose bytes begin at i, closed by q (doubled inside;
// with s.bs, a backslash escapes the next byte).
func (s *sqlScanner) str(i int, q byte, want bool) (v []byte, next int, ok bool) {
	b, start, esc := s.b, i, false
	for {
		k := bytes.IndexByte(b[i:], q)
		if k < 0 {
			return nil, len(b), false
		}
		j := i + k
		if s.bs {
			for {
				e := bytes.IndexByte(b[i:j], '\\')
				if e < 0 {
					break
				}
				esc, i = true, i+e+2
				if i > j {
					break // the quote at j was escaped
				}
			}
			if i > j {
				continue
			}
		}
		if j+1 < len(b) && b[j+1] == q {
			esc, i = true, j+2
			continue
		}
		v = b[start:j]
		if want && esc {
			v = unquoteSQL(v, q, s.bs)
		}
		return v, j + 1, true
	}
}

// unquoteSQL undoes a string's escapes: the doubled quote and, with bs,
// MySQL's backslash escapes (\% and \_ keep their backslash, as MySQL
// keeps them).
func unquoteSQL(v []byte, q byte, bs bool) []byte {
	out := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == q && i+1 < len(v) && v[i+1] == q:
			i++
		case c == '\\' && bs && i+1 < len(v):
			i++
			switch c = v[i]; c {
			case '0':
				c = 0
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			case 'b':
				c = '\b'
			case 'Z':
				c = 0x1a
			case '%', '_':
				out = append(out, '\\')
			}
		}
		out = append(out, c)
	}
	return out
}

// copyRows reads a COPY block's data lines from i (tab-separated, \N for
// NULL, backslash escapes) to its end line (\.) and returns the index
// after it.
func (s *sqlScanner) copyRows(i int, need uint64, ok bool) int {
	b := s.b
	if !ok {
		if e, found := copyEnd(b, i); found {
			return e
		}
		return len(b)
	}
	for i < len(b) {
		end := len(b)
		if k := bytes.IndexByte(b[i:], '\n'); k >= 0 {
			end = i + k
		}
		line, next := b[i:end], end+1
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) == 2 && line[0] == '\\' && line[1] == '.' {
			return min(next, len(b))
		}
		s.vals = s.vals[:0]
		for col := 0; ; col++ {
			f := line
			k := bytes.IndexByte(line, '\t')
			if k >= 0 {
				f, line = line[:k], line[k+1:]
			}
			switch {
			case len(f) == 2 && f[0] == '\\' && f[1] == 'N':
				f = nil
			case col < 64 && need&(1<<col) != 0 && bytes.IndexByte(f, '\\') >= 0:
				f = unescapeCopy(f)
			}
			s.vals = append(s.vals, f)
			if k < 0 {
				break
			}
		}
		if !s.row(s.vals) {
			s.stop = true
			return len(b)
		}
		i = next
	}
	return len(b)
}

// unescapeCopy undoes the backslash escapes of COPY's text format.
func unescapeCopy(f []byte) []byte {
	out := make([]byte, 0, len(f))
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c == '\\' && i+1 < len(f) {
			i++
			switch c = f[i]; c {
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			case 'b':
				c = '\b'
			case 'f':
				c = '\f'
			case 'v':
				c = '\v'
			}
		}
		out = append(out, c)
	}
	return out
}

// copyEnd finds the end line (\.) of a COPY block whose data begins at i
// (after a newline) and returns the index after it.
func copyEnd(b []byte, i int) (int, bool) {
	for j := i; j < len(b); {
		if b[j] == '\\' && j+1 < len(b) && b[j+1] == '.' && (j == i || b[j-1] == '\n') {
			e := j + 2
			if e < len(b) && b[e] == '\r' {
				e++
			}
			if e < len(b) && b[e] == '\n' {
				return e + 1, true
			}
			if e == len(b) {
				return e, false // the end line, or a line cut after "\."
			}
		}
		k := bytes.Index(b[j:], []byte("\n\\."))
		if k < 0 {
			return len(b), false
		}
		j += k + 1
	}
	return len(b), false
}

// Byte classes of the lexer.
const (
	sqlBlank     = 1 << iota // whitespace
	sqlEndsValue             // ends a number or NULL: whitespace , ) ;
	sqlIdent                 // in an unquoted name
)

var sqlClass = func() (t [256]uint8) {
	for _, c := range []byte(" \t\r\n\f\v") {
		t[c] = sqlBlank | sqlEndsValue
	}
	for _, c := range []byte(",);") {
		t[c] = sqlEndsValue
	}
	for c := range 256 {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '$' || c >= 0x80 {
			t[c] |= sqlIdent
		}
	}
	return t
}()

func skipSQLBlank(b []byte, i int) int {
	for i < len(b) && sqlClass[b[i]]&sqlBlank != 0 {
		i++
	}
	return i
}

// skipSQLSpace passes whitespace, comments (--, #, /* */) and a byte-order
// mark; len(b) when a comment is not closed within b.
func skipSQLSpace(b []byte, i int) int {
	for i < len(b) {
		switch c := b[i]; {
		case sqlClass[c]&sqlBlank != 0:
			i++
		case c == '-' && i+1 < len(b) && b[i+1] == '-' || c == '#':
			k := bytes.IndexByte(b[i:], '\n')
			if k < 0 {
				return len(b)
			}
			i += k + 1
		case c == '/' && i+1 < len(b) && b[i+1] == '*':
			k := bytes.Index(b[i+2:], []byte("*/"))
			if k < 0 {
				return len(b)
			}
			i += k + 4
		case c == 0xef && bytes.HasPrefix(b[i:], []byte("\xef\xbb\xbf")):
			i += 3
		default:
			return i
		}
	}
	return i
}

// identEnd is the end of the unquoted word at i.
func identEnd(b []byte, i int) int {
	for i < len(b) && sqlClass[b[i]]&sqlIdent != 0 {
		i++
	}
	return i
}

// nameEnd is the end of the (maybe qualified, maybe quoted) name at i:
// users, public.users, `users`, "main"."users", [users]; i when none.
func nameEnd(b []byte, i int) int {
	for {
		if i >= len(b) {
			return i
		}
		switch c := b[i]; c {
		case '`', '"', '[':
			if c == '[' {
				c = ']'
			}
			k := bytes.IndexByte(b[i+1:], c)
			if k < 0 {
				return len(b)
			}
			i += k + 2
		default:
			j := identEnd(b, i)
			if j == i {
				return i
			}
			i = j
		}
		if i >= len(b) || b[i] != '.' {
			return i
		}
		i++
	}
}

// tableName is the last part of a name, unquoted, in lower case: how a
// CREATE TABLE and the INSERTs into its table are matched, whatever the
// quoting and schema each is written with.
func tableName(name []byte) string {
	parts := nameParts(name)
	if len(parts) == 0 {
		return ""
	}
	return string(bytes.ToLower(parts[len(parts)-1]))
}

// nameParts splits a qualified name into its parts, unquoted.
func nameParts(name []byte) [][]byte {
	var parts [][]byte
	for i := 0; i < len(name); {
		var j int
		switch c := name[i]; c {
		case '`', '"', '[':
			if c == '[' {
				c = ']'
			}
			k := bytes.IndexByte(name[i+1:], c)
			if k < 0 {
				k = len(name) - i - 1
			}
			parts = append(parts, name[i+1:i+1+k])
			j = i + k + 2
		default:
			j = identEnd(name, i)
			if j == i {
				return parts
			}
			parts = append(parts, name[i:j])
		}
		if j >= len(name) || name[j] != '.' {
			return parts
		}
		i = j + 1
	}
	return parts
}

// Statement verbs the reader tells apart.
const (
	vOther = iota
	vInsert
	vCopy
	vCreateTable
)

// verbOf tells a statement's kind by its first words.
func verbOf(b []byte) int {
	switch {
	case hasWord(b, "INSERT"), hasWord(b, "REPLACE"):
		return vInsert
	case hasWord(b, "COPY"):
		return vCopy
	case hasWord(b, "CREATE"):
		// CREATE [GLOBAL|LOCAL] [TEMPORARY|TEMP|UNLOGGED] TABLE
		i := 6
		for range 3 {
			i = skipSQLBlank(b, i)
			if hasWord(b[i:], "TABLE") {
				return vCreateTable
			}
			i = identEnd(b, i)
		}
	}
	return vOther
}

// hasWord reports whether b begins with the keyword w (upper case) as a
// whole word, in any case.
func hasWord(b []byte, w string) bool {
	if len(b) < len(w) || len(b) > len(w) && sqlClass[b[len(w)]]&sqlIdent != 0 {
		return false
	}
	for i := range len(w) {
		if b[i]&^0x20 != w[i] {
			return false
		}
	}
	return true
}

// sqlHead is where an INSERT's or a COPY's rows are: key is the table and
// its column list as written (the same text gives the same columns), data
// where the rows begin; table and cols are the name and the column list
// (nil when none).
type sqlHead struct {
	key, table, cols []byte
	data             int
}

// insertHead reads INSERT [IGNORE|OR REPLACE|...] INTO name [(cols)]
// [OVERRIDING SYSTEM VALUE] VALUES at i; false for any other form (INSERT
// ... SELECT, DEFAULT VALUES) or one cut short.
func insertHead(b []byte, i int) (h sqlHead, ok bool) {
	i = identEnd(b, i)
	for n := 0; ; n++ {
		i = skipSQLBlank(b, i)
		if n > 4 || i >= len(b) {
			return h, false
		}
		into := hasWord(b[i:], "INTO")
		i = identEnd(b, i)
		if into {
			break
		}
	}
	if h, i, ok = namedRows(b, skipSQLBlank(b, i)); !ok {
		return h, false
	}
	for n := 0; ; n++ {
		i = skipSQLBlank(b, i)
		if n > 4 || i >= len(b) {
			return h, false
		}
		j := identEnd(b, i)
		// VALUE: MySQL's too; OVERRIDING SYSTEM VALUE VALUES: pg_dump's
		// for identity columns.
		if hasWord(b[i:], "VALUES") || hasWord(b[i:], "VALUE") {
			k := skipSQLBlank(b, j)
			if k >= len(b) {
				return h, false // cut short: whether rows follow is not known
			}
			if b[k] == '(' {
				h.data = j
				return h, true
			}
		}
		if j > i {
			i = j
			continue
		}
		return h, false
	}
}

// namedRows reads a table's name and its column list, if any, at i.
func namedRows(b []byte, i int) (h sqlHead, next int, ok bool) {
	start := i
	if i = nameEnd(b, i); i == start || i >= len(b) {
		return h, i, false
	}
	h.table, h.key = b[start:i], b[start:i]
	if j := skipSQLBlank(b, i); j < len(b) && b[j] == '(' {
		k := bytes.IndexByte(b[j:], ')') // names hold no ')'
		if k < 0 {
			return h, len(b), false
		}
		h.cols, h.key = b[j+1:j+k], b[start:j+k+1]
		i = j + k + 1
	}
	return h, i, true
}

// copyHead reads COPY name [(cols)] FROM stdin ...; at i: its data begin
// on the next line. A COPY from or to a file is no data. One cut short
// before its data's line has h.data -1.
func copyHead(b []byte, i int, bs bool) (h sqlHead, ok bool) {
	if h, i, ok = namedRows(b, skipSQLBlank(b, i+4)); !ok {
		return h, false
	}
	i = skipSQLBlank(b, i)
	if !hasWord(b[i:], "FROM") {
		return h, false
	}
	if i = skipSQLBlank(b, i+4); !hasWord(b[i:], "STDIN") {
		return h, false
	}
	e := stmtEnd(b, i, bs)
	k := -1
	if e >= 0 {
		k = bytes.IndexByte(b[e:], '\n')
	}
	if k < 0 {
		h.data = -1
		return h, false
	}
	h.data = e + k + 1
	return h, true
}

// columnNames are the names of a column list (an INSERT's or COPY's) or of
// a CREATE TABLE's definitions (constraints left out), unquoted.
func columnNames(list []byte, defs bool) [][]byte {
	var names [][]byte
	for _, item := range splitTop(list) {
		item = bytes.TrimSpace(item)
		if defs && !bytes.ContainsAny(item[:min(len(item), 1)], "`\"[") {
			w := item[:identEnd(item, 0)]
			switch string(bytes.ToUpper(w)) {
			case "PRIMARY", "KEY", "UNIQUE", "INDEX", "CONSTRAINT", "FOREIGN", "CHECK", "FULLTEXT", "SPATIAL", "EXCLUDE", "LIKE", "PERIOD":
				continue
			}
		}
		if parts := nameParts(item[:nameEnd(item, 0)]); len(parts) > 0 {
			names = append(names, parts[len(parts)-1])
		} else {
			names = append(names, nil) // a column whose name is not read: its values may be
		}
	}
	return names
}

// splitTop splits b at the commas outside parentheses and quotes.
func splitTop(b []byte) [][]byte {
	var out [][]byte
	depth, start := 0, 0
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '(':
			depth++
		case ')':
			depth--
		case '\'', '"', '`':
			if k := bytes.IndexByte(b[i+1:], c); k >= 0 {
				i += k + 1
			}
		case ',':
			if depth == 0 {
				out = append(out, b[start:i])
				start = i + 1
			}
		}
	}
	return append(out, b[start:])
}

// createTable reads CREATE ... TABLE [IF NOT EXISTS] name (defs) in
// b[i:e]: the table and its columns' names; false for CREATE TABLE ... AS.
func createTable(b []byte, i, e int) (table string, names [][]byte, ok bool) {
	b = b[:e]
	for !hasWord(b[i:], "TABLE") {
		j := identEnd(b, i)
		if j == i {
			return "", nil, false
		}
		if i = skipSQLBlank(b, j); i >= len(b) {
			return "", nil, false
		}
	}
	i = skipSQLBlank(b, i+5)
	if hasWord(b[i:], "IF") {
		for range 3 { // IF NOT EXISTS
			i = skipSQLBlank(b, identEnd(b, i))
		}
	}
	start := i
	i = nameEnd(b, i)
	name := b[start:i]
	if i = skipSQLBlank(b, i); len(name) == 0 || i >= len(b) || b[i] != '(' {
		return "", nil, false
	}
	end := closeParen(b, i)
	if end < 0 {
		return "", nil, false
	}
	return tableName(name), columnNames(b[i+1:end], true), true
}

// closeParen is the ')' closing the '(' at i, quotes and nesting
// honoured; -1 when none.
func closeParen(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch c := b[i]; c {
		case '(':
			depth++
		case ')':
			if depth--; depth == 0 {
				return i
			}
		case '\'', '"', '`':
			k := bytes.IndexByte(b[i+1:], c)
			if k < 0 {
				return -1
			}
			i += k + 1
		}
	}
	return -1
}

// exprEnd is the ',' or ')' ending the expression at i (nested
// parentheses and strings passed over), or the ';' ending its statement;
// -1 when none.
func exprEnd(b []byte, i int, bs bool) int {
	depth := 0
	for ; i < len(b); i++ {
		switch c := b[i]; c {
		case '(':
			depth++
		case ')':
			if depth == 0 {
				return i
			}
			depth--
		case ',':
			if depth == 0 {
				return i
			}
		case ';':
			return i
		case '\'', '"', '`':
			if i = quotedEnd(b, i+1, c, bs && c != '`'); i < 0 {
				return -1
			}
		}
	}
	return -1
}

// quotedEnd is the index of the quote closing a string, name or
// identifier whose bytes begin at i (a doubled quote inside; with bs, a
// backslash escapes); -1 when it does not close within b.
func quotedEnd(b []byte, i int, q byte, bs bool) int {
	for i < len(b) {
		c := b[i]
		switch {
		case c == '\\' && bs:
			i += 2
		case c == q:
			if i+1 < len(b) && b[i+1] == q {
				i += 2
				continue
			}
			return i
		default:
			i++
		}
	}
	return -1
}

// stmtEnd is the index of the ';' ending the statement at i, lexed: strings,
// quoted names, comments and PostgreSQL's dollar-quoted bodies passed over;
// -1 when it does not end within b.
func stmtEnd(b []byte, i int, bs bool) int {
	for i < len(b) {
		switch c := b[i]; {
		case c == ';':
			return i
		case c == '\'' || c == '"' || c == '`':
			if i = quotedEnd(b, i+1, c, bs && c != '`'); i < 0 {
				return -1
			}
			i++
		case c == '-' && i+1 < len(b) && b[i+1] == '-':
			k := bytes.IndexByte(b[i:], '\n')
			if k < 0 {
				return -1
			}
			i += k + 1
		case c == '/' && i+1 < len(b) && b[i+1] == '*':
			k := bytes.Index(b[i+2:], []byte("*/"))
			if k < 0 {
				return -1
			}
			i += k + 4
		case c == '$' && !bs && (i == 0 || sqlClass[b[i-1]]&sqlIdent == 0):
			// $$ or $tag$ opens a body that ends at the same tag.
			t := identEnd(b, i+1)
			if t < len(b) && b[t] == '$' {
				tag := b[i : t+1]
				k := bytes.Index(b[t+1:], tag)
				if k < 0 {
					return -1
				}
				i = t + 1 + k + len(tag)
				continue
			}
			i++
		default:
			i++
		}
	}
	return -1
}

// quoteCount is the number of single quotes in seg that open or close a
// string: with bs (MySQL), one after an odd run of backslashes is escaped.
// seg must not begin inside a run of backslashes.
func quoteCount(seg []byte, bs bool) int {
	n := bytes.Count(seg, []byte{'\''})
	if !bs || n == 0 {
		return n
	}
	for i := 0; ; {
		k := bytes.IndexByte(seg[i:], '\\')
		if k < 0 {
			return n
		}
		i += k
		j := i
		for j < len(seg) && seg[j] == '\\' {
			j++
		}
		if (j-i)%2 == 1 && j < len(seg) && seg[j] == '\'' {
			n--
		}
		i = j
	}
}

// insertEnd is the index of the ';' ending an INSERT whose rows begin at i
// (outside any string): the first with an even number of quotes before it.
// -1 when it does not end within b.
func insertEnd(b []byte, i int, bs bool) int {
	n := 0
	for j := i; j < len(b); {
		k := bytes.IndexByte(b[j:], ';')
		if k < 0 {
			return -1
		}
		if n += quoteCount(b[j:j+k], bs); n%2 == 0 {
			return j + k
		}
		j += k + 1
	}
	return -1
}

// rowCut is the start of the last row of an INSERT whose rows begin at i
// (outside any string) that begins within b: a '(' after "),", outside
// strings. 0 when none does.
func rowCut(b []byte, i int, bs bool) int {
	total := quoteCount(b[i:], bs)
	tail, end := 0, len(b)
	for k := len(b); ; {
		k = bytes.LastIndexByte(b[i:k], '(')
		if k < 0 {
			return 0
		}
		k += i
		tail += quoteCount(b[k:end], bs)
		end = k
		if (total-tail)%2 == 0 {
			j := k - 1
			for j > i && sqlClass[b[j]]&sqlBlank != 0 {
				j--
			}
			if j > i && b[j] == ',' {
				for j--; j > i && sqlClass[b[j]]&sqlBlank != 0; j-- {
				}
				if b[j] == ')' {
					return k
				}
			}
		}
	}
}
