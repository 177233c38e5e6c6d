package trace

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
)

// chunkSize is one worker's piece of the input; a few are in flight
// (2 per worker and one filling). 1 MiB, not 4: a copy read in one go
// costs the same either way, but each Read makes its buffers anew, and
// for one of 54 MB, 6 buffers of 4 MiB (zeroed, faulted in) cost 10% of
// its CPU (BenchmarkTraceContacts).
const chunkSize = 1 << 20

// maxChunk bounds a piece that cannot be cut (a JSON document on one line
// or with no record boundary found): past it the copy is refused.
const maxChunk = 1 << 30

// Format is what a copy was read as.
type Format string

const (
	FormatCSV   Format = "csv"
	FormatJSONL Format = "json-lines" // NDJSON, bulk, elasticdump, mongoexport
	FormatJSON  Format = "json"       // an array or object document
	FormatSQL   Format = "sql"        // mysqldump, pg_dump, sqlite3 .dump
)

// ReadStats counts what a read saw.
type ReadStats struct {
	Format    Format `json:"format"`
	Gzip      bool   `json:"gzip"`
	Bytes     int64  `json:"bytes"`     // decompressed
	Malformed int    `json:"malformed"` // values skipped
	// Truncated: the gzip stream ended before its end (a copy cut short,
	// as leaked dumps often are); what it held up to the cut was read.
	Truncated bool `json:"truncated"`
}

// otherCompression are the containers a leaked copy often comes in that
// Read does not open: read as text they would give no record and a trace
// that accuses nobody, so they are refused, with the command that opens
// them.
var otherCompression = []struct {
	magic     []byte
	name, cmd string
}{
	{[]byte("\xfd7zXZ\x00"), "xz-compressed", "xz -dc FILE"},
	{[]byte("BZh"), "bzip2-compressed", "bzip2 -dc FILE"},
	{[]byte("\x28\xb5\x2f\xfd"), "zstd-compressed", "zstd -dc FILE"},
	{[]byte("\x04\x22\x4d\x18"), "lz4-compressed", "lz4 -dc FILE"},
	{[]byte("PK\x03\x04"), "a zip archive", "unzip -p FILE"},
	{[]byte("7z\xbc\xaf\x27\x1c"), "a 7z archive", "7z x -so FILE"},
}

// bzip2Head: "BZh", a block size digit, then a block's or the stream end's
// magic (a CSV line may begin with "BZh").
func bzip2Head(m []byte) bool {
	return len(m) >= 10 && m[3] >= '1' && m[3] <= '9' &&
		(string(m[4:10]) == "\x31\x41\x59\x26\x53\x59" || string(m[4:10]) == "\x17\x72\x45\x38\x50\x90")
}

// Read streams the copy in r to workers goroutines, each calling emit with
// its number and every record of its chunks. counted, when not nil, is told
// of each decompressed block read (a progress bar).
func Read(r io.Reader, workers int, emit func(worker int, rec *Record), counted func(n int)) (ReadStats, error) {
	return read(r, workers, chunkSize, emit, counted)
}

