package canary

import (
	"encoding/json"
	"strconv"
	"testing"
)

// TestRoom: the room a page has is the size asked (or the default) less
// its records, at most MaxPerPage; a size the upstream refuses has none.
func TestRoom(t *testing.T) {
	c := newTest(t)
	for _, tc := range []struct {
		query string
		n     int
		want  int
	}{
		{"", 20, 0}, {"", 19, 1}, {"", 3, 2}, {"cursor=abc", 18, 2},
		{"limit=50", 50, 0}, {"limit=50", 49, 1}, {"limit=50", 7, 2},
		{"limit=1", 1, 0}, {"limit=1", 0, 1}, {"q=ab&limit=5&limit=50", 4, 1},
		{"limit=", 19, 1}, // the platform reads an empty limit as none
		{"limit=0", 0, 0}, {"limit=51", 3, 0}, {"limit=abc", 3, 0},
		{"limit=%zz", 3, 2}, {"limit=%zz&limit=5", 4, 1}, // net/url skips a pair that does not unescape
		{"limit=%32%30", 19, 1}, {"li%6dit=30", 28, 2}, {"limits=50", 19, 1},
	} {
		if got := c.Room(tc.query, tc.n); got != tc.want {
			t.Errorf("Room(%q, %d) = %d, want %d", tc.query, tc.n, got, tc.want)
		}
	}
}

// TestPlanRoom: a page's plan ends at its room's shown canary: the first
// room shown of the full plan, no slot after the last of them, and none
// at all without room.
func TestPlanRoom(t *testing.T) {
	c := newTest(t)
	ids := make([][]byte, 48)
	id := func(i int) []byte { return ids[i] }
	checked := 0
	for page := range 3000 {
		for i := range ids {
			ids[i] = []byte(strconv.Itoa(page*48 + i + 1))
		}
		type call struct {
			i     int
			shown bool
		}
		var full []call
		c.Plan(0, "GET /v1/users/{id}/followers", strconv.Itoa(page), "acct-1", 7, len(ids), id, func(i int, _ Slot, in bool) { full = append(full, call{i, in}) })
		for room := 0; room <= 3; room++ {
			var got []call
			c.PlanRoom(0, "GET /v1/users/{id}/followers", strconv.Itoa(page), "acct-1", 7, len(ids), room, id, func(i int, _ Slot, in bool) { got = append(got, call{i, in}) })
			// The full plan cut after its min(room, MaxPerPage)-th shown.
			var want []call
			shown := 0
			for _, x := range full {
				if shown >= min(room, c.cfg.MaxPerPage) {
					break
				}
				want = append(want, x)
				if x.shown {
					shown++
				}
			}
			if len(got) != len(want) {
				t.Fatalf("page %d room %d: %v, want %v", page, room, got, want)
			}
			for k := range got {
				if got[k] != want[k] {
					t.Fatalf("page %d room %d: %v, want %v", page, room, got, want)
				}
			}
			if room == 1 && shown == 1 {
				checked++
			}
		}
	}
	if checked == 0 {
		t.Fatal("no page showed a canary")
	}
}

// TestAnswerPageSize: a canary's own lists (followers, following, posts,
// search) read their size as a real list's is read (Room's reading:
// canary.page's parameter, default and max), and refuse a size the
// platform refuses with its status and body. Before, they read "limit" up
// to 50 whatever canary.page said: with page.limit "size" and page.max
// 100, ?size=70 got 20 records where a real list gets 70, and ?size=70's
// refusal was nobody's. With the defaults, the refusal is the lab's.
func TestAnswerPageSize(t *testing.T) {
	for _, tc := range []struct {
		name string
		page Page
		// asks maps a query to the records a 200 page holds (0: the
		// refusal, badSize).
		asks    map[string]int
		badBody string
	}{
		{"defaults", Page{}, map[string]int{
			"": 20, "limit=7": 7, "limit=50": 50, "limit=": 20, "limit=%37": 7, "limit=%zz&limit=3": 3,
			"limit=0": 0, "limit=51": 0, "limit=abc": 0, "limit=-1": 0, "size=7": 20,
		}, `{"error":"limit must be an integer from 1 to 50"}`},
		{"size to 100", Page{Limit: "size", Max: 100, Default: 25}, map[string]int{
			"": 25, "size=70": 70, "size=100": 100, "limit=70": 25, "limit=abc": 25,
			"size=0": 0, "size=101": 0, "size=abc": 0,
		}, `{"error":"size must be an integer from 1 to 100"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewWithKeys(Config{KeyEnv: "X", Page: tc.page}, testKey)
			if err != nil {
				t.Fatal(err)
			}
			p := c.profile(0, 1)
			for p.Followers < 120 || p.Following < 120 || p.Posts < 50 {
				p = c.profile(0, p.Index+1)
			}
			r := c.Config().Routes
			id := strconv.FormatInt(p.ID, 10)
			param := func(string) string { return id }
			for q, want := range tc.asks {
				for _, route := range []string{r.Followers, r.Following, r.Posts} {
					st, body, ok := c.Answer(route, param, q)
					if !ok {
						t.Fatalf("%s?%s: not answered", route, q)
					}
					if want == 0 {
						if st != 400 || string(body) != tc.badBody {
							t.Errorf("%s?%s: %d %s, want 400 %s", route, q, st, body, tc.badBody)
						}
						continue
					}
					var pg struct {
						Users, Posts []json.RawMessage
					}
					if err := json.Unmarshal(body, &pg); err != nil || st != 200 {
						t.Fatalf("%s?%s: %d %s (%v)", route, q, st, body, err)
					}
					if route == r.Posts {
						want = min(want, p.Posts)
					}
					if n := len(pg.Users) + len(pg.Posts); n != want {
						t.Errorf("%s?%s: %d records, want %d", route, q, n, want)
					}
				}
				// A search for a canary's username: one record, or the
				// same refusal.
				st, body, _ := c.Answer(r.Search, nil, "q="+p.Username+"&"+q)
				if (want == 0) != (st == 400) || want == 0 && string(body) != tc.badBody {
					t.Errorf("search ?%s: %d %s", q, st, body)
				}
			}
		})
	}
}

// TestAnswerSearchCursor: the platform issues no cursor for a search for a
// canary's whole username (it answers it empty), so it refuses any cursor
// sent with one: so does the canary's answer.
func TestAnswerSearchCursor(t *testing.T) {
	c := newTest(t)
	p := c.profile(0, 7)
	st, body, ok := c.Answer(c.Config().Routes.Search, nil, "q="+p.Username+"&cursor=AAAAAAAAAAAAAAAA")
	if !ok || st != 400 || string(body) != `{"error":"bad cursor"}` {
		t.Fatalf("%d %s %v", st, body, ok)
	}
}
