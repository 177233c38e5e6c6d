package trace

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// people is the test copy: the same records in every format.
var people = [][4]string{
	{"17", "lena.morgan_4821173", "lena.morgan41@mail.example", "+12125123456"},
	{"42", "smith.noah_99", "nsmith7@inbox.example", "+447400123456"},
	{"3000000001", "ava.lee_17000001", "ava.lee17000001@post.example", "+121259012345"},
}

func formats() map[string]string {
	var b strings.Builder
	f := map[string]string{}
	b.WriteString("id,username,email,phone\n")
	for _, p := range people {
		fmt.Fprintf(&b, "%s,%s,%s,%s\n", p[0], p[1], p[2], p[3])
	}
	f["csv header"] = b.String()
	b.Reset()
	for _, p := range people {
		fmt.Fprintf(&b, "\"%s\";Some Name;%s;%s;%s\r\n", p[3], p[2], p[1], p[0])
	}
	f["csv no header, other order, ;"] = b.String()
	b.Reset()
	b.WriteString("Telephone\tHandle\tMail\tFull Name\tUserID\n")
	for _, p := range people {
		fmt.Fprintf(&b, "%s\t%s\t%s\tX Y\t%s\n", p[3], p[1], p[2], p[0])
	}
	f["tsv other names"] = b.String()
	b.Reset()
	// A header that names some columns (Nick) and not the others: those
	// are read by their values, and a count beside the ids is not an id.
	b.WriteString("Followers,Identifier,Nick,Contact,Mobile No\n")
	for i, p := range people {
		fmt.Fprintf(&b, "%d,%s,%s,%s,%s\n", 10+i, p[0], p[1], p[2], p[3])
	}
	f["csv header, some names unknown"] = b.String()
	b.Reset()
	b.WriteString("Score;Member ID;Nick\n")
	for i, p := range people {
		fmt.Fprintf(&b, "%d;%s;%s;%s;%s\n", 7+i, p[0], p[1], p[2], p[3])
	}
	f["csv header shorter than its rows, a number before the ids"] = b.String()
	b.Reset()
	for _, p := range people {
		fmt.Fprintf(&b, `{"id":"%s","username":"%s","full_name":"A \"B\"","email":"%s","phone":"%s","tags":[1,{"x":null}]}`+"\n", p[0], p[1], p[2], p[3])
	}
	f["ndjson"] = b.String()
	b.Reset()
	b.WriteString("[\n")
	for i, p := range people {
		if i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, "  {\n    \"id\": %s,\n    \"username\": \"%s\",\n    \"contact\": {\"email\": \"%s\", \"phone\": \"%s\"},\n    \"email\": \"%s\",\n    \"phone\": \"%s\"\n  }", p[0], p[1], p[2], p[3], p[2], p[3])
	}
	b.WriteString("\n]\n")
	f["json array, printed"] = b.String()
	b.Reset()
	b.WriteString(`{"users":{`)
	for i, p := range people {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"%s":{"id":"%s","username":"%s","email":"%s","phone":"%s"}`, p[0], p[0], p[1], p[2], p[3])
	}
	b.WriteString("}}")
	f["json object dump, one line"] = b.String()
	b.Reset()
	for _, p := range people {
		fmt.Fprintf(&b, `{"_id":{"$oid":"5f1d7a3e"},"id":{"$numberLong":"%s"},"username":"%s","email":"%s","phone":"%s"}`+"\n", p[0], p[1], p[2], p[3])
	}
	f["mongoexport"] = b.String()
	b.Reset()
	for _, p := range people {
		fmt.Fprintf(&b, `{"index":{"_index":"users","_id":"%s"}}`+"\n"+`{"id":"%s","username":"%s","email":"%s","phone":"%s"}`+"\n", p[0], p[0], p[1], p[2], p[3])
	}
	f["elasticsearch bulk"] = b.String()
	b.Reset()
	for _, p := range people {
		fmt.Fprintf(&b, `{"_index":"users","_type":"_doc","_id":"%s","_score":1,"_source":{"id":"%s","username":"%s","email":"%s","phone":"%s"}}`+"\n", p[0], p[0], p[1], p[2], p[3])
	}
	f["elasticdump"] = b.String()
	// The platform's id kept only in the store's key.
	b.Reset()
	for _, p := range people {
		fmt.Fprintf(&b, `{"_id":{"$numberLong":"%s"},"username":"%s","email":"%s","phone":"%s"}`+"\n", p[0], p[1], p[2], p[3])
	}
	f["mongoexport, id in _id"] = b.String()
	b.Reset()
	for _, p := range people {
		fmt.Fprintf(&b, `{"_index":"users","_type":"_doc","_id":"%s","_score":1,"_source":{"username":"%s","email":"%s","phone":"%s"}}`+"\n", p[0], p[1], p[2], p[3])
	}
	f["elasticdump, id in _id"] = b.String()
	b.Reset()
	for _, p := range people {
		fmt.Fprintf(&b, `{"_source":{"username":"%s","email":"%s","phone":"%s"},"_id":"%s"}`+"\n", p[1], p[2], p[3], p[0])
	}
	f["elasticdump, _id after _source"] = b.String()
	b.Reset()
	for _, p := range people {
		fmt.Fprintf(&b, `{"index":{"_index":"users","_id":"%s"}}`+"\n"+`{"username":"%s","email":"%s","phone":"%s"}`+"\n", p[0], p[1], p[2], p[3])
	}
	f["elasticsearch bulk, id in the action"] = b.String()
	b.Reset()
	for i, p := range people {
		fmt.Fprintf(&b, `{"update":{"_index":"users","_id":"%s"}}`+"\n", p[0])
		if i%2 == 0 {
			fmt.Fprintf(&b, `{"doc":{"username":"%s","email":"%s","phone":"%s"},"doc_as_upsert":true}`+"\n", p[1], p[2], p[3])
		} else {
			fmt.Fprintf(&b, `{"script":{"source":"ctx._source.n += 1"},"upsert":{"username":"%s","email":"%s","phone":"%s"}}`+"\n", p[1], p[2], p[3])
		}
	}
	f["elasticsearch bulk updates, id in the action"] = b.String()
	b.Reset()
	b.WriteString("_id,id,username,email,phone\n")
	for _, p := range people {
		fmt.Fprintf(&b, "ObjectId(5f1d7a3e5f1d7a3e5f1d7a3e),%s,%s,%s,%s\n", p[0], p[1], p[2], p[3])
	}
	f["mongoexport csv"] = b.String()
	b.Reset()
	b.WriteString("_id,username,email,phone\n")
	for i, p := range people {
		id := p[0]
		if i == 0 {
			id = "NumberLong(" + id + ")"
		}
		fmt.Fprintf(&b, "%s,%s,%s,%s\n", id, p[1], p[2], p[3])
	}
	f["mongoexport csv, id in _id"] = b.String()
	return f
}

// TestStoreIDCSV: a CSV's "_id" column (mongoexport's) is read as the
// JSON reader reads "_id": the id of a row with none, when numeric
// (NumberLong(161) too); an ObjectId(...) is no id and, before, was taken
// for a username by its values when no column was named one.
func TestStoreIDCSV(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"ObjectId, no username column", "_id,name,email\nObjectId(5f1d7a3e5f1d7a3e5f1d7a3e),Anton Martinez,a@mail.example\nObjectId(5f1d7a3e5f1d7a3e5f1d7a3f),Chiara Russo,c@mail.example\n", "||a@mail.example| ||c@mail.example|"},
		{"numeric, NumberLong, NumberInt", "_id,username\n161,a_1\nNumberLong(\"288\"),b_2\nNumberInt(7),c_3\n", "161|a_1|| 288|b_2|| 7|c_3||"},
		{"its own id wins", "username,_id,user_id\na_1,9,161\n", "161|a_1||"},
	} {
		got := readAll(t, []byte(c.in), 1)
		if strings.Join(got, " ") != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

// TestStoreID: a record with no id of its own takes a numeric "_id" (a
// number, $numberLong, $numberInt, a string of digits); an ObjectId or
// another value is no id, and a record's own id wins. Before, every "_"
// key was passed over: such a copy gave no subject, or no record at all.
func TestStoreID(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"number", `{"_id":161,"username":"a_1"}`, "161|a_1||"},
		{"numberInt", `{"_id":{"$numberInt":"161"},"username":"a_1"}`, "161|a_1||"},
		{"digits, nothing else read", `{"_id":"161","name":"Anton Martinez"}`, "161|||"},
		{"ObjectId", `{"_id":{"$oid":"5f1d7a3e5f1d7a3e5f1d7a3e"},"username":"a_1"}`, "|a_1||"},
		{"ObjectId of digits", `{"_id":{"$oid":"000000000000000000000001"},"username":"a_1"}`, "|a_1||"},
		{"a date", `{"_id":{"$date":1700000000},"username":"a_1"}`, "|a_1||"},
		{"not numeric", `{"_id":"u161","username":"a_1"}`, "|a_1||"},
		{"its own id first", `{"_id":{"$numberLong":"9"},"id":"161","username":"a_1"}`, "161|a_1||"},
		{"its own id after", `{"id":"161","_id":"9","username":"a_1"}`, "161|a_1||"},
		{"a bulk delete is no record", `{"delete":{"_index":"users","_id":"161"}}` + "\n" + `{"username":"a_1"}`, "|a_1||"},
		{"a bulk update's doc", `{"update":{"_id":"161"}}` + "\n" + `{"doc":{"username":"a_1"}}`, "161|a_1||"},
		{"a bulk update's upsert, its doc's own id first", `{"update":{"_id":"161"}}` + "\n" + `{"doc":{"id":"9","username":"a_1"},"upsert":{"username":"b_2"}}`, "161|b_2|| 9|a_1||"},
		{"an index's document's doc member is its own", `{"index":{"_id":"161"}}` + "\n" + `{"doc":{"username":"a_1"},"username":"b_2"}`, "161|b_2|| |a_1||"},
		{"a bulk action's id is the next line's only", `{"index":{"_id":"161"}}` + "\n" + `{"username":"a_1"}` + "\n" + `{"username":"b_2"}`, "161|a_1|| |b_2||"},
	} {
		got := readAll(t, []byte(c.in+"\n"), 1)
		if strings.Join(got, " ") != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

func readAll(t testing.TB, in []byte, workers int) []string {
	var mu sync.Mutex
	var got []string
	_, err := Read(bytes.NewReader(in), workers, func(_ int, r *Record) {
		mu.Lock()
		got = append(got, fmt.Sprintf("%s|%s|%s|%s", r.ID, r.Username, r.Email, r.Phone))
		mu.Unlock()
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	return got
}

func TestFormats(t *testing.T) {
	var want []string
	for _, p := range people {
		want = append(want, strings.Join(p[:], "|"))
	}
	sort.Strings(want)
	for name, body := range formats() {
		for _, gz := range []bool{false, true} {
			in := []byte(body)
			if gz {
				var z bytes.Buffer
				w := gzip.NewWriter(&z)
				w.Write(in)
				w.Close()
				in = z.Bytes()
			}
			got := readAll(t, in, 2)
			var kept []string // the array's nested contact object is a record too
			for _, g := range got {
				if !strings.HasPrefix(g, "|") {
					kept = append(kept, g)
				}
			}
			if fmt.Sprint(kept) != fmt.Sprint(want) {
				t.Errorf("%s (gzip %v):\ngot  %q\nwant %q", name, gz, got, want)
			}
		}
	}
}

// TestChunks: a copy far larger than a chunk reads every record once, on
// every core, in each cuttable format.
func TestChunks(t *testing.T) {
	for _, name := range []string{"ndjson", "json array, printed", "csv header", "bulk"} {
		var b bytes.Buffer
		n := 0
		switch name {
		case "ndjson":
			for b.Len() < 3*chunkSize {
				fmt.Fprintf(&b, `{"id":"%d","username":"u_%d","bio":"%s"}`+"\n", n, n, strings.Repeat("x", 200))
				n++
			}
		case "json array, printed":
			b.WriteString("{\"users\": [\n")
			for b.Len() < 3*chunkSize {
				if n > 0 {
					b.WriteString(",\n")
				}
				fmt.Fprintf(&b, "    {\n      \"id\": \"%d\",\n      \"bio\": \"%s\"\n    }", n, strings.Repeat("y", 200))
				n++
			}
			b.WriteString("\n]}\n")
		case "bulk": // each document takes its action line's _id, across chunks too
			for b.Len() < 3*chunkSize {
				if n%3 == 2 { // an update: its doc's record takes it
					fmt.Fprintf(&b, `{"update":{"_index":"users","_id":"%d"}}`+"\n"+`{"doc":{"bio":"%s","username":"u_%d"}}`+"\n", n, strings.Repeat("w", 200+n%7), n)
				} else {
					fmt.Fprintf(&b, `{"index":{"_index":"users","_id":"%d"}}`+"\n"+`{"bio":"%s","username":"u_%d"}`+"\n", n, strings.Repeat("w", 200+n%7), n)
				}
				n++
			}
		default:
			b.WriteString("id,bio\n")
			for b.Len() < 3*chunkSize {
				fmt.Fprintf(&b, "%d,%s\n", n, strings.Repeat("z", 200))
				n++
			}
		}
		got := readAll(t, b.Bytes(), 3)
		if len(got) != n {
			t.Fatalf("%s: %d records read of %d", name, len(got), n)
		}
		for _, g := range got {
			if name == "bulk" && !strings.HasPrefix(g, strings.TrimPrefix(strings.Split(g, "|")[1], "u_")+"|") {
				t.Fatalf("bulk: a document without its action's id: %s", g)
			}
		}
	}
}

// TestLongLine: a line longer than a chunk (a bio of 2.5 chunks) is read
// whole with the records around it; it was split again as it was, without
// end, once carried as long as a chunk.
func TestLongLine(t *testing.T) {
	for _, tail := range []string{"\n{\"id\":\"4\"}\n", ""} {
		in := `{"id":"1"}` + "\n" + `{"id":"2"}` + "\n" + `{"id":"3","bio":"` +
			strings.Repeat("x", chunkSize*5/2) + `"}` + tail
		got := readAll(t, []byte(in), 2)
		want := strings.Count(in, `"id"`)
		if len(got) != want {
			t.Fatalf("%d records read of %d", len(got), want)
		}
	}
}

