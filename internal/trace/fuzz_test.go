package trace

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzRead: no input makes a reader panic or hang, and a record's fields
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
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, w := range []int{1, 3} {
			_, err := Read(bytes.NewReader(data), w, func(_ int, r *Record) {
				if r.empty() {
					t.Fatal("an empty record emitted")
				}
			}, nil)
			// Only a gzip stream can be wrong (a bad header or checksum),
			// and a container or a SQL dump Read does not read is refused; everything
			// else is read as far as it makes sense.
			gz := len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b
			if err != nil && !gz && !strings.Contains(err.Error(), "decompress it first") && !strings.Contains(err.Error(), "SQL dump") && len(data) < maxChunk {
				t.Fatalf("read: %v", err)
			}
		}
	})
}