// read is Read in chunks of size bytes (tests cut copies into many small
// ones).
func read(r io.Reader, workers, size int, emit func(worker int, rec *Record), counted func(n int)) (ReadStats, error) {
	var st ReadStats
	br := bufio.NewReaderSize(r, 1<<16)
	if m, _ := br.Peek(2); len(m) == 2 && m[0] == 0x1f && m[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return st, fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		st.Gzip = true
		br = bufio.NewReaderSize(zr, 1<<16)
	}
	if m, _ := br.Peek(10); len(m) >= 4 {
		for _, c := range otherCompression {
			if bytes.HasPrefix(m, c.magic) && (c.name != "bzip2-compressed" || bzip2Head(m)) {
				return st, fmt.Errorf("the copy is %s: only gzip is read as it is; decompress it first (%s | warden trace -)", c.name, c.cmd)
			}
		}
	}
	sample, _ := br.Peek(1 << 16)
	sample = bytes.TrimPrefix(sample, []byte("\xef\xbb\xbf"))
	t := bytes.TrimLeft(sample, " \t\r\n")
	if archive := pgArchive(t); archive != "" {
		// Its rows are compressed in a format of pg_dump's own; pg_restore
		// prints them as the SQL the plain format has.
		return st, fmt.Errorf("the copy is %s, which trace does not read: print it as SQL first (pg_restore -f - FILE | warden trace -)", archive)
	}
	// split returns the end of the last whole piece of b (all of it at the
	// copy's end: eof) and what the piece is read with; work reads a
	// piece, returning the values it found malformed.
	var split func(b []byte, eof bool) (int, any)
	var work func(b []byte, first bool, at any, emit func(*Record)) int
	switch {
	case sqlDump(t):
		st.Format = FormatSQL
		f := newSQLFramer(sample)
		split = f.split
		work = func(b []byte, _ bool, at any, emit func(*Record)) int { return scanSQL(b, at.(sqlChunk), f.bs, emit) }
	case len(t) > 0 && (t[0] == '{' || t[0] == '['):
		st.Format = FormatJSONL
		cut := bulkCut
		if !jsonLines(t) {
			st.Format = FormatJSON
			cut = recordCut(t)
		}
		split = cutBy(cut)
		work = func(b []byte, _ bool, _ any, emit func(*Record)) int { return scanJSON(b, emit) }
	default:
		st.Format = FormatCSV
		l := sniffCSV(sample)
		split = cutBy(csvCut)
		work = func(b []byte, first bool, _ any, emit func(*Record)) int {
			scanCSV(b, &l, first && l.header, emit)
			return 0
		}
	}
	type chunk struct {
		b     []byte
		first bool
		at    any
	}
	if workers < 1 {
		workers = 1
	}
	jobs := make(chan chunk, workers)
	// free holds the chunk buffers the workers are done with: workers+2
	// of them circulate (one filling, one per worker, one queued), each
	// made once at a chunk's size plus a read's, so filling one never
	// grows (and copies) it, and nothing is allocated per chunk.
	free := make(chan []byte, workers+2)
	// slack: room past a chunk's size for the read that fills it (a
	// read fills what room there is: with 64 KiB past a chunk of 64
	// bytes, chunks would be 64 KiB).
	slack := min(size, 1<<16)
	get := func() []byte {
		select {
		case b := <-free:
			return b[:0]
		default:
			return make([]byte, 0, size+slack)
		}
	}
	put := func(b []byte) {
		select {
		case free <- b:
		default: // one grown past a chunk for a long piece: dropped
		}
	}
	var wg sync.WaitGroup
	bad := make([]int, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := func(rec *Record) { emit(w, rec) }
			for c := range jobs {
				bad[w] += work(c.b, c.first, c.at, e)
				put(c.b)
			}
		}()
	}
	var err error
	var carry []byte
	first := true
	for {
		// A chunk's worth, or twice a long carry (a piece with no
		// boundary yet, past half a chunk): a line of n bytes is then
		// copied about 2n times in all, and one already a chunk long is
		// read on instead of split again as it is, forever.
		want := max(size, min(2*len(carry), maxChunk+1))
		buf := get()
		if cap(buf) < want {
			put(buf)
			buf = make([]byte, 0, want+slack)
		}
		buf = append(buf, carry...)
		for len(buf) < want {
			n, rerr := br.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			if counted != nil && n > 0 {
				counted(n)
			}
			st.Bytes += int64(n)
			if rerr == io.EOF {
				break
			}
			if rerr == io.ErrUnexpectedEOF && st.Gzip {
				st.Truncated = true // trace what there is; the caller warns
				break
			}
			if rerr != nil {
				err = rerr
				break
			}
		}
		eof := len(buf) < want || err != nil || st.Truncated
		if eof {
			if len(buf) > 0 {
				_, at := split(buf, true)
				jobs <- chunk{buf, first, at}
			}
			break
		}
		end, at := split(buf, false)
		if end <= 0 {
			if len(buf) > maxChunk {
				err = errors.New("no record boundary within 1 GiB: the copy cannot be streamed")
				break
			}
			carry = append(carry[:0], buf...) // read on until a boundary
			put(buf)
			continue
		}
		carry = append(carry[:0], buf[end:]...)
		jobs <- chunk{buf[:end], first, at}
		first = false
	}
	close(jobs)
	wg.Wait()
	for _, n := range bad {
		st.Malformed += n
	}
	return st, err
}

