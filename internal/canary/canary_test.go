package canary

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

const testKey = "test-canary-key-0123456789"

func newTest(t testing.TB, keys ...string) *Canaries {
	t.Helper()
	if len(keys) == 0 {
		keys = []string{testKey}
	}
	c, err := NewWithKeys(Config{KeyEnv: "X"}, keys...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestProfiles(t *testing.T) {
	c := newTest(t)
	seen := map[string]bool{}
	for j := uint32(0); j < 2000; j++ {
		p := c.profile(0, j*33331%indexCount)
		if p.ID < 1_000_000_000 || p.ID > 9_999_999_999 {
			t.Fatalf("id %d out of range", p.ID)
		}
		for _, v := range []string{strconv.FormatInt(p.ID, 10), p.Username, p.Email} { // phones: ranges are smaller than the canaries
			if seen[v] {
				t.Fatalf("%q given twice", v)
			}
			seen[v] = true
		}
		n, err := phonenumbers.Parse(p.Phone, "")
		if err != nil || !phonenumbers.IsValidNumber(n) {
			t.Fatalf("phone %s not valid", p.Phone)
		}
		if q, ok := c.ParseID(strconv.FormatInt(p.ID, 10)); !ok || q.Username != p.Username {
			t.Fatalf("id %d does not name its canary", p.ID)
		}
		if q, ok := c.ByUsername(p.Username); !ok || q.ID != p.ID {
			t.Fatalf("username %s does not name its canary", p.Username)
		}
		if _, ok := c.Verify(strconv.FormatInt(p.ID, 10), p.Username, p.Email, p.Phone); !ok {
			t.Fatalf("canary %d not verified", p.ID)
		}
		if js := c.AppendProfile(nil, &p); !json.Valid(js) || len(js) < 400 || len(js) > 2000 {
			t.Fatalf("profile JSON %d bytes, valid %v: %s", len(js), json.Valid(js), js)
		}
	}
}

// TestForgeries: records shaped like canaries but not made by the key are
// never verified.
func TestForgeries(t *testing.T) {
	c := newTest(t)
	other := newTest(t, "another-key-of-enough-length")
	p := c.profile(0, 12345)
	q := other.profile(0, 12345)
	id := strconv.FormatInt(p.ID, 10)
	cases := []struct{ name, id, user, email, phone string }{
		{"other key", strconv.FormatInt(q.ID, 10), q.Username, q.Email, q.Phone},
		{"wrong email", id, "", "lena.morgan17000000@mail.example", ""},
		{"wrong username", id, "lena.morgan_17000001", "", ""},
		{"id only", id, "", "", ""},
		{"changed digit", strconv.FormatInt(p.ID+1, 10), p.Username, p.Email, p.Phone},
		{"username off by one", "", p.Username[:len(p.Username)-1] + "9", "", ""},
	}
	for _, tc := range cases {
		if _, ok := c.Verify(tc.id, tc.user, tc.email, tc.phone); ok {
			t.Errorf("%s: forgery verified", tc.name)
		}
	}
	n := 0
	for k := int64(0); k < 100000; k++ {
		id := 1_000_000_000 + k*90_001
		if _, ok := c.Verify(strconv.FormatInt(id, 10), fmt.Sprintf("x.y_%d", 17000000+k), "", ""); ok {
			n++
		}
	}
	if n != 0 {
		t.Fatalf("%d random canary-shaped records verified", n)
	}
}

// TestUsernameAnyCase: a username the copy keeps in another case names its
// canary, as a record with an id is compared (before, only the exact
// spelling did, so an upper-cased copy of names found nothing).
func TestUsernameAnyCase(t *testing.T) {
	c := newTest(t)
	p := c.profile(0, 4242)
	for _, name := range []string{p.Username, strings.ToUpper(p.Username), strings.ToUpper(p.Username[:1]) + p.Username[1:]} {
		if q, ok := c.ByUsername(name); !ok || q.ID != p.ID {
			t.Errorf("ByUsername(%q): %v %v", name, q.ID, ok)
		}
		if _, ok := c.Verify("", name, "", ""); !ok {
			t.Errorf("Verify(username %q) failed", name)
		}
	}
	if _, ok := c.Verify("", strings.ToUpper(p.Username), "x"+p.Email, ""); ok {
		t.Error("an upper-cased username with another e-mail verified")
	}
}

// TestRotation: a canary of the old key is still recognised after a new
// key signs.
func TestRotation(t *testing.T) {
	old := newTest(t, testKey)
	p := old.profile(0, 777)
	c := newTest(t, "the-new-key-signs-from-now-on", testKey)
	q, ok := c.Verify(strconv.FormatInt(p.ID, 10), p.Username, p.Email, "")
	if !ok || q.Key != 1 || q.Email != p.Email {
		t.Fatalf("old canary not recognised after rotation: %+v %v", q, ok)
	}
	if n := c.profile(0, 777); n.Username == p.Username {
		t.Fatal("the new key makes the old key's canaries")
	}
	// Both keys place index j's canary in the same stretch of the id
	// range, so about one id in a stretch's length names a canary under
	// each: the old key's is still recognised there (it was counted as a
	// forgery: 3 of 223 old canaries in one trace after a rotation).
	shared := 0
	for j := uint32(0); j < 20000 && shared < 5; j++ {
		n, o := c.profile(0, j), c.profile(1, j)
		if n.ID != o.ID {
			continue
		}
		shared++
		for _, x := range []Profile{o, n} {
			q, ok := c.Verify(strconv.FormatInt(x.ID, 10), x.Username, x.Email, x.Phone)
			if !ok || q.Key != x.Key || q.Username != x.Username {
				t.Fatalf("id %d, key %d's canary: %+v %v", x.ID, x.Key, q, ok)
			}
		}
	}
	if shared == 0 {
		t.Fatal("no id shared by both keys in 20,000 indexes")
	}
}

func TestAnswers(t *testing.T) {
	c := newTest(t)
	p := c.profile(0, 4242)
	for p.Followers < 30 {
		p = c.profile(0, p.Index+1)
	}
	params := map[string]string{"id": strconv.FormatInt(p.ID, 10), "username": p.Username}
	get := func(pattern, q string) (int, []byte) {
		st, b, ok := c.Answer(pattern, func(k string) string { return params[k] }, q)
		if !ok {
			t.Fatalf("%s not answered", pattern)
		}
		if !json.Valid(b) {
			t.Fatalf("%s: invalid JSON %s", pattern, b)
		}
		return st, b
	}
	_, a := get("GET /v1/users/{id}", "")
	_, b := get("GET /v1/users/by-username/{username}", "")
	if string(a) != string(b) {
		t.Fatal("profile and by-username differ")
	}
	// The platform looks a username up in lower case: a canary's in
	// capitals answers as a real one's does, not 404.
	params["username"] = strings.ToUpper(p.Username)
	if _, b := get("GET /v1/users/by-username/{username}", ""); string(a) != string(b) {
		t.Fatalf("by-username %s: %s", params["username"], b)
	}
	params["username"] = p.Username
	// Pages of 7 add up to follower_count, each summary a canary.
	n, q := 0, "limit=7"
	for range 1000 {
		st, body := get("GET /v1/users/{id}/followers", q)
		if st != 200 {
			t.Fatalf("status %d %s", st, body)
		}
		var pg struct {
			Users []struct{ ID, Username string }
			Next  *string `json:"next_cursor"`
		}
		if err := json.Unmarshal(body, &pg); err != nil {
			t.Fatal(err)
		}
		for _, u := range pg.Users {
			if _, ok := c.ParseID(u.ID); !ok {
				t.Fatalf("follower %s is not a canary", u.ID)
			}
		}
		n += len(pg.Users)
		if pg.Next == nil {
			break
		}
		q = "limit=7&cursor=" + *pg.Next
	}
	if n != p.Followers {
		t.Fatalf("followers listed %d, follower_count %d", n, p.Followers)
	}
	if st, _ := get("GET /v1/users/{id}/followers", "cursor=AAAAAAAA"); st != 400 {
		t.Fatalf("bad cursor: %d", st)
	}
	params["id"] = "12345"
	if _, _, ok := c.Answer("GET /v1/users/{id}", func(k string) string { return params[k] }, ""); ok {
		t.Fatal("a real id answered as a canary")
	}
}

// TestPlan: about Density/2 of records get a canary, the same within a
// bucket, and a fleet's common canaries exist. Pages of 40: a page of 50
// (page.max) has no room, and Plan replays it as none.
func TestPlan(t *testing.T) {
	c := newTest(t)
	ids := make([][]byte, 40)
	anchors, shown := 0, 0
	for page := range 2000 {
		for i := range ids {
			ids[i] = []byte(strconv.Itoa(page*40 + i + 1))
		}
		var first []int
		c.Plan(0, "GET /v1/users/{id}/followers", strconv.Itoa(page), "acct-1", 7, len(ids), func(i int) []byte { return ids[i] },
			func(i int, s Slot, in bool) {
				anchors++
				if s.Bias < 0.02 || s.Bias > 0.98 {
					t.Fatalf("bias %v", s.Bias)
				}
				if in {
					shown++
					first = append(first, i)
				}
			})
		var again []int
		c.Plan(0, "GET /v1/users/{id}/followers", strconv.Itoa(page), "acct-1", 7, len(ids), func(i int) []byte { return ids[i] },
			func(i int, s Slot, in bool) {
				if in {
					again = append(again, i)
				}
			})
		if fmt.Sprint(first) != fmt.Sprint(again) {
			t.Fatal("a page re-read within a bucket changed")
		}
	}
	d := float64(shown) / 80000
	if want := c.cfg.Density / 2; d < want*0.7 || d > want*1.3 {
		t.Fatalf("canary density %.4f (anchors %d, shown %d)", d, anchors, shown)
	}
	if !strings.Contains(c.cfg.Routes.Followers, "followers") {
		t.Fatal("routes")
	}
}

// TestCountsConsistent: a canary's follower_count and following_count (in
// its profile and in every SUMMARY of it) equal the lengths of the lists
// warden answers for it, paged to the end, and its posts_count its posts.
func TestCountsConsistent(t *testing.T) {
	c := newTest(t)
	r := c.Config().Routes
	for j := uint32(0); j < 300; j++ {
		p := c.profile(0, j*7919%indexCount)
		id := strconv.FormatInt(p.ID, 10)
		param := func(string) string { return id }
		for _, k := range []struct {
			route, field string
			want         int
		}{{r.Followers, "users", p.Followers}, {r.Following, "users", p.Following}, {r.Posts, "posts", p.Posts}} {
			n, cursor := 0, ""
			for pages := 0; ; pages++ {
				q := "limit=50"
				if cursor != "" {
					q += "&cursor=" + cursor
				}
				st, body, ok := c.Answer(k.route, param, q)
				if !ok || st != 200 {
					t.Fatalf("%s of %s: %d %s", k.route, id, st, body)
				}
				var pg map[string]json.RawMessage
				if err := json.Unmarshal(body, &pg); err != nil {
					t.Fatalf("%s: %v: %s", k.route, err, body)
				}
				var recs []struct {
					ID            string `json:"id"`
					FollowerCount *int   `json:"follower_count"`
				}
				if err := json.Unmarshal(pg[k.field], &recs); err != nil {
					t.Fatal(err)
				}
				for _, u := range recs {
					if u.FollowerCount == nil {
						continue
					}
					// A SUMMARY's count is that canary's profile's.
					f, ok := c.ParseID(u.ID)
					if !ok || f.Followers != *u.FollowerCount {
						t.Fatalf("%s of %s: summary of %s says %d followers, its profile %d (a canary %v)", k.route, id, u.ID, *u.FollowerCount, f.Followers, ok)
					}
				}
				n += len(recs)
				if string(pg["next_cursor"]) == "null" {
					break
				}
				if err := json.Unmarshal(pg["next_cursor"], &cursor); err != nil || pages > 100 {
					t.Fatalf("%s: cursor %s", k.route, pg["next_cursor"])
				}
			}
			if n != k.want {
				t.Fatalf("canary %s: %s lists %d, its profile says %d", id, k.route, n, k.want)
			}
		}
	}
}

// TestBodiesValidJSON: a canary's answers are valid JSON whatever the
// configured domains hold (strconv.AppendQuote wrote a control character
// as \x01, which no JSON parser reads).
func TestBodiesValidJSON(t *testing.T) {
	c, err := NewWithKeys(Config{KeyEnv: "X", Domains: []string{"mail.ex\x01ample", "in\\box.example"}}, testKey)
	if err != nil {
		t.Fatal(err)
	}
	for i := uint32(0); i < 50; i++ {
		p := c.profile(0, i)
		for _, b := range [][]byte{c.AppendProfile(nil, &p), c.AppendSummary(nil, &p)} {
			var v map[string]any
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			if e, ok := v["email"]; ok && e != p.Email {
				t.Fatalf("email %q, want %q", e, p.Email)
			}
		}
	}
}
