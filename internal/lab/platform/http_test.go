package platform

import (
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const testSecret = "test-secret"

// env is a platform behind a real loopback listener.
type env struct {
	t   *testing.T
	p   *Platform
	srv *httptest.Server
	tok string // token of account 1
}

func newEnv(t *testing.T, n int) *env {
	p := newTest(t, n, 11)
	srv := httptest.NewServer(p.Handler())
	t.Cleanup(srv.Close)
	return &env{t: t, p: p, srv: srv, tok: mint(t, "1")}
}

func mint(t testing.TB, sub string) string {
	tok, err := MintToken(testSecret, sub, time.Unix(1700000000, 0), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// get returns status, headers and the (decoded) body.
func (e *env) do(method, path, token string, hdr ...string) (int, http.Header, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

func (e *env) getJSON(path string, v any) int {
	e.t.Helper()
	status, h, body := e.do("GET", path, e.tok)
	if ct := h.Get("Content-Type"); ct != "application/json" {
		e.t.Fatalf("%s: content type %q", path, ct)
	}
	if status == http.StatusOK {
		if err := json.Unmarshal(body, v); err != nil {
			e.t.Fatalf("%s: %v: %s", path, err, body)
		}
	}
	return status
}

func TestAuth(t *testing.T) {
	e := newEnv(t, 2000)
	wrongKey, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "1"}).SignedString([]byte("other"))
	numericSub, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": 1}).SignedString([]byte(testSecret))
	expired, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "1", "exp": 1000}).SignedString([]byte(testSecret))
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "1"}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	for _, tc := range []struct {
		name, path, header string
		want               int
	}{
		{"good", "/v1/me", "Bearer " + e.tok, 200},
		{"lower-case scheme", "/v1/me", "bearer " + e.tok, 200},
		{"good on users", "/v1/users/5", "Bearer " + mint(t, "2000"), 200},
		{"missing", "/v1/me", "", 401},
		{"not bearer", "/v1/me", "Basic " + e.tok, 401},
		{"garbage", "/v1/me", "Bearer x.y.z", 401},
		{"wrong key", "/v1/me", "Bearer " + wrongKey, 401},
		{"alg none", "/v1/me", "Bearer " + none, 401},
		{"numeric sub", "/v1/me", "Bearer " + numericSub, 401},
		{"expired", "/v1/me", "Bearer " + expired, 401},
		{"no such account", "/v1/me", "Bearer " + mint(t, "2001"), 401},
		{"account zero", "/v1/me", "Bearer " + mint(t, "0"), 401},
		{"leading zero", "/v1/me", "Bearer " + mint(t, "07"), 401},
		{"plus sign", "/v1/me", "Bearer " + mint(t, "+7"), 401},
		{"canonical", "/v1/me", "Bearer " + mint(t, "7"), 200},
		// Like many servers it trims Unicode white space around the
		// token: the gateway must not forward what it cannot verify.
		{"no-break space after", "/v1/me", "Bearer " + e.tok + "\u00a0", 200},
		{"401 before 404", "/v1/nothing", "", 401},
		{"health needs none", "/healthz", "", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var status int
			var body []byte
			if tc.header == "" {
				status, _, body = e.do("GET", tc.path, "")
			} else {
				status, _, body = e.do("GET", tc.path, "", "Authorization", tc.header)
			}
			if status != tc.want {
				t.Fatalf("status %d, want %d: %s", status, tc.want, body)
			}
			if tc.want == 401 && string(body) != `{"error": "unauthorized"}` {
				t.Fatalf("body %s", body)
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	e := newEnv(t, 2000)
	var prof map[string]any
	e.getJSON("/v1/users/7", &prof)
	name := prof["username"].(string)
	postID := fmt.Sprint(postID(firstWithPosts(e.p), 0))
	for _, tc := range []struct {
		name, method, path string
		want               int
		body               string // exact body when set
	}{
		{"health", "GET", "/healthz", 200, `{"ok": true}`},
		{"me", "GET", "/v1/me", 200, ""},
		{"user", "GET", "/v1/users/7", 200, ""},
		{"user by name", "GET", "/v1/users/by-username/" + name, 200, ""},
		{"user by upper-case name", "GET", "/v1/users/by-username/" + strings.ToUpper(name), 200, ""},
		{"post", "GET", "/v1/posts/" + postID, 200, ""},
		{"user zero", "GET", "/v1/users/0", 404, `{"error":"not found"}`},
		{"user past N", "GET", "/v1/users/2001", 404, `{"error":"not found"}`},
		{"user leading zero", "GET", "/v1/users/07", 404, `{"error":"not found"}`},
		{"user not a number", "GET", "/v1/users/abc", 404, `{"error":"not found"}`},
		{"user trailing slash", "GET", "/v1/users/7/", 404, `{"error":"not found"}`},
		{"unknown sub-list", "GET", "/v1/users/7/likes", 404, `{"error":"not found"}`},
		{"unknown username", "GET", "/v1/users/by-username/nobody_1", 404, `{"error":"not found"}`},
		{"renamed username", "GET", "/v1/users/by-username/x" + name, 404, `{"error":"not found"}`},
		{"unknown post", "GET", "/v1/posts/99", 404, `{"error":"not found"}`},
		{"unknown path", "GET", "/v2/users/1", 404, `{"error":"not found"}`},
		{"followers of unknown", "GET", "/v1/users/9999/followers", 404, `{"error":"not found"}`},
		{"limit zero", "GET", "/v1/users/7/followers?limit=0", 400, ""},
		{"limit 51", "GET", "/v1/users/7/following?limit=51", 400, ""},
		{"limit text", "GET", "/v1/users/7/posts?limit=ten", 400, ""},
		{"limit 50", "GET", "/v1/users/7/posts?limit=50", 200, ""},
		{"bad cursor", "GET", "/v1/users/7/followers?cursor=abc", 400, `{"error":"bad cursor"}`},
		{"short query", "GET", "/v1/search?q=a", 400, ""},
		{"no query", "GET", "/v1/search", 400, ""},
		{"feed", "GET", "/v1/feed", 200, ""},
		{"post to users", "POST", "/v1/users/7", 405, ""},
		{"get accounts", "GET", "/v1/accounts", 405, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, h, body := e.do(tc.method, tc.path, e.tok)
			if status != tc.want {
				t.Fatalf("status %d, want %d: %s", status, tc.want, body)
			}
			if h.Get("Content-Type") != "application/json" || !json.Valid(body) {
				t.Fatalf("not JSON: %q %s", h.Get("Content-Type"), body)
			}
			if tc.body != "" && string(body) != tc.body {
				t.Fatalf("body %s, want %s", body, tc.body)
			}
		})
	}
	// The same record whichever way it is asked for.
	_, _, byID := e.do("GET", "/v1/users/7", e.tok)
	_, _, byName := e.do("GET", "/v1/users/by-username/"+name, e.tok)
	if !bytes.Equal(byID, byName) {
		t.Errorf("by id and by username differ:\n%s\n%s", byID, byName)
	}
	var me, one map[string]any
	e.getJSON("/v1/me", &me)
	e.getJSON("/v1/users/1", &one)
	if fmt.Sprint(me) != fmt.Sprint(one) {
		t.Error("/v1/me differs from /v1/users/1 for account 1")
	}
	// A cursor made for one list is refused on another.
	var page listPage
	e.getJSON("/v1/users/"+fmt.Sprint(popular(e.p))+"/followers?limit=1", &page)
	if page.Next == nil {
		t.Fatal("no next cursor on a long list")
	}
	for _, path := range []string{"/v1/users/8/followers", "/v1/users/" + fmt.Sprint(popular(e.p)) + "/following", "/v1/feed"} {
		if status, _, body := e.do("GET", path+"?cursor="+url.QueryEscape(*page.Next), e.tok); status != 400 {
			t.Errorf("%s with a foreign cursor: %d %s", path, status, body)
		}
	}
}

func firstWithPosts(p *Platform) int {
	for id := 1; ; id++ {
		if p.postCount(id) > 0 {
			return id
		}
	}
}

func popular(p *Platform) int {
	best := 1
	for id := 1; id <= p.n; id++ {
		if p.baseFollowers(id) > p.baseFollowers(best) {
			best = id
		}
	}
	return best
}

type summary struct {
	ID            string `json:"id"`
	Username      string `json:"username"`
	FullName      string `json:"full_name"`
	FollowerCount int    `json:"follower_count"`
	IsBusiness    *bool  `json:"is_business"`
	Email         *string
	Phone         *string
}

type post struct {
	ID        string  `json:"id"`
	AuthorID  string  `json:"author_id"`
	Author    summary `json:"author"`
	Text      string  `json:"text"`
	CreatedAt string  `json:"created_at"`
	LikeCount *int    `json:"like_count"`
}

type listPage struct {
	Users []summary `json:"users"`
	Posts []post    `json:"posts"`
	Next  *string   `json:"next_cursor"`
}

// walk follows cursors to the end and returns every item's id in order.
func (e *env) walk(path string, limit int) []string {
	e.t.Helper()
	var ids []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 10_000 {
			e.t.Fatalf("%s: cursor loop", path)
		}
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		u := fmt.Sprintf("%s%slimit=%d", path, sep, limit)
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		var pg listPage
		if status := e.getJSON(u, &pg); status != 200 {
			e.t.Fatalf("%s: status %d", u, status)
		}
		if len(pg.Users)+len(pg.Posts) > limit {
			e.t.Fatalf("%s: %d items over limit %d", u, len(pg.Users)+len(pg.Posts), limit)
		}
		for _, s := range pg.Users {
			if s.Email != nil || s.Phone != nil || s.Username == "" || s.IsBusiness == nil {
				e.t.Fatalf("%s: summary %+v", u, s)
			}
			ids = append(ids, s.ID)
		}
		for _, p := range pg.Posts {
			if _, err := time.Parse(time.RFC3339, p.CreatedAt); err != nil || p.Author.ID != p.AuthorID || p.LikeCount == nil {
				e.t.Fatalf("%s: post %+v", u, p)
			}
			ids = append(ids, p.ID)
		}
		if pg.Next == nil {
			return ids
		}
		cursor = *pg.Next
	}
}

