package inspect

import "testing"

// BenchmarkInspectRewrite: inspection and rewrite of a 50-record follower
// list (lab shape), every other record masked.
func BenchmarkInspectRewrite(b *testing.B) {
	m := labMap(b)
	body := fixture(b, "followers.json")
	mt, _ := m.Match("GET", "/v1/users/7/followers")
	var r Result
	var out []byte
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset()
		if err := r.Inspect(mt.Route, body); err != nil {
			b.Fatal(err)
		}
		for i := 0; i < r.Len(); i += 2 {
			r.Mask(i, 0, "profile-account-day")
		}
		out = r.Rewrite(out, "0123456789abcdef")
	}
}

// BenchmarkInspect: inspection alone (the answer no rule touches).
func BenchmarkInspect(b *testing.B) {
	m := labMap(b)
	body := fixture(b, "followers.json")
	mt, _ := m.Match("GET", "/v1/users/7/followers")
	var r Result
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset()
		if err := r.Inspect(mt.Route, body); err != nil {
			b.Fatal(err)
		}
	}
}
