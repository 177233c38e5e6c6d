package inspect

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// pad is whitespace after a body: with it every name is far enough from
// the end for the scanner's word compares, without it the names near the
// end take the byte-wise path; both must match alike.
const pad = "                                "

// inspectBoth inspects body as it is and padded, and fails unless both
// find the same; it returns the first Result.
func inspectBoth(t *testing.T, rt *Route, body string) (*Result, error) {
	t.Helper()
	var r, p Result
	err := r.Inspect(rt, []byte(body))
	errP := p.Inspect(rt, []byte(body+pad))
	if (err == nil) != (errP == nil) {
		t.Fatalf("%s: error %v, padded %v", body, err, errP)
	}
	if err == nil && !reflect.DeepEqual(collect(&r), collect(&p)) {
		t.Fatalf("%s: found %+v, padded %+v", body, collect(&r), collect(&p))
	}
	return &r, err
}

// sameAsPlain inspects escaped (as it is and padded) and plain on path's
// route and fails unless both find the same; it returns the two Results.
func sameAsPlain(t *testing.T, m *Map, path, escaped, plain string) (*Result, *Result) {
	t.Helper()
	mt, ok := m.Match("GET", path)
	if !ok {
		t.Fatal("no route")
	}
	r, err := inspectBoth(t, mt.Route, escaped)
	if err != nil {
		t.Fatal(err)
	}
	var p Result
	if err := p.Inspect(mt.Route, []byte(plain)); err != nil {
		t.Fatal(err)
	}
	if got, want := collect(r), collect(&p); !reflect.DeepEqual(got, want) {
		t.Errorf("escaped %+v, plain %+v", got, want)
	}
	return r, &p
}

// TestEscapedNames: a member name written with escapes is the name it
// spells, for records' ids, classes, authors and links alike: each body
// is found as its plain twin is.
func TestEscapedNames(t *testing.T) {
	m := labMap(t)
	for _, tt := range []struct{ name, path, escaped, plain string }{
		{"contact", "/v1/users/5", `{"id":"5","em\u0061il":"a@b"}`, `{"id":"5","email":"a@b"}`},
		{"every name escaped", "/v1/users/5",
			`{"\u0069\u0064":"5","\u0065\u006D\u0061\u0069\u006c":"a@b","\u0070hone":"1","\u0075sername":"u","full\u005fname":"F"}`,
			`{"id":"5","email":"a@b","phone":"1","username":"u","full_name":"F"}`},
		{"escaped solidus and spaces", "/v1/users/5", ` { "\/id" : 1 , "id" : "5" , "ph\u006fne" : "1" } `, `{"/id":1,"id":"5","phone":"1"}`},
		{"null under an escaped name", "/v1/users/5", `{"id":"5","em\u0061il":null,"phone":"1"}`, `{"id":"5","email":null,"phone":"1"}`},
		{"other escapes are other names", "/v1/users/5", `{"id":"5","email\n":"a","em\"ail":"b","\u00e9mail":"c"}`, `{"id":"5"}`},
		{"links", "/v1/users/7/followers", `{"users":[{"\u0069d":"1","user\u006eame":"a"},{"id":"2"}],"n":1}`,
			`{"users":[{"id":"1","username":"a"},{"id":"2"}],"n":1}`},
		{"records under an escaped name", "/v1/users/7/followers", `{"\u0075sers":[{"id":"1"},{"\u0069d":"2"}]}`,
			`{"users":[{"id":"1"},{"id":"2"}]}`},
		{"authors", "/v1/feed", `{"posts":[{"id":"p","\u0061uthor":{"\u0069d":"9","username":"u"}}]}`,
			`{"posts":[{"id":"p","author":{"id":"9","username":"u"}}]}`},
	} {
		t.Run(tt.name, func(t *testing.T) { sameAsPlain(t, m, tt.path, tt.escaped, tt.plain) })
	}
}