// TestScanEdges: the names of the fields told before any search (id,
// username, email, phone followed by '":') and every other way to write a
// member read alike, as the scanner read them before it took that path.
func TestScanEdges(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string // id|username|email|phone of each record
		bad      int
	}{
		{"spaces around the colon, escaped quote, number",
			`{"id" :17,"username" : "x","email":"e\"@x","phone":12345}`,
			[]string{`17|x|e"@x|12345`}, 0},
		{"names that start like the fields",
			`{"idx":1,"ids":"2","emails":"x","phones":"y","usernames":"z","usernam":"q","username":{"$numberLong":"5"}}`,
			[]string{`|5||`}, 0},
		{"one-letter names, wrapper, array, null, a variant after the field",
			`{"i":1,"e":2,"p":3,"u":4,"id":{"$oid":"aa"},"email":["a"],"phone":null,"User_ID":"8"}`,
			[]string{`aa|||`}, 0},
		{"escapes", `{"username":"a\\","email":"b\\\"c","id":"\u0031"}`, []string{`1|a\|b\"c|`}, 0},
		{"spaces everywhere", `{ "id": "1" , "username": "u" }`, []string{`1|u||`}, 0},
		{"cut short", `{"id":"1","username":"u"`, nil, 1},
		{"values past 32 bytes",
			`{"id":"1","username":"lena.morgan_17","email":"lena.morgan41@mail.example.org.long","phone":"+12125123456"}`,
			[]string{`1|lena.morgan_17|lena.morgan41@mail.example.org.long|+12125123456`}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			bad := scanJSON([]byte(tc.in), func(r *Record) {
				got = append(got, fmt.Sprintf("%s|%s|%s|%s", r.ID, r.Username, r.Email, r.Phone))
			})
			if fmt.Sprint(got) != fmt.Sprint(tc.want) || bad != tc.bad {
				t.Fatalf("got %q (%d bad), want %q (%d bad)", got, bad, tc.want, tc.bad)
			}
		})
	}
}

