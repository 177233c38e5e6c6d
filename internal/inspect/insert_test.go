package inspect

import (
	"encoding/json"
	"fmt"
	"testing"
)

func TestInsert(t *testing.T) {
	m := labMap(t)
	cases := []struct {
		name, path, body string
		at               []int
		masked           bool
		want             string
	}{
		{name: "before the first", path: "/v1/users/1/followers", body: `{"users":[{"id":"1"},{"id":"2"}]}`, at: []int{0},
			want: `{"users":[{"id":"c"},{"id":"1"},{"id":"2"}]}`},
		{name: "before the last, spaced", path: "/v1/users/1/followers", body: `{"users":[ {"id":"1"} , {"id":"2"} ]}`, at: []int{1},
			want: `{"users":[ {"id":"1"} , {"id":"c"},{"id":"2"} ]}`},
		{name: "two, with a mask", path: "/v1/users/1/followers", body: `{"users":[{"id":"1","username":"a"},{"id":"2","username":"b"}]}`, at: []int{0, 1}, masked: true,
			want: `{"users":[{"id":"c"},{"_warden":{"masked":["username"],"rules":["r"],"request_id":"q"},"id":"1","username":null},{"id":"c"},{"id":"2","username":"b"}]}`},
		{name: "not in an array", path: "/v1/users/1", body: `{"id":"1","email":"e"}`, at: []int{0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mt, _ := m.Match("GET", tc.path)
			var r Result
			if err := r.Inspect(mt.Route, []byte(tc.body)); err != nil {
				t.Fatal(err)
			}
			n := r.Len()
			for _, i := range tc.at {
				r.Insert(i, []byte(`{"id":"c"}`))
			}
			if tc.masked {
				r.Mask(0, mt.Route.Class("profile"), "r")
			}
			if r.Len() != n {
				t.Fatalf("records %d -> %d", n, r.Len())
			}
			out := r.Rewrite(nil, "q")
			if tc.want == "" {
				if out != nil || r.NumInserted() != 0 {
					t.Fatalf("inserted outside an array: %s", out)
				}
				return
			}
			if string(out) != tc.want || !json.Valid(out) {
				t.Fatalf("got  %s\nwant %s", out, tc.want)
			}
		})
	}
}

// TestInsertedLinks: the ids an inserted value shows are what the route's
// links select in it read as a record of its neighbour's path (a field
// the links do not name is not one), and none without insertions.
func TestInsertedLinks(t *testing.T) {
	m := labMap(t)
	cases := []struct {
		name, path, body string
		ins              []string
		want             []string
	}{
		{name: "followers, id only", path: "/v1/users/1/followers", body: `{"users":[{"id":"1","username":"a"},{"id":"2"}]}`,
			ins: []string{`{"id":"c1","username":"u1"}`, ` {"id":7,"username":"u2"}`}, want: []string{"c1", "7"}},
		{name: "feed, the author", path: "/v1/feed", body: `{"posts":[{"id":"p","author":{"id":"1"}}]}`,
			ins: []string{`{"id":"p2","author":{"id":"c","username":"u"}}`}, want: []string{"c"}},
		{name: "unreadable", path: "/v1/users/1/followers", body: `{"users":[{"id":"1"}]}`,
			ins: []string{`{"id":"c1"`}, want: nil},
		{name: "none", path: "/v1/users/1/followers", body: `{"users":[{"id":"1"}]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mt, _ := m.Match("GET", tc.path)
			var r Result
			if err := r.Inspect(mt.Route, []byte(tc.body)); err != nil {
				t.Fatal(err)
			}
			own := r.NumLinks()
			for _, v := range tc.ins {
				if !r.Insert(0, []byte(v)) {
					t.Fatalf("insert %s", v)
				}
			}
			var got []string
			for _, l := range r.InsertedLinks(nil) {
				got = append(got, string(l))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			if r.NumLinks() != own {
				t.Fatalf("the answer's own links changed: %d", r.NumLinks())
			}
		})
	}
}