func idStrings(l []int32) []string {
	s := make([]string, len(l))
	for i, v := range l {
		s[i] = fmt.Sprint(v)
	}
	return s
}

// TestPagination: walking every cursor yields each list exactly once,
// and the counts in the profile equal the list lengths.
func TestPagination(t *testing.T) {
	e := newEnv(t, 3000)
	ids := []int{1, popular(e.p), firstWithPosts(e.p), 2999}
	for _, id := range ids {
		var prof map[string]any
		e.getJSON(fmt.Sprintf("/v1/users/%d", id), &prof)
		for _, tc := range []struct {
			list  string
			limit int
			want  []string
			count any
		}{
			{"followers", 7, idStrings(e.p.followers.list(id)), prof["follower_count"]},
			{"followers", 50, idStrings(e.p.followers.list(id)), prof["follower_count"]},
			{"following", 1, idStrings(e.p.following.list(id)), prof["following_count"]},
			{"following", 20, idStrings(e.p.following.list(id)), prof["following_count"]},
			{"posts", 3, postIDs(id, e.p.postCount(id)), prof["posts_count"]},
		} {
			got := e.walk(fmt.Sprintf("/v1/users/%d/%s", id, tc.list), tc.limit)
			if !slices.Equal(got, tc.want) {
				t.Errorf("user %d %s (limit %d): walked %d items, want %d", id, tc.list, tc.limit, len(got), len(tc.want))
			}
			if int(tc.count.(float64)) != len(got) {
				t.Errorf("user %d: count %v, list %d", id, tc.count, len(got))
			}
		}
	}
}