// TestEscapedNamesMasked: masking nulls the value under an escaped name
// as under a plain one, keeps the name as sent, and names the field in the
// note as configured; the Access records the class.
func TestEscapedNamesMasked(t *testing.T) {
	m := labMap(t)
	mt, _ := m.Match("GET", "/v1/users/5")
	body := `{"\u0069d":"5","em\u0061il":"a@b","\u0070hone":"+1 555","username":"u"}`
	r, err := inspectBoth(t, mt.Route, body)
	if err != nil {
		t.Fatal(err)
	}
	contact := mt.Route.Class("contact")
	if !r.Classes(0).Has(contact) {
		t.Fatalf("classes %b: contact not found", r.Classes(0))
	}
	if !r.Mask(0, contact, "contact-account-day") {
		t.Fatal("Mask: nothing to mask")
	}
	out := r.Rewrite(nil, "q1")
	want := `{"_warden":{"masked":["email","phone"],"rules":["contact-account-day"],"request_id":"q1"},` +
		`"\u0069d":"5","em\u0061il":null,"\u0070hone":null,"username":"u"}`
	if string(out) != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
	var acc Access
	r.Fill(&acc, true)
	if len(acc.Records) != 1 || acc.Records[0].ID != "5" || !acc.Records[0].Classes.Has(contact) || !acc.Records[0].Masked.Has(contact) {
		t.Fatalf("access records %+v", acc.Records)
	}
}

