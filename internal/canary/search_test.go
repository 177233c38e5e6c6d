package canary

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// TestSearchCanariesMatch: a search answer's canaries match its query the
// way the platform's search does (username or lower-case full name starts
// with it), are shown at the code's density and cap, and stay put on a
// re-read; a query no canary matches gets none.
func TestSearchCanariesMatch(t *testing.T) {
	c := newTest(t)
	route := c.Config().Routes.Search
	ids := make([][]byte, 1000) // anchors at 1.5%: a page of 50 has none half the time
	for i := range ids {
		ids[i] = []byte(strconv.Itoa(1000 + i*13))
	}
	id := func(i int) []byte { return ids[i] }
	queries := []string{"le", "Lena", "mo", "lena morgan", "lena.", "morgan.lena_", "sm", "zz", "ö€"}
	total := 0
	for _, q := range queries {
		list := c.SearchList("q=" + url.QueryEscape(q) + "&limit=50")
		if list == "" {
			t.Fatalf("%q: not seeded", q)
		}
		if strings.Contains(strings.ToLower(list), strings.ToLower(q)) {
			t.Fatalf("%q: the list %q shows the query", q, list)
		}
		lq := strings.ToLower(q)
		n := 0
		for a := range 400 {
			ident := "acct-" + strconv.Itoa(a)
			var got []uint32
			c.PlanRoom(0, route, list, ident, 7, len(ids), c.Config().MaxPerPage, id, func(i int, s Slot, shown bool) {
				p := c.Canary(0, s.Canary)
				if !strings.HasPrefix(p.Username, lq) && !strings.HasPrefix(strings.ToLower(p.FullName), lq) {
					t.Fatalf("query %q: slot canary %s (%s) does not match", q, p.Username, p.FullName)
				}
				if shown {
					got = append(got, s.Canary)
				}
			})
			if len(got) > c.Config().MaxPerPage {
				t.Fatalf("%q: %d shown, cap %d", q, len(got), c.Config().MaxPerPage)
			}
			var again []uint32
			c.PlanRoom(0, route, list, ident, 7, len(ids), c.Config().MaxPerPage, id, func(_ int, s Slot, shown bool) {
				if shown {
					again = append(again, s.Canary)
				}
			})
			if len(again) != len(got) || len(got) > 0 && again[0] != got[0] {
				t.Fatalf("%q: a re-read changed the canaries", q)
			}
			n += len(got)
		}
		if (q == "zz" || q == "ö€") != (n == 0) {
			t.Fatalf("query %q: %d canaries shown over 400 identities", q, n)
		}
		total += n
	}
	if total == 0 {
		t.Fatal("no canary in any search answer")
	}
	for _, raw := range []string{"q=a", "q=", "limit=5", "q=" + strings.Repeat("x", 49)} {
		if l := c.SearchList(raw); l != "" {
			t.Fatalf("%q seeded as %q", raw, l)
		}
	}
}

// TestSearchListKeys: the sealed query reads back under the key that made
// it, also after rotation (the old key second), and a changed one does
// not read at all (it names no slot).
func TestSearchListKeys(t *testing.T) {
	old := newTest(t)
	list := old.SearchList("q=Lena%20M")
	rotated := newTest(t, "a-newer-canary-key-0123456789", testKey)
	for _, c := range []*Canaries{old, rotated} {
		if q, ok := c.openQuery(list); !ok || q != "lena m" {
			t.Fatalf("read back %q %v", q, ok)
		}
	}
	if _, ok := newTest(t, "a-newer-canary-key-0123456789").openQuery(list); ok {
		t.Fatal("read under a key that did not make it")
	}
	if got := rotated.ListName(list); got != "search:lena m" {
		t.Fatalf("ListName of a search list: %q", got)
	}
	if got := newTest(t, "a-newer-canary-key-0123456789").ListName(list); got != list {
		t.Fatalf("ListName under a key that did not make it: %q, want the list as it is", got)
	}
	if got := old.ListName("followers:42"); got != "followers:42" {
		t.Fatalf("ListName of another list: %q", got)
	}
	b := []byte(list)
	b[len(b)-2] ^= 1
	if _, ok := old.openQuery(string(b)); ok {
		t.Fatal("a changed list read back")
	}
	// Another spelling of the same bytes is another list (Plan hashes the
	// string): it does not open either.
	for name, other := range map[string]string{
		"last digit's unused bits set": respell(list),
		"a line break inside":          list[:8] + "\n" + list[8:],
		"a carriage return at the end": list + "\r",
	} {
		if q, ok := old.openQuery(other); ok {
			t.Errorf("%s: %q opened as %q", name, other, q)
		}
	}
	n := 0
	old.Plan(0, old.Config().Routes.Search, string(b), "acct", 1, 1, func(int) []byte { return []byte("1") }, func(int, Slot, bool) { n++ })
	if n != 0 {
		t.Fatal("a changed list planned slots")
	}
}

// TestSearchCanaryUsername: searching a canary's whole username answers
// that canary (the platform has nobody by it); a real-shaped one is left
// to the platform.
func TestSearchCanaryUsername(t *testing.T) {
	c := newTest(t)
	r := c.Config().Routes
	p := c.profile(0, 4242)
	st, body, ok := c.Answer(r.Search, nil, "q="+strings.ToUpper(p.Username[:1])+p.Username[1:]+"&limit=20")
	if !ok || st != 200 {
		t.Fatalf("%s: %d %s %v", p.Username, st, body, ok)
	}
	var pg struct {
		Users []struct{ ID, Username string }
		Next  *string `json:"next_cursor"`
	}
	if err := json.Unmarshal(body, &pg); err != nil || len(pg.Users) != 1 || pg.Users[0].Username != p.Username || pg.Next != nil {
		t.Fatalf("%s: %s (%v)", p.Username, body, err)
	}
	for _, q := range []string{"q=lena.morgan_482", "q=lena", "q=lena.morgan_99999999", "q=lena.morgan_12345678"} {
		if _, _, ok := c.Answer(r.Search, nil, q); ok {
			t.Fatalf("%s answered as a canary", q)
		}
	}
}

// TestSearchCanaryUsernamePath: without the search route in the route map
// (AnswerPath), a search for a canary's username is answered the same.
func TestSearchCanaryUsernamePath(t *testing.T) {
	c := newTest(t)
	p := c.profile(0, 99)
	st, body, ok := c.AnswerPath("GET", "/v1/search", "q="+p.Username)
	_, want, _ := c.Answer(c.Config().Routes.Search, nil, "q="+p.Username)
	if !ok || st != 200 || string(body) != string(want) {
		t.Fatalf("%d %s, want %s", st, body, want)
	}
	if _, _, ok := c.AnswerPath("GET", "/v1/search", "q=lena"); ok {
		t.Fatal("a real search answered")
	}
}

// respell is list with its last base64 digit's unused low bits set: the
// same bytes to a lenient decoder. A sealed "lena m" is 22 bytes, so its
// last digit carries 2 bits and 4 unused.
func respell(list string) string {
	const digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(digits, list[len(list)-1])
	return list[:len(list)-1] + string(digits[i|0x0f])
}
