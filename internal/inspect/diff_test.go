package inspect

import (
	"bytes"
	"fmt"
	"math/rand"
	"strings"
	"testing"
)

// diffOne inspects data with this package's Result and the reference
// r0Result (ref_test.go), masks the same classes in both, and fails on any
// difference in what they report or write.
func diffOne(t *testing.T, rt *Route, data []byte, maskSeed int64) {
	t.Helper()
	var a Result
	var b r0Result
	ea := a.Inspect(rt, data)
	eb := b.Inspect(rt, data)
	if fmt.Sprint(ea) != fmt.Sprint(eb) {
		t.Fatalf("%q: err %v, ref %v", data, ea, eb)
	}
	if ea != nil {
		return
	}
	if a.Len() != b.Len() || a.NumLinks() != b.NumLinks() || a.NumAuthors() != b.NumAuthors() {
		t.Fatalf("%q: counts %d %d %d, ref %d %d %d", data, a.Len(), a.NumLinks(), a.NumAuthors(), b.Len(), b.NumLinks(), b.NumAuthors())
	}
	for i := 0; i < a.Len(); i++ {
		if !bytes.Equal(a.ID(i), b.ID(i)) || (a.ID(i) == nil) != (b.ID(i) == nil) || a.Classes(i) != b.Classes(i) {
			t.Fatalf("%q: rec %d: %q %b, ref %q %b", data, i, a.ID(i), a.Classes(i), b.ID(i), b.Classes(i))
		}
	}
	for i := 0; i < a.NumLinks(); i++ {
		if !bytes.Equal(a.Link(i), b.Link(i)) {
			t.Fatalf("%q: link %d", data, i)
		}
	}
	for i := 0; i < a.NumAuthors(); i++ {
		if !bytes.Equal(a.Author(i), b.Author(i)) {
			t.Fatalf("%q: author %d", data, i)
		}
	}
	rnd := rand.New(rand.NewSource(maskSeed))
	rules := []string{"r1", `r"2`, "r3"}
	for i := 0; i < a.Len(); i++ {
		for c := range rt.Classes() {
			if rnd.Intn(3) == 0 {
				rule := rules[rnd.Intn(len(rules))]
				if a.Mask(i, c, rule) != b.Mask(i, c, rule) {
					t.Fatalf("%q: Mask(%d, %d)", data, i, c)
				}
			}
		}
	}
	oa := a.Rewrite(nil, "q\x01id")
	ob := b.Rewrite(nil, "q\x01id")
	if !bytes.Equal(oa, ob) || (oa == nil) != (ob == nil) {
		t.Fatalf("%q: rewrite\n%s\nref\n%s", data, oa, ob)
	}
	if a.NumMasked() != b.NumMasked() || strings.Join(a.Rules(), ",") != strings.Join(b.Rules(), ",") {
		t.Fatalf("%q: masked/rules", data)
	}
}

// escapedSeeds are answers with member names and id values written with
// escapes, for the fuzz targets: they are the strings they spell.
var escapedSeeds = []string{
	`{"\u0069d":"5","em\u0061il":"a@b","\u0070hone":null,"user\u006eame":"\u00e9","full\u005fname":"F"}`,
	`{"users":[{"\u0069d":1,"username":"a"},{"id":2,"\u0066ull_name":"b","e\/x":[]}],"n\"x":{"\\":1}}`,
	`{"posts":[{"id":"1","\u0061uthor":{"\u0069\u0064":"2","username":"u"}},{"\ud83d\ude00":1,"\ud800":2,"\b\f\n\r\t":3}]}`,
	`{"\u0075sers":[{"id":"1"}],"em\u0061il" : "x" , "\u0069d":7}`,
	`{"id":"\u0035","users":[{"id":"\u0031\u0032"},{"id":"a\/b\\u0035"},{"id":"\ud83d\ude00\ud800"}]}`,
	`{"posts":[{"id":"p\u0031","author":{"id":"\u0039","username":"\u0061"}},{"id":"12345678901234567890\u0031"}]}`,
}

var diffRoutes = []string{"/v1/users/1", "/v1/users/1/followers", "/v1/feed", "/static/x"}

func FuzzDiff(f *testing.F) {
	for _, name := range []string{"profile.json", "followers.json", "feed.json", "profile-new-account.json"} {
		f.Add(fixture(f, name), int64(1))
	}
	f.Add([]byte(`{"users":[{"id":1,"username":{"a":[1,2,{"b":null}]},"full_name":"x"},{}]}`), int64(2))
	f.Add([]byte(`{"posts":[{"id":"1","author":{"id":"2","username":"u"}}]}`), int64(3))
	f.Add([]byte(`{"email":"e","phone":"p","id":"1","username":"\u00e9"}`), int64(4))
	for i, s := range escapedSeeds {
		f.Add([]byte(s), int64(5+i))
	}
	m := labMap(f)
	f.Fuzz(func(t *testing.T, data []byte, seed int64) {
		for _, p := range diffRoutes {
			mt, _ := m.Match("GET", p)
			diffOne(t, mt.Route, data, seed)
		}
	})
}

// TestDiffMutations: one-byte truncations, deletions and substitutions of
// the fixtures (all positions of the small ones, the head and tail of the
// large ones) behave as the reference.
func TestDiffMutations(t *testing.T) {
	m := labMap(t)
	subs := []byte{'"', '\\', ',', ':', '{', '}', '[', ']', ' ', '\n', 'u', '0', '1', 'e', '-', '.', 'n', 't', 'f', 0x01, 0x80}
	for _, name := range []string{"profile.json", "followers.json", "feed.json", "profile-new-account.json"} {
		body := fixture(t, name)
		for _, p := range diffRoutes {
			mt, _ := m.Match("GET", p)
			diffOne(t, mt.Route, body, 1)
			for i := 0; i < len(body); i++ {
				if i == 300 && len(body) > 600 {
					i = len(body) - 300
				}
				diffOne(t, mt.Route, body[:i], int64(i))
				d := append(append([]byte{}, body[:i]...), body[i+1:]...)
				diffOne(t, mt.Route, d, int64(i))
				for _, c := range subs {
					d := append([]byte{}, body...)
					d[i] = c
					diffOne(t, mt.Route, d, int64(i))
				}
			}
		}
	}
}
