package inspect

import (
	"encoding/json"
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
