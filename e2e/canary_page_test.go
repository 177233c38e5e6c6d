package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// listPage is a list answer of the lab contract, users or posts.
type listPage struct {
	Users []labUser `json:"users"`
	Posts []struct {
		ID string `json:"id"`
	} `json:"posts"`
	Next *string `json:"next_cursor"`
}

// ids are the page's records' ids, in order.
func (p *listPage) ids() []string {
	var out []string
	for _, u := range p.Users {
		out = append(out, u.ID)
	}
	for _, x := range p.Posts {
		out = append(out, x.ID)
	}
	return out
}

// TestCanaryPagesWithinLimit: on every list route of the lab contract
// (followers, following, posts, search, feed), at limits 1, 3, 7, 50 and
// none (the platform's 20), a page through warden is never longer than the
// limit asked, and a walk of the list through warden, in step with the
// platform's own walk, gets on every page the platform's records in the
// platform's order and the platform's next cursor: canaries only add to a
// page's room, never displace a record, and a caller that pages on loses
// nothing. Canaries still reach the walk (followers and search pages with
// room carry them).
func TestCanaryPagesWithinLimit(t *testing.T) {
	up, g, c, cl := canaryLab(t, searchConfig)
	auth := map[string]string{"Authorization": accountToken(t, 11)}
	get := func(base, path string) listPage {
		t.Helper()
		a := do(t, cl, "GET", base+path, auth)
		var pg listPage
		if err := json.Unmarshal([]byte(a.body), &pg); a.status != http.StatusOK || err != nil {
			t.Fatalf("%s%s: %d %v %s", base, path, a.status, err, a.body)
		}
		return pg
	}
	canaries := map[string]int{}
	// walk pages path (with its query, at limit; 0: none asked) through
	// warden and the platform in step, up to pages pages.
	walk := func(route, path string, limit, pages int) {
		t.Helper()
		size := limit
		if limit == 0 {
			size = 20
		} else {
			path += "&limit=" + fmt.Sprint(limit)
		}
		cursor := ""
		for range pages {
			p := path
			if cursor != "" {
				p += "&cursor=" + url.QueryEscape(cursor)
			}
			w, u := get(g.url, p), get(up, p)
			if n := len(w.Users) + len(w.Posts); n > size {
				t.Fatalf("%s: %d records through warden, limit %d", p, n, size)
			}
			var real []string
			for _, x := range w.Users {
				if _, ok := c.Verify(x.ID, x.Username, "", ""); ok {
					canaries[route]++
					continue
				}
				real = append(real, x.ID)
			}
			for _, x := range w.Posts {
				real = append(real, x.ID)
			}
			if fmt.Sprint(real) != fmt.Sprint(u.ids()) {
				t.Fatalf("%s: warden's real records %v, the platform's %v", p, real, u.ids())
			}
			if (w.Next == nil) != (u.Next == nil) || w.Next != nil && *w.Next != *u.Next {
				t.Fatalf("%s: warden's next cursor %v, the platform's %v", p, w.Next, u.Next)
			}
			if w.Next == nil {
				return
			}
			cursor = *w.Next
		}
	}
	for _, limit := range []int{1, 3, 7, 0, 50} {
		lists, pages := 60, 40
		if limit == 1 {
			lists, pages = 15, 60
		}
		for id := 1; id <= lists; id++ {
			walk("followers", fmt.Sprintf("/v1/users/%d/followers?x=1", id), limit, pages)
			walk("following", fmt.Sprintf("/v1/users/%d/following?x=1", id), limit, pages)
			if id <= 10 {
				walk("posts", fmt.Sprintf("/v1/users/%d/posts?x=1", id), limit, pages)
			}
		}
		qs := searchQueries()
		if limit == 1 {
			qs = qs[:10]
		}
		for _, q := range qs { // all of them: which canaries show changes daily (the code's bucket), and few fit search pages
			walk("search", "/v1/search?q="+q, limit, pages)
		}
		walk("feed", "/v1/feed?x=1", limit, 10)
	}
	t.Logf("canaries met by route: %v", canaries)
	if canaries["followers"] == 0 || canaries["search"] == 0 {
		t.Fatalf("no canary reached a walk of followers or search lists: %v", canaries)
	}
	if s := strings.Join([]string{fmt.Sprint(canaries["posts"]), fmt.Sprint(canaries["feed"])}, ","); s != "0,0" {
		t.Fatalf("canaries in posts or feed pages, which are not seeded: %s", s)
	}
}