func postIDs(author, n int) []string {
	s := make([]string, n)
	for k := range n {
		s[k] = fmt.Sprint(postID(author, k))
	}
	return s
}

func TestSearch(t *testing.T) {
	e := newEnv(t, 3000)
	full := func(id int) string { return strings.ToLower(string(e.p.g.appendFullName(nil, id))) }
	user := func(id int) string { return string(e.p.g.appendUsername(nil, id)) }
	name7 := full(7)
	for _, tc := range []struct{ name, q string }{
		{"two letters", "le"},
		{"upper case", "LE"},
		{"first name", strings.Fields(name7)[0]},
		{"full name with space", name7},
		{"username", user(7)},
		{"username prefix with dot", strings.SplitN(user(7), "_", 2)[0][:4]},
		{"nothing", "zzzz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := strings.ToLower(tc.q)
			var want []string
			for id := 1; id <= 3000; id++ {
				if strings.HasPrefix(user(id), q) || strings.HasPrefix(full(id), q) {
					want = append(want, fmt.Sprint(id))
				}
			}
			got := e.walk("/v1/search?q="+url.QueryEscape(tc.q), 9)
			if len(got) != len(want) {
				t.Fatalf("q %q: %d results, want %d", tc.q, len(got), len(want))
			}
			seen := map[string]bool{}
			for _, id := range got {
				if seen[id] {
					t.Fatalf("q %q: %s twice", tc.q, id)
				}
				seen[id] = true
			}
			sort.Strings(got)
			sort.Strings(want)
			if !slices.Equal(got, want) {
				t.Fatalf("q %q: results differ", tc.q)
			}
		})
	}
	// A search cursor is bound to its query.
	var pg listPage
	e.getJSON("/v1/search?q=le&limit=1", &pg)
	if status, _, _ := e.do("GET", "/v1/search?q=ma&cursor="+url.QueryEscape(*pg.Next), e.tok); status != 400 {
		t.Errorf("cursor of another query: %d", status)
	}
}

