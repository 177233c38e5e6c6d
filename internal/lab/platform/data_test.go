package platform

import (
	"bytes"
	"encoding/json"
	"net/mail"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

func testProfiles() int {
	if testing.Short() {
		return 5_000
	}
	return 30_000
}

func newTest(t testing.TB, n int, seed int64) *Platform {
	t.Helper()
	p, err := New(Options{Profiles: n, Seed: seed, JWTSecret: "test-secret"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPerm24 proves the bijection behind unique usernames, emails and
// phones: every 24-bit value is hit once, and back inverts fwd.
func TestPerm24(t *testing.T) {
	for _, seed := range []int64{-7} {
		g := newGen(seed)
		perms := len(g.perms)
		if testing.Short() { // all three share one construction
			perms = 1
		}
		for i := range perms {
			seen := make([]uint64, (1<<idBits)/64)
			for x := uint64(0); x < 1<<idBits; x++ {
				y := g.perms[i].fwd(x)
				if y > idMask || seen[y/64]&(1<<(y%64)) != 0 {
					t.Fatalf("seed %d perm %d: %d -> %d repeats or overflows", seed, i, x, y)
				}
				seen[y/64] |= 1 << (y % 64)
				if x%4099 == 0 && g.perms[i].back(y) != x {
					t.Fatalf("seed %d perm %d: back(fwd(%d)) = %d", seed, i, x, g.perms[i].back(y))
				}
			}
		}
	}
}

// TestPhoneBlocks: block prefixes are prefix-free (so blocks never share a
// number) and numbers across each block are valid for the block's country.
// The whole of every block was checked once with the same library.
func TestPhoneBlocks(t *testing.T) {
	for i, a := range phoneSlots {
		for j, b := range phoneSlots {
			if i != j && strings.HasPrefix(b.prefix, a.prefix) {
				t.Errorf("prefix %s (slot %d) is a prefix of %s (slot %d)", a.prefix, i, b.prefix, j)
			}
		}
		if _, ok := countryCities[a.country]; !ok {
			t.Errorf("slot %d: no cities for %s", i, a.country)
		}
	}
	step := 2621 // ~200 numbers per block
	if testing.Short() {
		step = 26214
	}
	for _, blk := range phoneSlots {
		for _, local := range append([]int{0, 524287}, seq(1, 524287, step)...) {
			num := "+" + blk.prefix + pad6(local)
			pn, err := phonenumbers.Parse(num, "")
			if err != nil || !phonenumbers.IsValidNumber(pn) {
				t.Fatalf("%s: not valid (%v)", num, err)
			}
			if got := phonenumbers.GetRegionCodeForNumber(pn); got != blk.country {
				t.Fatalf("%s: region %s, want %s", num, got, blk.country)
			}
		}
	}
}

func seq(lo, hi, step int) []int {
	var s []int
	for i := lo; i < hi; i += step {
		s = append(s, i)
	}
	return s
}

func pad6(n int) string {
	s := "000000" + itoa(n)
	return s[len(s)-6:]
}

func itoa(n int) string { return strconv.Itoa(n) }

var usernameRE = regexp.MustCompile(`^[a-z]+[._]?[a-z]*_[0-9]+$`)

func TestProfileInvariants(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		seed int64
	}{
		{"seed1", testProfiles(), 1},
		{"seed42", testProfiles() / 3, 42},
		{"tiny", 3, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newTest(t, tc.n, tc.seed)
			users := map[string]int{}
			emails := map[string]int{}
			phones := map[string]int{}
			business := 0
			for id := 1; id <= tc.n; id++ {
				var prof map[string]any
				raw := p.appendProfile(nil, id)
				if len(raw) < 400 || len(raw) > 2000 {
					t.Fatalf("id %d: profile JSON is %d bytes", id, len(raw))
				}
				if err := json.Unmarshal(raw, &prof); err != nil {
					t.Fatalf("id %d: %v: %s", id, err, raw)
				}
				u, e, ph := prof["username"].(string), prof["email"].(string), prof["phone"].(string)
				if !usernameRE.MatchString(u) || strings.ToLower(u) != u {
					t.Fatalf("id %d: username %q", id, u)
				}
				if prev, dup := users[u]; dup {
					t.Fatalf("username %q of %d and %d", u, prev, id)
				}
				users[u] = id
				if prev, dup := emails[e]; dup {
					t.Fatalf("email %q of %d and %d", e, prev, id)
				}
				emails[e] = id
				if prev, dup := phones[ph]; dup {
					t.Fatalf("phone %q of %d and %d", ph, prev, id)
				}
				phones[ph] = id
				if a, err := mail.ParseAddress(e); err != nil || a.Address != e {
					t.Fatalf("id %d: email %q: %v", id, e, err)
				}
				if id%97 == 0 || tc.n < 10 {
					pn, err := phonenumbers.Parse(ph, "")
					if err != nil || !phonenumbers.IsValidNumber(pn) || phonenumbers.Format(pn, phonenumbers.E164) != ph {
						t.Fatalf("id %d: phone %q not valid E.164 (%v)", id, ph, err)
					}
				}
				if prof["is_business"].(bool) {
					business++
				}
				if prof["id"] != itoa(id) {
					t.Fatalf("id %d: id field %v", id, prof["id"])
				}
				if got := p.g.idForUsername(u, p.accounts()); got != id {
					t.Fatalf("username %q resolves to %d, want %d", u, got, id)
				}
				for _, f := range []string{"full_name", "bio", "city", "category", "created_at"} {
					if s, _ := prof[f].(string); s == "" {
						t.Fatalf("id %d: empty %s", id, f)
					}
				}
				if int(prof["follower_count"].(float64)) != len(p.followers.list(id)) ||
					int(prof["following_count"].(float64)) != len(p.following.list(id)) {
					t.Fatalf("id %d: counts differ from lists", id)
				}
			}
			if tc.n >= 1000 {
				if share := float64(business) / float64(tc.n); share < 0.13 || share > 0.17 {
					t.Errorf("business share %.3f, want about 0.15", share)
				}
			}
		})
	}
}

// TestGraph: lists are sorted, free of self-follows and repeats, the two
// directions mirror each other, and followers are heavy-tailed.
func TestGraph(t *testing.T) {
	n := testProfiles()
	p := newTest(t, n, 3)
	edges := 0
	for u := 1; u <= n; u++ {
		l := p.following.list(u)
		for i, v := range l {
			if int(v) == u || v < 1 || int(v) > n || (i > 0 && l[i-1] >= v) {
				t.Fatalf("following of %d bad at %d: %v", u, i, v)
			}
			if _, found := slices.BinarySearch(p.followers.list(int(v)), int32(u)); !found {
				t.Fatalf("%d follows %d but is not among its followers", u, v)
			}
		}
		edges += len(l)
	}
	if edges != len(p.followers.adj) {
		t.Fatalf("%d following edges, %d follower edges", edges, len(p.followers.adj))
	}
	counts := make([]int, n)
	for v := 1; v <= n; v++ {
		counts[v-1] = len(p.followers.list(v))
	}
	slices.Sort(counts)
	median, top := counts[n/2], counts[n-1]
	if top < 50*max(median, 1) {
		t.Errorf("followers not heavy-tailed: median %d, max %d", median, top)
	}
	t.Logf("followers: median %d, p99 %d, max %d; edges %d", median, counts[n*99/100], top, edges)
}

func TestDeterministic(t *testing.T) {
	n := testProfiles() / 3
	a, b := newTest(t, n, 9), newTest(t, n, 9)
	other := newTest(t, n, 10)
	if !slices.Equal(a.following.adj, b.following.adj) || !slices.Equal(a.followers.off, b.followers.off) ||
		!slices.Equal(a.search.byUser, b.search.byUser) || !slices.Equal(a.search.byName, b.search.byName) {
		t.Fatal("two builds with one seed differ")
	}
	same := 0
	for id := 1; id <= n; id += 37 {
		if !bytes.Equal(a.appendProfile(nil, id), b.appendProfile(nil, id)) {
			t.Fatalf("profile %d differs between builds", id)
		}
		if bytes.Equal(a.appendProfile(nil, id), other.appendProfile(nil, id)) {
			same++
		}
	}
	if same > 0 {
		t.Errorf("%d profiles equal under another seed", same)
	}
	// Pinned values: a change here changes every measurement made so far.
	var buf bytes.Buffer
	if err := WriteTruth(&buf, 3, 1); err != nil {
		t.Fatal(err)
	}
	want := "id,username,email,phone\n" +
		"1,hannaryan_5154858,hryan12901454@example.org,+33613160044\n" +
		"2,lina.murphy_1417991,lina.murphy1405809@example.net,+819087204789\n" +
		"3,lucianavarro_15580658,lucia4867917@inbox.example,+17135147171\n"
	if buf.String() != want {
		t.Errorf("truth for seed 1 changed:\n%s", buf.String())
	}
}

func TestPostsAndTimes(t *testing.T) {
	p := newTest(t, 2000, 4)
	seen := map[int64]bool{}
	for a := 1; a <= 2000; a++ {
		c := p.postCount(a)
		if c < 0 || c > 50 {
			t.Fatalf("author %d: %d posts", a, c)
		}
		for k := range c {
			id := postID(a, k)
			if seen[id] {
				t.Fatalf("post id %d twice", id)
			}
			seen[id] = true
			if k > 0 && p.g.postTime(a, k) >= p.g.postTime(a, k-1) {
				t.Fatalf("author %d: post %d not older than post %d", a, k, k-1)
			}
			if au, kk, ok := p.postByID(id); !ok || au != a || kk != k {
				t.Fatalf("post %d resolves to %d/%d/%v", id, au, kk, ok)
			}
		}
		if c < 50 {
			if _, _, ok := p.postByID(postID(a, c)); ok {
				t.Fatalf("post %d exists past the count", postID(a, c))
			}
		}
		if c > 0 && p.g.created(a) >= p.g.postTime(a, c-1) {
			t.Fatalf("author %d created after its oldest post", a)
		}
	}
}

// TestWordLists guards what the uniqueness and ordering arguments assume:
// names are distinct letters-only words, and the search orders equal plain
// string order.
func TestWordLists(t *testing.T) {
	for _, list := range [][]string{firstLower, lastLower} {
		seen := map[string]bool{}
		for _, w := range list {
			if seen[w] || strings.Trim(w, "abcdefghijklmnopqrstuvwxyz") != "" || w == "" {
				t.Fatalf("word %q repeated or not letters only", w)
			}
			seen[w] = true
		}
	}
	p := newTest(t, 4000, 2)
	user := func(id int32) string { return string(p.g.appendUsername(nil, int(id))) }
	name := func(id int32) string { return string(p.g.appendFullNameLower(nil, int(id))) }
	for i := 1; i < len(p.search.byUser); i++ {
		a, b := p.search.byUser[i-1], p.search.byUser[i]
		if user(a) >= user(b) {
			t.Fatalf("usernames out of order: %q before %q", user(a), user(b))
		}
		a, b = p.search.byName[i-1], p.search.byName[i]
		if name(a) > name(b) || (name(a) == name(b) && a > b) {
			t.Fatalf("names out of order: %q/%d before %q/%d", name(a), a, name(b), b)
		}
	}
}
