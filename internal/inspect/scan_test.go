package inspect

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestKeyMatch: member names are matched by word compares against the body
// (see node.prepare); names near the end of the body, longer than eight
// bytes and prefixes of known names must behave as a plain string compare
// would; escaped names as a compare of the string they spell.
func TestKeyMatch(t *testing.T) {
	m, err := Compile(Config{Routes: []RouteConfig{
		{Route: "GET /k", Records: []string{"$"}, ID: "id",
			Classes: map[string][]string{"a": {"a_rather_long_member_name", "full_name", "x"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	mt, _ := m.Match("GET", "/k")
	rt := mt.Route
	const long, full, x = 1, 1, 1 // all fields of class "a", bit 0
	for _, tt := range []struct {
		body    string
		id      string
		classes ClassSet
	}{
		{`{"id":1}`, "1", 0},
		{`{"id":"7"}`, "7", 0},
		{`{"x":1}`, "", x},
		{`{"x":1,"id":2}`, "2", x},
		{`{"idx":1,"i":2,"xid":3}`, "", 0},
		{`{"full_name":"f"}`, "", full},
		{`{"full_nam":"f","full_namex":"g"}`, "", 0},
		{`{"a_rather_long_member_name":"v"}`, "", long},
		{`{"a_rather_long_member_nam":"v","a_rather_long_member_name_":"w"}`, "", 0},
		{`{"a_rather_long_member_name" : "v"}`, "", long},
		{`{"\u0069d":"1","x\"":1}`, "1", 0},
		{`{"\u0078":1,"full\u005Fname":2,"a_rather_long_member_nam\u0065":3}`, "", x | full | long},
		{`{"x\\":1}`, "", 0},
		{`{"ab":1,"x":2}`, "", x},
	} {
		var r Result
		if err := r.Inspect(rt, []byte(tt.body)); err != nil {
			t.Fatalf("%s: %v", tt.body, err)
		}
		if got := string(r.ID(0)); got != tt.id || r.Classes(0) != tt.classes {
			t.Errorf("%s: id %q classes %b, want %q %b", tt.body, got, r.Classes(0), tt.id, tt.classes)
		}
	}
	for _, body := range []string{`{"id`, `{"id"`, `{"id":`, `{"x`, `{"full_name`, `{"full_name"`,
		`{"a_rather_long_member_name`, "{\"i\x01\":1}", `{"full_name\`} {
		var r Result
		if err := r.Inspect(rt, []byte(body)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", body, err)
		}
	}
}

// TestKeyLengths: names of every length around the eight- and sixteen-byte
// words, each next to near misses (one byte short, one byte more, last
// byte changed), anywhere in the body including its very end.
func TestKeyLengths(t *testing.T) {
	for n := 1; n <= 34; n++ {
		name := strings.Repeat("k", n-1) + "z"
		m, err := Compile(Config{Routes: []RouteConfig{{Route: "GET /k", Records: []string{"$"}, ID: name}}})
		if err != nil {
			t.Fatal(err)
		}
		mt, _ := m.Match("GET", "/k")
		for _, tt := range []struct{ body, id string }{
			{`{"` + name + `":"v"}`, "v"},
			{`{"` + name + `":1}`, "1"},
			{`{"` + name[:n-1] + `":1,"` + name + `y":2,"` + name[:n-1] + `y":3}`, ""},
			{`{"` + name[:n-1] + `":1,"` + name + `":22,"x":3}`, "22"},
			{`{"` + name + `" : 4 }`, "4"},
		} {
			var r Result
			if err := r.Inspect(mt.Route, []byte(tt.body)); err != nil {
				t.Fatalf("%s: %v", tt.body, err)
			}
			if got := string(r.ID(0)); got != tt.id {
				t.Errorf("%s: id %q, want %q", tt.body, got, tt.id)
			}
		}
	}
}

// TestControlKey: a configured member name with a control character is
// matched where a body can hold it, escaped; a raw one in the body is
// still malformed.
func TestControlKey(t *testing.T) {
	m, err := Compile(Config{Routes: []RouteConfig{
		{Route: "GET /k", Records: []string{"$"}, ID: "i\x01d"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	mt, _ := m.Match("GET", "/k")
	var r Result
	if err := r.Inspect(mt.Route, []byte("{\"i\x01d\":1}")); !errors.Is(err, ErrMalformed) {
		t.Fatalf("raw control character in a name: %v", err)
	}
	r.Reset()
	if err := r.Inspect(mt.Route, []byte(`{"i\u0001d":1,"id":2}`)); err != nil {
		t.Fatal(err)
	}
	if got := collect(&r); !reflect.DeepEqual(got.ids, []string{"1"}) {
		t.Errorf("ids %q", got.ids)
	}
}

// TestScalarsAgainstValid: strings and numbers of every length around the
// inline fast paths' word sizes (and near the end of the body, where those
// paths give way to scanString and scanNumber) are accepted exactly when
// encoding/json accepts them, as values and as member names.
func TestScalarsAgainstValid(t *testing.T) {
	m := labMap(t)
	mt, _ := m.Match("GET", "/v1/users/7/followers")
	specials := []string{`"`, `\"`, `\\`, `\u00e9`, `\u00g9`, `\x`, "\x01", "\x1f", "\x7f", "\x80", " ", "\\"}
	var bodies []string
	for n := 0; n <= 40; n++ {
		for p := 0; p <= n; p++ {
			for _, sp := range specials {
				str := strings.Repeat("a", p) + sp + strings.Repeat("b", n-p)
				bodies = append(bodies,
					`{"users":[{"id":"`+str+`"}]}`,
					`{"users":[{"`+str+`":1,"id":2}]}`,
					`{"users":["`+str+`"]}`,
					`["`+str+`"]`,
					`{"`+str+`":0}`,
				)
			}
		}
	}
	for _, num := range []string{"0", "-0", "1", "-1", "12345678901234567890", "01", "-01", "1.", "1.5", "-1.5e3", "1e", "1e+", "1E-2",
		"1x", "-", "--1", "+1", "1.e3", ".5", "0x1", "1ee2", "2E", "7.0e", "123abc"} {
		bodies = append(bodies, `{"users":[{"id":`+num+`}]}`, `{"users":[{"id":`+num+`,"username":"u"}]}`, `[`+num+`]`, num, ` `+num+` `)
	}
	// Integers of every length around the eight-byte digit scan, each
	// followed by every kind of byte that may end one or break it.
	for n := 1; n <= 20; n++ {
		digits := "9" + strings.Repeat("0123456789", 2)[:n-1]
		for _, end := range []string{"", ",", "}", "]", ".", ".5", "e", "e2", "E", " ", "x", "\x80", "/", ":", "0", "9"} {
			for _, sign := range []string{"", "-"} {
				num := sign + digits + end
				bodies = append(bodies, `{"users":[{"id":`+num+`,"x":1}]}`, `[`+num+`]`, `{"a":`+num+`}`, `{"users":[{"id":`+num)
			}
		}
	}
	for _, body := range bodies {
		var r Result
		err := r.Inspect(mt.Route, []byte(body))
		if valid := json.Valid([]byte(body)); valid != (err == nil) && utf8.ValidString(body) {
			t.Errorf("%q: Inspect %v, json.Valid %v", body, err, valid)
		}
	}
}