// TestFeed: the feed is every post of the accounts followed, newest first.
func TestFeed(t *testing.T) {
	e := newEnv(t, 3000)
	caller := 0
	for id := 1; id <= 3000; id++ {
		if n := len(e.p.following.list(id)); n >= 3 && n <= 20 {
			caller = id
			break
		}
	}
	e.tok = mint(t, fmt.Sprint(caller))
	type ref struct {
		t  int64
		id int64
	}
	var all []ref
	for _, a := range e.p.following.list(caller) {
		for k := range e.p.postCount(int(a)) {
			all = append(all, ref{e.p.g.postTime(int(a), k), postID(int(a), k)})
		}
	}
	slices.SortFunc(all, func(x, y ref) int {
		if x.t != y.t {
			return int(y.t - x.t)
		}
		return int(y.id - x.id)
	})
	var want []string
	for _, r := range all {
		want = append(want, fmt.Sprint(r.id))
	}
	for _, limit := range []int{1, 13, 50} {
		if got := e.walk("/v1/feed", limit); !slices.Equal(got, want) {
			t.Errorf("limit %d: feed of %d posts, want %d in order", limit, len(got), len(want))
		}
	}
}

func TestGzip(t *testing.T) {
	e := newEnv(t, 1000)
	for _, tc := range []struct {
		name, accept string
		gz           bool
	}{
		{"none", "", false},
		{"gzip", "gzip", true},
		{"list", "br, gzip;q=0.8", true},
		{"star", "*", true},
		{"refused", "gzip;q=0", false},
		{"other only", "br", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, plain := e.do("GET", "/v1/users/3", e.tok)
			status, h, body := e.do("GET", "/v1/users/3", e.tok, "Accept-Encoding", tc.accept)
			if status != 200 {
				t.Fatalf("status %d", status)
			}
			if got := h.Get("Content-Encoding") == "gzip"; got != tc.gz {
				t.Fatalf("Content-Encoding %q, want gzip %v", h.Get("Content-Encoding"), tc.gz)
			}
			if tc.gz {
				zr, err := gzip.NewReader(bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(body, plain) {
				t.Fatal("decoded body differs from the plain one")
			}
		})
	}
}

func TestSignUp(t *testing.T) {
	const n = 2000
	e := newEnv(t, n)
	type answer struct {
		AccountID string `json:"account_id"`
		Token     string `json:"token"`
		Created   int64  `json:"created"`
	}
	var (
		mu      sync.Mutex
		answers []answer
		wg      sync.WaitGroup
	)
	before := time.Now().Unix()
	for range 4 { // readers while accounts are made
		wg.Go(func() {
			for range 25 {
				if status, _, _ := e.do("GET", fmt.Sprintf("/v1/users/%d/followers?limit=50", popular(e.p)), e.tok); status != 200 {
					t.Errorf("read during sign-ups: %d", status)
				}
			}
		})
	}
	for range 20 {
		wg.Go(func() {
			status, _, body := e.do("POST", "/v1/accounts", "")
			var a answer
			if status != http.StatusCreated || json.Unmarshal(body, &a) != nil {
				t.Errorf("sign-up: %d %s", status, body)
				return
			}
			mu.Lock()
			answers = append(answers, a)
			mu.Unlock()
		})
	}
	wg.Wait()
	ids := map[string]bool{}
	for _, a := range answers {
		ids[a.AccountID] = true
		if a.Created < before || a.Created > time.Now().Unix() {
			t.Errorf("created %d out of the test's span", a.Created)
		}
	}
	for id := n + 1; id <= n+20; id++ {
		if !ids[fmt.Sprint(id)] {
			t.Fatalf("account %d not handed out (got %v)", id, ids)
		}
	}
	a := answers[0]
	e.tok = a.Token
	var me map[string]any
	if status := e.getJSON("/v1/me", &me); status != 200 {
		t.Fatalf("/v1/me with the sign-up token: %d", status)
	}
	if me["id"] != a.AccountID || me["email"] != "" || me["phone"] != "" || me["following_count"] != 10.0 || me["posts_count"] != 0.0 {
		t.Fatalf("new account's profile: %v", me)
	}
	raw := e.p.appendProfile(nil, n+1)
	if len(raw) < 400 || len(raw) > 2000 {
		t.Errorf("sign-up profile is %d bytes", len(raw))
	}
	following := e.walk("/v1/users/"+a.AccountID+"/following", 4)
	if len(following) != 10 {
		t.Fatalf("following %d", len(following))
	}
	if got := e.walk("/v1/users/"+a.AccountID+"/posts", 5); len(got) != 0 {
		t.Errorf("new account has posts %v", got)
	}
	// Each followed profile lists the new account, and its count says so.
	for _, f := range following {
		followers := e.walk("/v1/users/"+f+"/followers", 50)
		if !slices.Contains(followers, a.AccountID) {
			t.Errorf("profile %s does not list new follower %s", f, a.AccountID)
		}
		var prof map[string]any
		e.getJSON("/v1/users/"+f, &prof)
		if int(prof["follower_count"].(float64)) != len(followers) {
			t.Errorf("profile %s: follower_count %v, list %d", f, prof["follower_count"], len(followers))
		}
	}
	// The feed of a new account is its followees' posts.
	if got := e.walk("/v1/feed", 50); len(got) == 0 {
		t.Error("empty feed for a new account following 10 profiles")
	}
	// Sign-ups are found by username like everyone else.
	var byName map[string]any
	if status := e.getJSON("/v1/users/by-username/"+me["username"].(string), &byName); status != 200 || byName["id"] != a.AccountID {
		t.Errorf("by-username of a sign-up: %d %v", status, byName["id"])
	}
}

// TestTruthMatchesAPI: the truth CSV says what the API serves.
func TestTruthMatchesAPI(t *testing.T) {
	const n = 1500
	e := newEnv(t, n)
	var buf bytes.Buffer
	if err := WriteTruth(&buf, n, 11); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != n+1 || strings.Join(rows[0], ",") != "id,username,email,phone" {
		t.Fatalf("%d rows, header %v", len(rows), rows[0])
	}
	for _, row := range rows[1:] {
		if row[0] != "1" && row[0] != "750" && row[0] != "1500" && len(row[1])%5 != 0 {
			continue // a sample
		}
		var prof map[string]any
		e.getJSON("/v1/users/"+row[0], &prof)
		if prof["id"] != row[0] || prof["username"] != row[1] || prof["email"] != row[2] || prof["phone"] != row[3] {
			t.Fatalf("truth %v, API %v %v %v %v", row, prof["id"], prof["username"], prof["email"], prof["phone"])
		}
	}
}
