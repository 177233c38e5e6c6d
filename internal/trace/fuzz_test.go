package trace

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// FuzzRead: no input makes a reader panic or hang (in chunks of any size), and a record's fields
// are slices of what was read (the reader invents nothing), whatever the
// format the input is sniffed as.
func FuzzRead(f *testing.F) {
	for _, body := range formats() {
		f.Add([]byte(body))
	}
	f.Add([]byte(`{"id":{"$numberLong":"7"},"x":[{"email":"a@b"}]}`))
	f.Add([]byte("[{\"id\":1},\n{\"id\":\"2\\\"\"}\n]"))
	f.Add([]byte("\"a,\"\"b\",c\n1,2,3\n"))
	// The field names told by a compare before any search, and names
	// that start like them.
	f.Add([]byte(`{"id" :17,"username" : "x","email":"e\"@x","phone":12345}` + "\n" +
		`{"idx":1,"usernam":"q","username":{"$numberLong":"5"},"phone":"+4915123000001"}` + "\n"))
	// A store's "_id" as the id: mongoexport, elasticdump, bulk actions.
	f.Add([]byte(`{"_id":{"$numberLong":"161"},"name":"x"}` + "\n" + `{"_index":"u","_id":"7","_source":{"username":"a"}}` + "\n" +
		`{"index":{"_id":"9"}}` + "\n" + `{"username":"b"}` + "\n" + `{"delete":{"_id":"3"}}` + "\n"))
	// SQL dumps of every tool, nasty strings in them, and statements cut.
	for i, tool := range sqlTools {
		f.Add([]byte(dumpOf(tool, peopleRows(), [][2]int{{17, 42}}, 1+i%2)))
	}
	f.Add([]byte("-- MySQL dump\nINSERT INTO `u` (`id`,`username`) VALUES (1,_binary 'o\\'b'),(2,replace('a','\\n',char(10))),(3,'x\\\"'));\n"))
	f.Add([]byte("COPY u (id, username) FROM stdin;\n1\ta\\\n\n\\.\r\nINSERT INTO u VALUES (2, 'b'::text) ON CONFLICT DO NOTHING;\nCREATE FUNCTION f() AS $x$ ; ' $x$;"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Chunks of 64 bytes too: a SQL dump is cut by its own framer,
		// which must never cut where the reader cannot start.
		for _, c := range []struct{ workers, size int }{{1, chunkSize}, {3, chunkSize}, {3, 64}} {
			_, err := read(bytes.NewReader(data), c.workers, c.size, func(_ int, r *Record) {
				if r.empty() {
					t.Fatal("an empty record emitted")
				}
			}, nil)
			// Only a gzip stream can be wrong (a bad header or checksum),
			// and a container or a pg_dump archive Read does not read is
			// refused; everything else is read as far as it makes sense.
			gz := len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b
			if err != nil && !gz && !strings.Contains(err.Error(), "decompress it first") && !strings.Contains(err.Error(), "pg_restore") && len(data) < maxChunk {
				t.Fatalf("read: %v", err)
			}
		}
	})
}

// FuzzSQLCuts: a dump whose strings hold anything (the fuzzer's bytes, as
// each tool escapes them) reads the same records in chunks of any size as
// in one, and none malformed: the framer never cuts where a string is
// open, whatever the strings hold.
func FuzzSQLCuts(f *testing.F) {
	for i, v := range nasty {
		f.Add(v+"\x00"+nasty[(i+3)%len(nasty)], uint8(i), uint8(i+1), uint16(40+i*37))
	}
	f.Fuzz(func(t *testing.T, data string, tool, rows uint8, size uint16) {
		vals := strings.Split(data, "\x00")
		var us []person
		for i := range 40 {
			v := vals[i%len(vals)]
			us = append(us, person{fmt.Sprint(100 + i), fmt.Sprintf("u_%d", i), v, v + "@x.example", ""})
		}
		in := dumpOf(sqlTools[int(tool)%len(sqlTools)], us, [][2]int{{100, 101}}, 1+int(rows)%50)
		whole, st := readSQL(t, in, 1, 1<<22)
		if st.Malformed != 0 {
			t.Fatalf("%d malformed in one chunk", st.Malformed)
		}
		got, st := readSQL(t, in, 3, 16+int(size)%4096)
		if fmt.Sprint(got) != fmt.Sprint(whole) || st.Malformed != 0 {
			t.Fatalf("in chunks of %d: %d records (%d malformed), in one: %d", 16+int(size)%4096, len(got), st.Malformed, len(whole))
		}
	})
}
