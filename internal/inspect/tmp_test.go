package inspect
import ("testing";"encoding/json")
func BenchmarkTmpSkip(b *testing.B) {
	m, _ := Compile(Config{Routes: []RouteConfig{{Route: "GET /x"}}})
	mt, _ := m.Match("GET", "/x")
	body := fixture(b, "followers.json")
	var r Result
	b.SetBytes(int64(len(body)))
	for b.Loop() { r.Reset(); if err := r.Inspect(mt.Route, body); err != nil { b.Fatal(err) } }
}
func BenchmarkTmpValid(b *testing.B) { body := fixture(b, "followers.json"); b.SetBytes(int64(len(body))); for b.Loop() { json.Valid(body) } }
func BenchmarkTmpStrings(b *testing.B) { body := fixture(b, "followers.json"); b.SetBytes(int64(len(body))); for b.Loop() { for i := 0; i < len(body); { if body[i] == '"' { i, _ = scanString(body, i) } else { i++ } } } }