// TestStr: a string's end and escapes are found at any length and with
// escapes anywhere (the first 32 bytes are searched 8 at a time, the rest
// with IndexByte), whatever follows it.
func TestStr(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	alphabet := []rune{'a', 'b', '"', '\\', '/', '\n', 'é', '€', ' '}
	for range 20000 {
		r := make([]rune, rng.IntN(60))
		for i := range r {
			r[i] = alphabet[rng.IntN(len(alphabet))]
			if rng.IntN(3) > 0 {
				r[i] = 'x'
			}
		}
		want := string(r)
		enc, _ := json.Marshal(want)
		tail := []string{`,"k":"v"}`, `"`, `\"`, ``}[rng.IntN(4)]
		end, esc := strEnd(append(enc, tail...), 1, true)
		if end != len(enc)-1 {
			t.Fatalf("%q: end %d of %d", enc, end, len(enc))
		}
		raw := enc[1:end]
		if esc != bytes.Contains(raw, []byte{'\\'}) {
			t.Fatalf("%q: esc %v", enc, esc)
		}
		if esc && string(unescape(raw)) != want {
			t.Fatalf("%q: unescaped %q", enc, unescape(raw))
		}
	}
	for _, bad := range []string{`"abc`, `"abcdefghijklmnopqrstuvwxyz\`, `"\`, `"abcdefg\"`} {
		if end, _ := strEnd([]byte(bad), 1, true); end >= 0 {
			t.Fatalf("%q read as a string", bad)
		}
	}
}

