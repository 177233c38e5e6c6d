package inspect

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzInspect: the inspector never panics, accepts exactly the valid JSON
// (for UTF-8 input; it does not check UTF-8 inside strings), and its
// rewrite of valid JSON, masks and insertions made, is valid JSON.
func FuzzInspect(f *testing.F) {
	for _, name := range []string{"profile.json", "followers.json", "feed.json", "profile-new-account.json"} {
		f.Add(fixture(f, name))
	}
	f.Add([]byte(`{"users":[{"id":1,"username":{"a":[1,2,{"b":null}]},"full_name":"x"},{}]}`))
	f.Add([]byte(`{"posts":[{"id":"1","author":{"id":"2","username":"u"}}]}`))
	f.Add([]byte(`{"email":"e","phone":"p","id":"1","username":"\u00e9"}`))
	for _, s := range escapedSeeds {
		f.Add([]byte(s))
	}
	m := labMap(f)
	routes := []string{"/v1/users/1", "/v1/users/1/followers", "/v1/feed"}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, p := range routes {
			mt, _ := m.Match("GET", p)
			var r Result
			err := r.Inspect(mt.Route, data)
			valid := json.Valid(data)
			if valid && err != nil {
				t.Fatalf("%s: valid JSON refused: %v", p, err)
			}
			if !valid && err == nil && utf8.Valid(data) {
				t.Fatalf("%s: invalid JSON accepted", p)
			}
			if err != nil {
				continue
			}
			n := r.Len()
			for i := 0; i < n; i++ {
				for c := range mt.Route.Classes() {
					r.Mask(i, c, "fuzz")
				}
				if i%2 == 0 {
					r.Insert(i, []byte(`{"id":"9","canary":[1,{"a":null}]}`))
				}
			}
			if r.Len() != n {
				t.Fatalf("%s: insertions changed the records: %d -> %d", p, n, r.Len())
			}
			out := r.Rewrite(nil, "req")
			if valid && out != nil && !json.Valid(out) {
				t.Fatalf("%s: rewrite of valid JSON is invalid:\n%s\n->\n%s", p, data, out)
			}
		}
	})
}