// sqlDump reports whether t begins as a SQL dump (mysqldump, pg_dump,
// sqlite's .dump): its first line that is no comment is a statement, and
// it holds rows as INSERT or COPY statements, or a CREATE TABLE (pg_dump
// writes the whole schema first: a large one fills the sample).
func sqlDump(t []byte) bool {
	for len(t) > 0 {
		line := t
		if k := bytes.IndexByte(t, '\n'); k >= 0 {
			line, t = t[:k], t[k+1:]
		} else {
			t = nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 || bytes.HasPrefix(line, []byte("--")) || bytes.HasPrefix(line, []byte("#")) ||
			bytes.HasPrefix(line, []byte("/*")) && !bytes.HasPrefix(line, []byte("/*!")) {
			continue
		}
		up := bytes.ToUpper(line[:min(len(line), 20)])
		for _, kw := range []string{"CREATE ", "INSERT ", "DROP ", "SET ", "LOCK TABLES", "USE ", "BEGIN", "START TRANSACTION", "COPY ", "PRAGMA ", "ALTER ", "/*!", "SELECT PG_CATALOG", "REPLACE INTO"} {
			if bytes.HasPrefix(up, []byte(kw)) {
				rows := func(b []byte) bool {
					for _, r := range []string{"INSERT INTO", "insert into", "INSERT IGNORE INTO", "REPLACE INTO", "replace into", " FROM stdin;", "CREATE TABLE", "create table"} {
						if bytes.Contains(b, []byte(r)) {
							return true
						}
					}
					return false
				}
				return rows(line) || rows(t)
			}
		}
		return false
	}
	return false
}

// cutBy makes a split of a cut that needs nothing but the bytes.
func cutBy(cut func(b []byte) int) func([]byte, bool) (int, any) {
	return func(b []byte, eof bool) (int, any) {
		if eof {
			return len(b), nil
		}
		return cut(b), nil
	}
}

// pgArchive names the pg_dump archive t begins as (custom format: PGDMP;
// tar: its first member toc.dat), "" for none.
func pgArchive(t []byte) string {
	switch {
	case bytes.HasPrefix(t, []byte("PGDMP")):
		return "a pg_dump archive (custom format)"
	case bytes.HasPrefix(t, []byte("toc.dat\x00")) && len(t) > 262 && string(t[257:262]) == "ustar":
		return "a pg_dump archive (tar format)"
	}
	return ""
}

// lineCut cuts after the last newline.
func lineCut(b []byte) int { return bytes.LastIndexByte(b, '\n') + 1 }

// csvCut cuts after the last newline with an even number of quotes
// before it: a quoted field may hold newlines (a bio over several lines),
// and every CSV writer doubles a quote inside quotes, so an even count is
// outside them. A chunk starts outside quotes (it starts where the last
// one was cut). With no such newline (a stray quote, as in 5'10" written
// unquoted), it cuts after the last newline, as lines.
func csvCut(b []byte) int {
	end := lineCut(b)
	if end == 0 || bytes.IndexByte(b[:end], '"') < 0 {
		return end
	}
	odd := bytes.Count(b[:end], []byte{'"'})&1 == 1
	for e := end; e > 0; {
		if !odd {
			return e
		}
		p := bytes.LastIndexByte(b[:e-1], '\n') + 1 // the last line of b[:e] starts at p
		odd = odd != (bytes.Count(b[p:e], []byte{'"'})&1 == 1)
		e = p
	}
	return end
}

// bulkCut cuts after the last newline, or before the last line when it is
// an Elasticsearch bulk action that a document follows ({"index": ...},
// {"create": ...}, {"update": ...}): the document takes the action's _id.
func bulkCut(b []byte) int {
	end := lineCut(b)
	if end == 0 {
		return 0
	}
	start := bytes.LastIndexByte(b[:end-1], '\n') + 1
	l := bytes.TrimLeft(b[start:end], " \t{")
	if start > 0 && (bytes.HasPrefix(l, []byte(`"index"`)) || bytes.HasPrefix(l, []byte(`"create"`)) || bytes.HasPrefix(l, []byte(`"update"`))) {
		return start
	}
	return end
}

// jsonLines reports whether the sample's whole lines are each one or more
// whole values (NDJSON, bulk, elasticdump, an array printed a record a
// line), so the input can be cut at any newline.
func jsonLines(t []byte) bool {
	lines := bytes.Split(t, []byte{'\n'})
	if len(lines) < 2 {
		return false
	}
	lines = lines[:len(lines)-1] // the last may be cut short
	for _, l := range lines {
		l = bytes.Trim(l, " \t\r,[]")
		if len(l) == 0 {
			continue
		}
		if l[0] != '{' || l[len(l)-1] != '}' || !balanced(l) {
			return false
		}
	}
	return true
}

// balanced reports whether l's braces and brackets outside strings close.
func balanced(l []byte) bool {
	depth, in := 0, false
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case in && c == '\\':
			i++
		case c == '"':
			in = !in
		case in:
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
		}
	}
	return depth == 0 && !in
}

// recordCut returns a cut for a printed document: before the last line
// that opens a record at the indentation the sample's first record has.
func recordCut(t []byte) func([]byte) int {
	lines := bytes.Split(t, []byte{'\n'})
	var open []byte
	for i, l := range lines {
		if i == 0 || i == len(lines)-1 {
			continue
		}
		trim := bytes.TrimLeft(l, " \t")
		if len(trim) > 0 && trim[0] == '{' {
			open = append([]byte{'\n'}, l[:len(l)-len(trim)+1]...)
			break
		}
	}
	if open == nil {
		return func([]byte) int { return 0 }
	}
	return func(b []byte) int {
		k := bytes.LastIndex(b, open)
		if k <= 0 {
			return 0
		}
		return k + 1
	}
}