// TestGzipCut: a gzip'd copy cut short (a partial download of a leaked
// dump) is traced as far as it goes and says so; one whose header is cut
// or whose checksum is wrong is an error, never a panic or an empty read
// passed off as whole.
func TestGzipCut(t *testing.T) {
	var b bytes.Buffer
	for i := range 20000 {
		fmt.Fprintf(&b, `{"id":"%d","email":"u%d@example.org"}`+"\n", i, i)
	}
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	w.Write(b.Bytes())
	w.Close()
	whole := z.Bytes()

	var n atomic.Int64
	st, err := Read(bytes.NewReader(whole[:len(whole)/2]), 2, func(int, *Record) { n.Add(1) }, nil)
	if err != nil {
		t.Fatalf("cut stream: %v", err)
	}
	if !st.Truncated || n.Load() == 0 || n.Load() >= 20000 {
		t.Fatalf("cut stream: truncated %v, %d records read of 20000", st.Truncated, n.Load())
	}
	// The report's inputs are snake_case, as all its other fields.
	js, _ := json.Marshal(st)
	if want := fmt.Sprintf(`{"format":"json-lines","gzip":true,"bytes":%d,"malformed":%d,"truncated":true}`, st.Bytes, st.Malformed); string(js) != want {
		t.Errorf("stats as JSON:\n got %s\nwant %s", js, want)
	}
	st, err = Read(bytes.NewReader(whole), 2, func(int, *Record) {}, nil)
	if err != nil || st.Truncated {
		t.Fatalf("whole stream: truncated %v, err %v", st.Truncated, err)
	}

	if _, err := Read(bytes.NewReader(whole[:5]), 2, func(int, *Record) {}, nil); err == nil {
		t.Fatal("a cut header read without an error")
	}
	bad := bytes.Clone(whole)
	bad[len(bad)-6] ^= 0xff // the CRC-32 in the trailer
	if _, err := Read(bytes.NewReader(bad), 2, func(int, *Record) {}, nil); err == nil {
		t.Fatal("a wrong checksum read without an error")
	}
}

