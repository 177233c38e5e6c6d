package canary

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzAnswer: the responder is asked on every admitted request with what
// the client sent (a path parameter, the raw query): no input makes it
// panic, what it answers is JSON, and it answers only about canaries (an
// id or username the key made, or a page of one's lists); a sealed list
// that was not sealed by the key never opens.
func FuzzAnswer(f *testing.F) {
	c := newTest(f)
	p := c.profile(0, 77)
	id := strings.TrimSpace(string(c.AppendSummary(nil, &p)[7:17]))
	for _, s := range []string{id, "12", p.Username, "lena.morgan_16777216", "0001000000000", "-1", ""} {
		f.Add(uint8(0), s, "limit=50")
		f.Add(uint8(2), s, "cursor=abc&limit=3")
	}
	f.Add(uint8(6), "", "q="+p.Username)
	f.Add(uint8(6), "", "q=le%5F12345678&q=x")
	f.Add(uint8(7), c.SearchList("q=lena"), "")
	f.Fuzz(func(t *testing.T, route uint8, param, query string) {
		r := c.Config().Routes
		routes := []string{r.Profile, r.ByUsername, r.Followers, r.Following, r.Posts, r.Post, r.Search}
		if int(route) >= len(routes) {
			if q, ok := c.openQuery(param); ok && c.keys[0].sealQuery(q) != param {
				t.Fatalf("%q opened as %q, which seals to another list", param, q)
			}
			return
		}
		st, body, ok := c.Answer(routes[route], func(string) string { return param }, query)
		if !ok {
			return
		}
		if !json.Valid(body) || st != 200 && st != 400 && st != 404 {
			t.Fatalf("%s %q %q: %d %s", routes[route], param, query, st, body)
		}
		if _, isCanary := c.ParseID(param); routes[route] != r.Search && routes[route] != r.ByUsername && routes[route] != r.Post && !isCanary {
			t.Fatalf("%s answered for %q, not a canary", routes[route], param)
		}
	})
}