// TestEscapedNamesOwnMap: names a body can hold only escaped (a control
// character), names past the scanner's sixteen-byte words, and names
// spelt with surrogate pairs.
func TestEscapedNamesOwnMap(t *testing.T) {
	m, err := Compile(Config{Routes: []RouteConfig{{Route: "GET /x", Records: []string{"$.list[*]"}, ID: "a_rather_long_identifier",
		Classes: map[string][]string{"c": {"tab\there", "emoji_😀", "a_very_long_member_name_indeed"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	mt, _ := m.Match("GET", "/x")
	for _, tt := range []struct {
		body    string
		id      string
		present bool
	}{
		{`{"list":[{"a_rather_long_identifier":"1","tab\there":"v"}]}`, "1", true},
		{`{"list":[{"a_rather_long_identifi\u0065r":"2","tab\u0009here":"v"}]}`, "2", true},
		{`{"list":[{"a_rather_long_identifier":"3","emoji_\ud83d\ude00":"v"}]}`, "3", true},
		{`{"list":[{"a_rather_long_identifier":"4","emoji_😀":"v"}]}`, "4", true},
		{`{"list":[{"a_rather_long_identifier":"5","emoji_\ud83d":"v","emoji_\ude00":"v","emoji_\ude00\ud83d":"v"}]}`, "5", false},
		{`{"list":[{"a_rather_long_identifier":"6","a_very_long_member_name_inde\u0065d":"v"}]}`, "6", true},
		{`{"list":[{"a_rather_long_identifier":"7","a_very_long_member_name_indeed\u0000":"v"}]}`, "7", false},
	} {
		r, err := inspectBoth(t, mt.Route, tt.body)
		if err != nil {
			t.Fatalf("%s: %v", tt.body, err)
		}
		if r.Len() != 1 || string(r.ID(0)) != tt.id || r.Classes(0).Has(0) != tt.present {
			t.Errorf("%s: %d records, id %q, classes %b; want id %s, present %v", tt.body, r.Len(), r.ID(0), r.Classes(0), tt.id, tt.present)
		}
	}
}

// TestEscapedNamesMalformed: a name with an escape JSON does not have is
// malformed, as such a value is; a lone surrogate is valid JSON (it
// decodes to U+FFFD) and names nothing.
func TestEscapedNamesMalformed(t *testing.T) {
	m := labMap(t)
	mt, _ := m.Match("GET", "/v1/users/5")
	for _, body := range []string{
		`{"em\x61il":"a"}`, `{"em\u00G1il":"a"}`, `{"em\u61":"a"}`, `{"email\`, `{"em\u006`, `{"em\'ail":"a"}`,
		`{"id":"5","em\u0061il` + "\x01" + `":"a"}`, `{"\U0065mail":"a"}`,
	} {
		if _, err := inspectBoth(t, mt.Route, body); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Inspect = %v, want ErrMalformed", body, err)
		}
	}
	r, err := inspectBoth(t, mt.Route, `{"\ud800":"a","em\udead\u0061il":"b","id":"5"}`)
	if err != nil {
		t.Fatal(err)
	}
	if string(r.ID(0)) != "5" || r.Classes(0) != 0 {
		t.Errorf("id %q, classes %b", r.ID(0), r.Classes(0))
	}
}

// TestEscapedNamesInserted: ids under escaped names in an inserted value
// (a canary) are read as under plain ones.
func TestEscapedNamesInserted(t *testing.T) {
	m := labMap(t)
	for _, tt := range []struct{ path, body, ins, want string }{
		{"/v1/users/1/followers", `{"users":[{"\u0069d":"1"}]}`, `{"\u0069d":"c1","username":"u"}`, "[c1]"},
		{"/v1/feed", `{"posts":[{"id":"p","author":{"id":"1"}}]}`, `{"id":"p2","\u0061uthor":{"\u0069\u0064":"c2"}}`, "[c2]"},
	} {
		mt, _ := m.Match("GET", tt.path)
		var r Result
		if err := r.Inspect(mt.Route, []byte(tt.body)); err != nil {
			t.Fatal(err)
		}
		if !r.Insert(0, []byte(tt.ins)) {
			t.Fatalf("insert %s", tt.ins)
		}
		var got []string
		for _, l := range r.InsertedLinks(nil) {
			got = append(got, string(l))
		}
		if fmt.Sprint(got) != tt.want {
			t.Errorf("%s: links %q, want %s", tt.ins, got, tt.want)
		}
		if out := r.Rewrite(nil, "q"); !json.Valid(out) || !strings.Contains(string(out), tt.ins+",") {
			t.Errorf("rewrite %s", out)
		}
	}
}

// TestUnescape holds unescape to encoding/json on every escape JSON has,
// surrogates paired, lone and misordered.
func TestUnescape(t *testing.T) {
	for _, raw := range []string{
		``, `plain`, `em\u0061il`, `\"\\\/\b\f\n\r\t`, `\u0000\u001f\u007F\u0080\u07ff\u0800\uFFFF\uffFd`,
		`\ud83d\ude00`, `a\uD83D\uDE00b`, `\udbff\udfff`, `\ud800\udc00`,
		`\ud83d`, `\ude00`, `\ud83dx`, `\ud83d\u0041`, `\ud83d\ud83d\ude00`, `\ude00\ud83d`, `\ud83d\n`,
		`é\u00e9é`, `x\\u0041`,
	} {
		var want string
		if err := json.Unmarshal([]byte(`"`+raw+`"`), &want); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if got := string(unescape([]byte("keep:"), []byte(raw))); got != "keep:"+want {
			t.Errorf("unescape(%s) = %q, want %q", raw, got, want)
		}
	}
}

// TestEscapedValues: a string id, author or link written with escapes is
// the string it spells ("\u0035" is 5): the Result and the Access it
// fills are its plain twin's, so the ledger names the subject that exists
// and the link memory remembers the id a look-up will ask for.
func TestEscapedValues(t *testing.T) {
	m := labMap(t)
	long := "123456789012345678901" // past the scanner's sixteen-byte word compare
	for _, tt := range []struct{ name, path, escaped, plain string }{
		{"id", "/v1/users/5", `{"id":"\u0035","email":"a@b"}`, `{"id":"5","email":"a@b"}`},
		{"id under an escaped name", "/v1/users/5", `{"\u0069d":"\u0035"}`, `{"id":"5"}`},
		{"number id after an escaped name", "/v1/users/5", `{"username":"\u0061","\u0069d":5}`, `{"username":"a","id":5}`},
		{"plain id after an escaped value", "/v1/users/5", `{"username":"\u0061","id":"5"}`, `{"username":"a","id":"5"}`},
		{"long ids", "/v1/users/5", `{"id":"12345678901234567890\u0031"}`, `{"id":"` + long + `"}`},
		{"links", "/v1/users/7/followers",
			`{"users":[{"id":"\u0031\u0032","username":"a"},{"id":"a\/b"},{"id":"\ud83d\ude00"},{"id":"` + long + `"},{"id":7}]}`,
			`{"users":[{"id":"12","username":"a"},{"id":"a/b"},{"id":"😀"},{"id":"` + long + `"},{"id":7}]}`},
		{"authors", "/v1/feed", `{"posts":[{"id":"p\u0031","author":{"id":"\u0039","username":"u"}},{"id":"p2","author":{"id":"\u0031\u0030"}}]}`,
			`{"posts":[{"id":"p1","author":{"id":"9","username":"u"}},{"id":"p2","author":{"id":"10"}}]}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, p := sameAsPlain(t, m, tt.path, tt.escaped, tt.plain)
			var ea, pa Access
			r.Fill(&ea, true)
			p.Fill(&pa, true)
			if !reflect.DeepEqual(ea, pa) {
				t.Errorf("escaped fills %+v, plain %+v", ea, pa)
			}
		})
	}
}

// TestEscapedValuesSpelt: an escaped backslash is a backslash, not the
// start of an escape ("\\u0035" is \u0035, six bytes); a lone surrogate
// is U+FFFD, as encoding/json reads it.
func TestEscapedValuesSpelt(t *testing.T) {
	m := labMap(t)
	mt, _ := m.Match("GET", "/v1/users/7/followers")
	r, err := inspectBoth(t, mt.Route, `{"users":[{"id":"\\u0035"},{"id":"\ud800x"},{"id":"\"\n"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`\u0035`, "\uFFFDx", "\"\n"}
	if got := collect(r); !reflect.DeepEqual(got.ids, want) || !reflect.DeepEqual(got.links, want) {
		t.Errorf("ids %q links %q, want %q", got.ids, got.links, want)
	}
}

// TestEscapedValuesScalarRecords: records that are strings themselves
// (an array of ids, or the whole answer one) are read through act and
// scalar, not the scanner's inline path: decoded there as well.
func TestEscapedValuesScalarRecords(t *testing.T) {
	m, err := Compile(Config{Routes: []RouteConfig{
		{Route: "GET /ids", Records: []string{"$.ids[*]"}, Links: []string{"$.ids[*]"}},
		{Route: "GET /one", Records: []string{"$"}, Links: []string{"$"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ path, escaped, plain string }{
		{"/ids", `{"ids":["\u0035","6","\u0037\u0037",8,"` + "x" + `\/y"]}`, `{"ids":["5","6","77",8,"x/y"]}`},
		{"/one", `"\u0035"`, `"5"`},
		{"/one", ` "\u0035" `, `"5"`},
	} {
		mt, _ := m.Match("GET", tt.path)
		r, err := inspectBoth(t, mt.Route, tt.escaped)
		if err != nil {
			t.Fatalf("%s: %v", tt.escaped, err)
		}
		var p Result
		if err := p.Inspect(mt.Route, []byte(tt.plain)); err != nil {
			t.Fatal(err)
		}
		if got, want := collect(r), collect(&p); !reflect.DeepEqual(got, want) || len(want.links) == 0 {
			t.Errorf("%s: escaped %+v, plain %+v", tt.escaped, got, want)
		}
	}
}

// TestEscapedValuesInserted: links in an inserted value (a canary) are
// decoded as the answer's own are.
func TestEscapedValuesInserted(t *testing.T) {
	m := labMap(t)
	mt, _ := m.Match("GET", "/v1/users/1/followers")
	var r Result
	if err := r.Inspect(mt.Route, []byte(`{"users":[{"id":"1"}]}`)); err != nil {
		t.Fatal(err)
	}
	if !r.Insert(0, []byte(`{"id":"c\u0031","username":"u"}`)) {
		t.Fatal("insert")
	}
	if got := r.InsertedLinks(nil); len(got) != 1 || string(got[0]) != "c1" {
		t.Errorf("inserted links %q, want [c1]", got)
	}
}