// TestCanaryOwnPagesSizeAsReal: a canary's own lists (followers,
// following, posts, and a search for its username) read the page size as
// the platform reads a real list's: through warden, asked with limit 0,
// 51, -1, abc, an empty one or a second one, a canary's list and a real
// profile's answer with the same status and, when refused, the same body
// and Content-Type; asked 7 (or the default), both hold as many records as
// the size asked or their whole list. A garbage cursor on a search for a
// canary's username is refused as on a real username's.
func TestCanaryOwnPagesSizeAsReal(t *testing.T) {
	_, g, c, cl := canaryLab(t, searchConfig)
	auth := map[string]string{"Authorization": accountToken(t, 11)}
	p := c.Canary(0, 1)
	for p.Followers < 30 || p.Following < 30 || p.Posts < 20 {
		p = c.Canary(0, p.Index+1)
	}
	// A real profile with lists as long, found through warden.
	var real struct {
		ID        string `json:"id"`
		Username  string `json:"username"`
		Followers int    `json:"follower_count"`
		Following int    `json:"following_count"`
		Posts     int    `json:"posts_count"`
	}
	for id := 1; ; id++ {
		if id > 500 {
			t.Fatal("no real profile with 30 followers and following and 20 posts in 500")
		}
		a := do(t, cl, "GET", fmt.Sprintf("%s/v1/users/%d", g.url, id), auth)
		if err := json.Unmarshal([]byte(a.body), &real); a.status != 200 || err != nil {
			t.Fatalf("profile %d: %d %s", id, a.status, a.body)
		}
		if real.Followers >= 30 && real.Following >= 30 && real.Posts >= 20 {
			break
		}
	}
	canaryID := fmt.Sprint(p.ID)
	for _, q := range []string{"limit=0", "limit=51", "limit=-1", "limit=abc", "limit=7", "", "limit=", "limit=7&limit=60", "limit=%35%31"} {
		for _, list := range []string{"followers", "following", "posts", "search"} {
			path := func(id, username string) string {
				if list == "search" {
					return "/v1/search?q=" + username + "&" + q
				}
				return "/v1/users/" + id + "/" + list + "?" + q
			}
			ca := do(t, cl, "GET", g.url+path(canaryID, p.Username), auth)
			re := do(t, cl, "GET", g.url+path(real.ID, real.Username), auth)
			if ca.status != re.status || ca.header.Get("Content-Type") != re.header.Get("Content-Type") {
				t.Fatalf("%s: the canary's %d %s %s, a real one's %d %s %s", path(canaryID, p.Username), ca.status, ca.header.Get("Content-Type"), ca.body,
					re.status, re.header.Get("Content-Type"), re.body)
			}
			if ca.status != 200 {
				if ca.body != re.body {
					t.Fatalf("%s: the canary's %s, a real one's %s", path(canaryID, p.Username), ca.body, re.body)
				}
				continue
			}
			if list == "search" { // one record each: the username's owner
				continue
			}
			var cp, rp listPage
			if json.Unmarshal([]byte(ca.body), &cp) != nil || json.Unmarshal([]byte(re.body), &rp) != nil {
				t.Fatalf("%s: %s; %s", q, ca.body, re.body)
			}
			if n, m := len(cp.ids()), len(rp.ids()); n != m {
				t.Fatalf("%s?%s: the canary's %d records, a real one's %d", list, q, n, m)
			}
		}
	}
	for _, u := range []string{p.Username, real.Username} {
		if a := do(t, cl, "GET", g.url+"/v1/search?q="+u+"&cursor=AAAAAAAAAAAAAAAAAAAA", auth); a.status != 400 || a.body != `{"error":"bad cursor"}` {
			t.Fatalf("search %s with a garbage cursor: %d %s", u, a.status, a.body)
		}
	}
}