// TestOtherCompressionRefused: a copy in a container Read does not open
// (xz, bzip2, zstd, lz4, zip, 7z) is an error naming it and the command
// that opens it, not a read of its bytes as text that finds no record;
// text that merely begins like one (a username "BZhang") still reads.
func TestOtherCompressionRefused(t *testing.T) {
	ndjson := []byte(formats()["ndjson"])
	var zst bytes.Buffer
	zw, err := zstd.NewWriter(&zst)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(ndjson)
	zw.Close()
	var zp bytes.Buffer
	aw := zip.NewWriter(&zp)
	fw, _ := aw.Create("users.ndjson")
	fw.Write(ndjson)
	aw.Close()
	for name, c := range map[string]struct {
		in   []byte
		want string
	}{
		"xz":    {append([]byte("\xfd7zXZ\x00\x00\x04\xe6\xd6\xb4\x46"), ndjson...), "xz-compressed"},
		"bzip2": {append([]byte("BZh91AY&SY\x00\x01"), ndjson...), "bzip2-compressed"},
		"zstd":  {zst.Bytes(), "zstd-compressed"},
		"lz4":   {append([]byte("\x04\x22\x4d\x18\x64\x40\xa7"), ndjson...), "lz4-compressed"},
		"zip":   {zp.Bytes(), "a zip archive"},
		"7z":    {append([]byte("7z\xbc\xaf\x27\x1c\x00\x04"), ndjson...), "a 7z archive"},
	} {
		_, err := Read(bytes.NewReader(c.in), 2, func(int, *Record) {}, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "warden trace -") {
			t.Errorf("%s: err %v, want one naming %q and how to open it", name, err, c.want)
		}
	}
	got := readAll(t, []byte("BZhang.li_17,17\nsmith.noah_99,42\n"), 2)
	if fmt.Sprint(got) != "[17|BZhang.li_17|| 42|smith.noah_99||]" {
		t.Errorf("a CSV beginning with BZh: %q", got)
	}
}
