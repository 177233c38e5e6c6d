package inspect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// labMap is the lab's route map, trimmed to what these tests use.
func labMap(t testing.TB) *Map {
	t.Helper()
	m, err := Compile(Config{Routes: []RouteConfig{
		{Route: "GET /v1/users/{id}", Records: []string{"$"}, ID: "id", Lookup: "id",
			Classes: map[string][]string{"contact": {"email", "phone"}, "profile": {"username", "full_name"}}},
		{Route: "GET /v1/users/by-username/{username}", Records: []string{"$"}, ID: "id", Lookup: "username",
			Classes: map[string][]string{"contact": {"email", "phone"}}},
		{Route: "GET /v1/users/{id}/followers", Records: []string{"$.users[*]"}, ID: "id", List: "id", Cursor: "cursor",
			Classes: map[string][]string{"profile": {"username", "full_name"}}, Links: []string{"$.users[*].id"}},
		{Route: "GET /v1/feed", Records: []string{"$.posts[*]", "$.posts[*].author"}, ID: "id", Author: "author.id",
			Classes: map[string][]string{"profile": {"username", "full_name"}}, Links: []string{"$.posts[*].author.id"}},
		{Route: "/static/", Records: []string{"$"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func manyFields(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("f%d", i)
	}
	return out
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings, each must appear
	}{
		{"ok", Config{Routes: []RouteConfig{{Route: "GET /v1/users/{id}", Records: []string{"$"}, ID: "id", Lookup: "id"}}}, nil},
		{"bad record path", Config{Routes: []RouteConfig{{Route: "GET /a", Records: []string{"$", "users[*]"}}}},
			[]string{"routes[0].records[1]: path \"users[*]\" must start with $"}},
		{"bad route and class field", Config{Routes: []RouteConfig{
			{Route: "GET /a"},
			{Route: "GET a/{x}", Records: []string{"$"}, Classes: map[string][]string{"contact": {"email", "$.phone"}}},
		}}, []string{"routes[1].route: ", "routes[1].classes.contact[1]: "}},
		{"lookup not a param", Config{Routes: []RouteConfig{{Route: "GET /v1/users/{id}", Records: []string{"$"}, Lookup: "user"}}},
			[]string{`routes[0].lookup: "user" is not a parameter`}},
		{"duplicate route", Config{Routes: []RouteConfig{{Route: "GET /u/{id}"}, {Route: "GET /u/{x}"}}},
			[]string{"routes[1].route: \"GET /u/{x}\" matches the same requests as routes[0]"}},
		{"policies", Config{OnOversize: "drop", OnMalformed: "ignore", OnOtherType: "skip", MaxBody: -1},
			[]string{"max_body: must not be negative", "on_oversize: must be", "on_malformed: must be", "on_other_type: must be"}},
		{"classes without records", Config{Routes: []RouteConfig{{Route: "GET /a", Classes: map[string][]string{"c": {"x"}}}}},
			[]string{"routes[0].records: id, author and classes need"}},
		{"wildcard mid-segment", Config{Routes: []RouteConfig{{Route: "GET /a/x{id}"}}},
			[]string{"routes[0].route: route \"GET /a/x{id}\": segment"}}, {"too many fields", Config{Routes: []RouteConfig{{Route: "GET /a", Records: []string{"$"}, Classes: map[string][]string{"c": manyFields(257)}}}},
			[]string{"routes[0].classes.c: at most 256 fields, got 257"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.SetDefaults()
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: nil, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "routes[") && !strings.HasPrefix(line, "max_body") && !strings.HasPrefix(line, "on_") {
					t.Errorf("error line %q does not start with its YAML path", line)
				}
			}
		})
	}
}

func TestMatch(t *testing.T) {
	m := labMap(t)
	tests := []struct {
		name, method, path string
		route              string // "" for no match
		params             map[string]string
	}{
		{"profile", "GET", "/v1/users/42", "GET /v1/users/{id}", map[string]string{"id": "42"}},
		{"head is get", "HEAD", "/v1/users/42", "GET /v1/users/{id}", map[string]string{"id": "42"}},
		{"literal beats wildcard", "GET", "/v1/users/by-username/lena", "GET /v1/users/by-username/{username}", map[string]string{"username": "lena"}},
		{"followers", "GET", "/v1/users/7/followers", "GET /v1/users/{id}/followers", map[string]string{"id": "7"}},
		{"wildcard beats by-username literal later", "GET", "/v1/users/by-username/followers", "GET /v1/users/by-username/{username}", nil},
		{"trailing slash differs", "GET", "/v1/users/42/", "", nil},
		{"method differs", "POST", "/v1/users/42", "", nil},
		{"too long", "GET", "/v1/users/42/followers/x", "", nil},
		{"empty param", "GET", "/v1/users//followers", "", nil},
		{"prefix", "PUT", "/static/a/b.json", "/static/", nil},
		{"prefix itself", "GET", "/static/", "/static/", nil},
		{"unmapped", "GET", "/healthz", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mt, ok := m.Match(tt.method, tt.path)
			if tt.route == "" {
				if ok {
					t.Fatalf("matched %q, want none", mt.Route.Pattern)
				}
				return
			}
			if !ok || mt.Route.Pattern != tt.route {
				t.Fatalf("Match = %v %v, want %q", ok, mt.Route, tt.route)
			}
			for k, v := range tt.params {
				if got := mt.Param(k); got != v {
					t.Errorf("Param(%q) = %q, want %q", k, got, v)
				}
			}
		})
	}
	if n := testing.AllocsPerRun(100, func() { m.Match("GET", "/v1/users/42/followers") }); n != 0 {
		t.Errorf("Match allocates %v times", n)
	}
}

// TestPatternFits: the slash count Map.Match filters on never rules out a
// path its pattern matches, for every kind of pattern (plain, {$}, {x...},
// trailing "/", the root) against paths with trailing, doubled and
// missing slashes; and it does rule out the obvious misfits.
func TestPatternFits(t *testing.T) {
	pats := []string{"/", "/{$}", "/a", "/a/", "/a/{$}", "/a/{x}", "/a/{x}/", "/a/{x}/b", "/a/{x...}",
		"/{x...}", "/{x}", "/{x}/{y}", "/a/b/{$}", "GET /a/{x}/{y...}"}
	paths := []string{"", "/", "//", "/a", "/a/", "/a//", "/a/b", "/a/b/", "/a//b", "/a/b/c", "/a/b/c/",
		"/b", "/b/", "/a/b/b", "/a/x/b/", "a/b", "/a/b/c/d/e"}
	matched, ruledOut := 0, 0
	for _, ps := range pats {
		p, err := parsePattern(ps)
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range paths {
			var vals [maxParams]string
			fits := p.fits(strings.Count(path, "/"))
			if p.match("GET", path, &vals) {
				matched++
				if !fits {
					t.Errorf("pattern %q matches %q but fits rules it out", ps, path)
				}
			} else if !fits {
				ruledOut++
			}
		}
	}
	if matched < 30 || ruledOut < 100 {
		t.Fatalf("%d matches and %d ruled out: the table no longer exercises fits", matched, ruledOut)
	}
}

type inspected struct {
	ids     []string
	classes []ClassSet
	authors []string
	links   []string
}

func collect(r *Result) inspected {
	var x inspected
	for i := 0; i < r.Len(); i++ {
		x.ids = append(x.ids, string(r.ID(i)))
		x.classes = append(x.classes, r.Classes(i))
	}
	for i := 0; i < r.NumAuthors(); i++ {
		x.authors = append(x.authors, string(r.Author(i)))
	}
	for i := 0; i < r.NumLinks(); i++ {
		x.links = append(x.links, string(r.Link(i)))
	}
	return x
}

func TestInspect(t *testing.T) {
	m := labMap(t)
	const contact, profile = 1 << 0, 1 << 1
	tests := []struct {
		name, path string
		body       []byte
		want       inspected
	}{
		{"profile", "/v1/users/42", fixture(t, "profile.json"),
			inspected{ids: []string{"42"}, classes: []ClassSet{contact | profile}}},
		{"new account has no contact", "/v1/users/100001", fixture(t, "profile-new-account.json"),
			inspected{ids: []string{"100001"}, classes: []ClassSet{profile}}},
		{"null and missing fields", "/v1/users/5", []byte(` { "phone" : null , "id" : 5 , "email":"" , "username":"x"} `),
			inspected{ids: []string{"5"}, classes: []ClassSet{profile}}},
		{"not an object", "/v1/users/5", []byte(`[1,2]`), inspected{ids: []string{""}, classes: []ClassSet{0}}},
		{"escaped key is matched", "/v1/users/5", []byte(`{"\u0069d":"5","em\u0061il":"a@b"}`),
			inspected{ids: []string{"5"}, classes: []ClassSet{contact}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mt, ok := m.Match("GET", tt.path)
			if !ok {
				t.Fatal("no route")
			}
			var r Result
			if err := r.Inspect(mt.Route, tt.body); err != nil {
				t.Fatal(err)
			}
			got := collect(&r)
			got.ids = fixEmpty(got.ids)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	t.Run("followers", func(t *testing.T) {
		mt, _ := m.Match("GET", "/v1/users/7/followers")
		var r Result
		if err := r.Inspect(mt.Route, fixture(t, "followers.json")); err != nil {
			t.Fatal(err)
		}
		got := collect(&r)
		if len(got.ids) != 50 || got.ids[0] != "1000" || got.ids[49] != "1343" {
			t.Errorf("ids = %v", got.ids)
		}
		if !reflect.DeepEqual(got.ids, got.links) {
			t.Errorf("links %v differ from ids %v", got.links, got.ids)
		}
		for i, c := range got.classes {
			if c != 1 { // profile is class 0 of this route
				t.Errorf("record %d classes %b", i, c)
			}
		}
	})
	t.Run("feed with nested records", func(t *testing.T) {
		mt, _ := m.Match("GET", "/v1/feed")
		var r Result
		if err := r.Inspect(mt.Route, fixture(t, "feed.json")); err != nil {
			t.Fatal(err)
		}
		got := collect(&r)
		if len(got.ids) != 40 || got.ids[0] != "900000" || got.ids[1] != "300" {
			t.Errorf("ids = %v", got.ids)
		}
		if len(got.authors) != 20 || got.authors[0] != "300" || got.authors[6] != "301" {
			t.Errorf("authors = %v", got.authors)
		}
		if got.classes[0] != 0 || got.classes[1] != 1 {
			t.Errorf("post record classes %b, author record %b", got.classes[0], got.classes[1])
		}
	})
}

func fixEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func TestMalformed(t *testing.T) {
	m := labMap(t)
	mt, _ := m.Match("GET", "/v1/users/7/followers")
	for _, tt := range []struct{ name, body string }{
		{"empty", ""},
		{"truncated", `{"users":[{"id":"1","username":"a"`},
		{"trailing garbage", `{"users":[]} x`},
		{"two values", `{} {}`},
		{"bad escape", `{"users":[{"id":"\q"}]}`},
		{"control char", "{\"users\":[{\"id\":\"a\nb\"}]}"},
		{"bare word", `{"users":nul}`},
		{"leading zero", `{"n":01}`},
		{"missing colon", `{"users" []}`},
		{"trailing comma", `{"users":[1,]}`},
		{"deep", strings.Repeat("[", 10000) + strings.Repeat("]", 10000)},
		{"html", "<html>502 Bad Gateway</html>"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var r Result
			err := r.Inspect(mt.Route, []byte(tt.body))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Inspect = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestRewrite(t *testing.T) {
	m := labMap(t)
	t.Run("nothing masked is nil", func(t *testing.T) {
		mt, _ := m.Match("GET", "/v1/users/42")
		var r Result
		if err := r.Inspect(mt.Route, fixture(t, "profile.json")); err != nil {
			t.Fatal(err)
		}
		if out := r.Rewrite(nil, "req-1"); out != nil {
			t.Fatalf("Rewrite = %s, want nil", out)
		}
	})
	t.Run("profile contact masked", func(t *testing.T) {
		body := fixture(t, "profile.json")
		mt, _ := m.Match("GET", "/v1/users/42")
		var r Result
		if err := r.Inspect(mt.Route, body); err != nil {
			t.Fatal(err)
		}
		if !r.Mask(0, mt.Route.Class("contact"), "contact-account") {
			t.Fatal("Mask: nothing to mask")
		}
		out := r.Rewrite(nil, `req"1`)
		var got, orig map[string]any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("output is not JSON: %v\n%s", err, out)
		}
		_ = json.Unmarshal(body, &orig)
		orig["email"], orig["phone"] = nil, nil
		orig["_warden"] = map[string]any{"masked": []any{"email", "phone"}, "rules": []any{"contact-account"}, "request_id": `req"1`}
		if !reflect.DeepEqual(got, orig) {
			t.Errorf("got %v\nwant %v", got, orig)
		}
	})
	t.Run("list: masked records only, rest intact", func(t *testing.T) {
		body := fixture(t, "followers.json")
		mt, _ := m.Match("GET", "/v1/users/7/followers")
		var r Result
		if err := r.Inspect(mt.Route, body); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < r.Len(); i += 3 {
			r.Mask(i, 0, "profile-ip")
		}
		out := r.Rewrite(nil, "r2")
		var got, orig struct {
			Users []map[string]any `json:"users"`
			Next  string           `json:"next_cursor"`
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("output is not JSON: %v", err)
		}
		_ = json.Unmarshal(body, &orig)
		if got.Next != orig.Next || len(got.Users) != 50 {
			t.Fatalf("list changed: next %q, %d users", got.Next, len(got.Users))
		}
		for i, u := range orig.Users {
			if i%3 == 0 {
				u["username"], u["full_name"] = nil, nil
				u["_warden"] = map[string]any{"masked": []any{"username", "full_name"}, "rules": []any{"profile-ip"}, "request_id": "r2"}
			}
			if !reflect.DeepEqual(got.Users[i], u) {
				t.Errorf("user %d: got %v, want %v", i, got.Users[i], u)
			}
		}
	})
	t.Run("empty object record", func(t *testing.T) {
		mt, _ := m.Match("GET", "/v1/users/1")
		var r Result
		body := []byte(`{"email":"a@b.c"}`)
		if err := r.Inspect(mt.Route, body); err != nil {
			t.Fatal(err)
		}
		r.Mask(0, 0, "x")
		out := r.Rewrite(nil, "r")
		want := `{"_warden":{"masked":["email"],"rules":["x"],"request_id":"r"},"email":null}`
		if string(out) != want {
			t.Errorf("got %s\nwant %s", out, want)
		}
	})
}

func TestEncoding(t *testing.T) {
	m := labMap(t)
	plain := fixture(t, "followers.json")
	for _, enc := range []string{"", "identity", "gzip", "x-gzip", "deflate", "GZIP"} {
		t.Run("roundtrip "+enc, func(t *testing.T) {
			z, err := m.Encode(enc, plain, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.Decode(enc, z, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, plain) {
				t.Error("roundtrip changed the body")
			}
		})
	}
	t.Run("unsupported", func(t *testing.T) {
		if _, err := m.Decode("br", plain, nil); !errors.Is(err, ErrEncoding) {
			t.Errorf("Decode(br) = %v", err)
		}
	})
	small, err := Compile(Config{MaxBody: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, enc := range []string{"", "gzip", "deflate"} {
		t.Run("oversize "+enc, func(t *testing.T) {
			z, _ := small.Encode(enc, plain, nil)
			if _, err := small.Decode(enc, z, nil); !errors.Is(err, ErrOversize) {
				t.Errorf("Decode = %v, want ErrOversize", err)
			}
		})
	}
	t.Run("corrupt gzip", func(t *testing.T) {
		z, _ := m.Encode("gzip", plain, nil)
		z[len(z)/2] ^= 0xff
		if _, err := m.Decode("gzip", z, nil); err == nil || errors.Is(err, ErrOversize) {
			t.Errorf("Decode = %v, want a decode error", err)
		}
	})
}

func TestJSONContentType(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json": true, "application/json; charset=utf-8": true, "Application/JSON": true,
		"application/problem+json": true, "text/html": false, "application/jsonp": false, "": false, "application/x-json-stream": false,
	} {
		if got := JSON(ct); got != want {
			t.Errorf("JSON(%q) = %v", ct, got)
		}
	}
}

// FillSpare makes the Access Fill makes, in the spare memory when it fits
// and in its own when not.
func TestFillSpare(t *testing.T) {
	m := labMap(t)
	body := fixture(t, "followers.json")
	mt, _ := m.Match("GET", "/v1/users/7/followers")
	var r Result
	if err := r.Inspect(mt.Route, body); err != nil {
		t.Fatal(err)
	}
	r.Mask(0, 0, "profile-account-day")
	var want Access
	r.Fill(&want, true)
	if len(want.Records) < 2 || len(want.MaskRules) != 1 {
		t.Fatalf("fixture: %d records, mask rules %v", len(want.Records), want.MaskRules)
	}
	big := Spare{Records: make([]Record, 0, len(want.Records)), Rules: make([]string, 0, 1), Text: make([]byte, 0, 1<<16)}
	small := Spare{Records: make([]Record, 0, 1), Rules: make([]string, 0), Text: make([]byte, 0, 1)}
	for name, sp := range map[string]Spare{"fits": big, "too small": small} {
		var got Access
		r.FillSpare(&got, true, sp)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: FillSpare made %+v, Fill %+v", name, got, want)
		}
		if inSpare := &got.Records[0] == &sp.Records[:1][0]; inSpare != (name == "fits") {
			t.Errorf("%s: records in the spare: %v", name, inSpare)
		}
		if name == "fits" && &got.MaskRules[0] != &sp.Rules[:1][0] {
			t.Errorf("%s: mask rules not in the spare", name)
		}
	}
	var refused Access
	r.FillSpare(&refused, false, big)
	if refused.Records != nil || refused.MaskRules != nil || refused.Classes == nil {
		t.Errorf("not served: %+v, want classes only", refused)
	}
}
