package canary

import (
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
