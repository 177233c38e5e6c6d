package canary

import (
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"strings"
	"time"

	"github.com/warden-gw/warden/internal/refusal"

	"github.com/warden-gw/warden/internal/inspect"
)

// The answers warden makes for a canary, in the lab platform contract's
// shapes (shared/lab-platform.md): full profile, SUMMARY, POST, pages of
// {"users"|"posts": [...], "next_cursor": ...} with opaque cursors. Strings
// go through refusal.AppendString, the one JSON string encoder of every
// body warden writes.

var (
	bodyBadCursor = []byte(`{"error":"bad cursor"}`)
	bodyNotFound  = []byte(`{"error":"not found"}`)
)

// Answer answers a request about a canary: pattern is the matched route,
// param reads its parameters, query is the raw query. ok is false for a
// request that is not about a canary (the upstream answers it).
func (c *Canaries) Answer(pattern string, param func(string) string, query string) (status int, body []byte, ok bool) {
	r := &c.cfg.Routes
	switch pattern {
	case r.Profile:
		p, ok := c.ParseID(param("id")) // a real id: one length compare says no
		if !ok {
			return 0, nil, false
		}
		return 200, c.AppendProfile(nil, &p), true
	case r.ByUsername:
		// In lower case, as the platform looks a username up: a canary
		// that answered only its own spelling would tell itself apart.
		p, ok := c.ByUsername(strings.ToLower(param("username")))
		if !ok {
			return 0, nil, false
		}
		return 200, c.AppendProfile(nil, &p), true
	case r.Followers, r.Following:
		p, ok := c.ParseID(param("id"))
		if !ok {
			return 0, nil, false
		}
		kind, total := byte('r'), p.Followers
		if pattern == r.Following {
			kind, total = 'g', p.Following
		}
		at, limit, bad := c.page(query, kind, &p)
		if bad != nil {
			return 400, bad, true
		}
		b := []byte(`{"users":[`)
		for i := at; i < total && i < at+limit; i++ {
			if i > at {
				b = append(b, ',')
			}
			f := c.profile(p.Key, c.neighbour(&p, kind, i))
			b = c.AppendSummary(b, &f)
		}
		return 200, c.appendNext(b, kind, &p, at, limit, total), true
	case r.Posts:
		p, ok := c.ParseID(param("id"))
		if !ok {
			return 0, nil, false
		}
		at, limit, bad := c.page(query, 'p', &p)
		if bad != nil {
			return 400, bad, true
		}
		b := []byte(`{"posts":[`)
		for k := at; k < p.Posts && k < at+limit; k++ {
			if k > at {
				b = append(b, ',')
			}
			b = c.appendPost(b, &p, k)
		}
		return 200, c.appendNext(b, 'p', &p, at, limit, p.Posts), true
	case r.Search:
		// The platform answers nothing for a canary's whole username
		// (its digits are above every real one's): warden answers the
		// canary, as the platform would if it were real.
		if !strings.Contains(query, "_") && !strings.Contains(query, "%5") { // no username's "_": no canary, no parsing
			return 0, nil, false
		}
		v := inspect.QueryValue(query, r.SearchQuery)
		if !c.canaryShapedName(v) {
			return 0, nil, false
		}
		p, ok := c.ByUsername(strings.ToLower(v))
		if !ok {
			return 0, nil, false
		}
		// Its size and cursor are read as the platform reads a search's,
		// after the query: a size it refuses is refused here too, and so
		// is any cursor (the platform issues none for a search it answers
		// empty, so none it would take exists).
		if _, ok := c.pageSize(query); !ok {
			return 400, c.badSize, true
		}
		if inspect.QueryValue(query, "cursor") != "" {
			return 400, bodyBadCursor, true
		}
		b := c.AppendSummary([]byte(`{"users":[`), &p)
		return 200, append(b, `],"next_cursor":null}`...), true
	case r.Post:
		s := param("id")
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id < 100 || strconv.FormatInt(id, 10) != s {
			return 0, nil, false
		}
		p, ok := c.byID(id / 100)
		if !ok {
			return 0, nil, false
		}
		if int(id%100) >= p.Posts {
			return 404, bodyNotFound, true
		}
		return 200, c.appendPost(nil, &p, int(id%100)), true
	}
	return 0, nil, false
}

// neighbour is the i-th follower (kind 'r') or followed (kind 'g') of p:
// another canary of p's key.
func (c *Canaries) neighbour(p *Profile, kind byte, i int) uint32 {
	var b [13]byte
	b[0] = kind
	binary.BigEndian.PutUint32(b[1:], p.Index)
	binary.BigEndian.PutUint64(b[5:], uint64(i))
	return uint32(c.keys[p.Key].graph.sum(b[:]) % indexCount)
}

// page reads the size and cursor of a canary's list of kind. The size is
// read as a real list's is (pageSize: canary.page's parameter, default and
// max, the seeding's reading too), and one the platform refuses gets its
// refusal (badSize), before the cursor is looked at, as the platform does:
// a canary's own list that read "limit" up to 50 where the platform reads
// "size" up to 100 answered differently from a real one on the same route.
func (c *Canaries) page(query string, kind byte, p *Profile) (at, limit int, bad []byte) {
	limit, ok := c.pageSize(query)
	if !ok {
		return 0, 0, c.badSize
	}
	if s := inspect.QueryValue(query, "cursor"); s != "" {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(b) < 6 || b[0] != kind {
			return 0, 0, bodyBadCursor
		}
		payload := b[:len(b)-4]
		if binary.BigEndian.Uint32(b[len(b)-4:]) != uint32(c.keys[p.Key].cursor.sum(payload)) {
			return 0, 0, bodyBadCursor
		}
		id, n := binary.Uvarint(payload[1:])
		if n <= 0 || int64(id) != p.ID {
			return 0, 0, bodyBadCursor
		}
		off, m := binary.Uvarint(payload[1+n:])
		if m <= 0 || 1+n+m != len(payload) || off > 1<<20 {
			return 0, 0, bodyBadCursor
		}
		at = int(off)
	}
	return at, limit, nil
}

func (c *Canaries) appendNext(b []byte, kind byte, p *Profile, at, limit, total int) []byte {
	b = append(b, `],"next_cursor":`...)
	if at+limit >= total {
		return append(b, "null}"...)
	}
	cur := []byte{kind}
	cur = binary.AppendUvarint(cur, uint64(p.ID))
	cur = binary.AppendUvarint(cur, uint64(at+limit))
	cur = binary.BigEndian.AppendUint32(cur, uint32(c.keys[p.Key].cursor.sum(cur)))
	b = append(b, '"')
	b = base64.RawURLEncoding.AppendEncode(b, cur)
	return append(b, `"}`...)
}

// AppendProfile appends p's full profile.
func (c *Canaries) AppendProfile(b []byte, p *Profile) []byte {
	b = append(b, `{"id":"`...)
	b = strconv.AppendInt(b, p.ID, 10)
	b = append(b, `","username":`...)
	b = refusal.AppendString(b, p.Username)
	b = append(b, `,"full_name":`...)
	b = refusal.AppendString(b, p.FullName)
	b = append(b, `,"bio":`...)
	if p.Bio == "" {
		p.Bio = c.bio(p)
	}
	b = refusal.AppendString(b, p.Bio)
	b = append(b, `,"city":`...)
	b = refusal.AppendString(b, p.City)
	b = append(b, `,"category":`...)
	b = refusal.AppendString(b, p.Category)
	b = append(b, `,"is_business":`...)
	b = strconv.AppendBool(b, p.IsBusiness)
	b = append(b, `,"follower_count":`...)
	b = strconv.AppendInt(b, int64(p.Followers), 10)
	b = append(b, `,"following_count":`...)
	b = strconv.AppendInt(b, int64(p.Following), 10)
	b = append(b, `,"posts_count":`...)
	b = strconv.AppendInt(b, int64(p.Posts), 10)
	b = append(b, `,"created_at":"`...)
	b = time.Unix(p.Created, 0).UTC().AppendFormat(b, time.RFC3339)
	b = append(b, `","email":`...)
	b = refusal.AppendString(b, p.Email)
	b = append(b, `,"phone":`...)
	b = refusal.AppendString(b, p.Phone)
	return append(b, '}')
}

// AppendSummary appends p's SUMMARY, as list answers carry it.
func (c *Canaries) AppendSummary(b []byte, p *Profile) []byte {
	b = append(b, `{"id":"`...)
	b = strconv.AppendInt(b, p.ID, 10)
	b = append(b, `","username":`...)
	b = refusal.AppendString(b, p.Username)
	b = append(b, `,"full_name":`...)
	b = refusal.AppendString(b, p.FullName)
	b = append(b, `,"follower_count":`...)
	b = strconv.AppendInt(b, int64(p.Followers), 10)
	b = append(b, `,"is_business":`...)
	b = strconv.AppendBool(b, p.IsBusiness)
	return append(b, '}')
}

// appendPost appends post k of p (0 the newest): id p.ID*100+k.
func (c *Canaries) appendPost(b []byte, p *Profile, k int) []byte {
	s := chooser(c.keys[p.Key].seed(p.Index))
	b = append(b, `{"id":"`...)
	b = strconv.AppendInt(b, p.ID*100+int64(k), 10)
	b = append(b, `","author_id":"`...)
	b = strconv.AppendInt(b, p.ID, 10)
	b = append(b, `","author":`...)
	b = c.AppendSummary(b, p)
	b = append(b, `,"text":"`...)
	n := 1 + s.pick(tagPost+uint64(k)*4, 3)
	for i := range n {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, postPhrases[s.pick(tagPost+uint64(k)*4+1+uint64(i+1)<<32, len(postPhrases))]...)
	}
	b = append(b, " #"...)
	b = append(b, hashtags[s.pick(tagPost+uint64(k)*4+2, len(hashtags))]...)
	b = append(b, `","created_at":"`...)
	gap := int64(3600 + s.pick(tagPost-1, 14*86400))
	t := epochUnix - int64(k+1)*gap
	if t < p.Created {
		t = p.Created + int64(p.Posts-k)*60
	}
	b = time.Unix(t, 0).UTC().AppendFormat(b, time.RFC3339)
	b = append(b, `","like_count":`...)
	r := s.pick(tagPost+uint64(k)*4+3, 1000)
	b = strconv.AppendInt(b, int64((p.Followers/8+5)*r*r/1_000_000), 10)
	return append(b, '}')
}

// AnswerPath is Answer for a request the route map does not match: the
// configured patterns are matched against method and path here.
func (c *Canaries) AnswerPath(method, path, query string) (status int, body []byte, ok bool) {
	r := &c.cfg.Routes
	for _, pat := range [...]string{r.Profile, r.ByUsername, r.Followers, r.Following, r.Posts, r.Post, r.Search} {
		if params, ok := matchPattern(pat, method, path); ok {
			return c.Answer(pat, func(k string) string { return params[k] }, query)
		}
	}
	return 0, nil, false
}

// matchPattern matches "METHOD /a/{x}/b" against method and path.
func matchPattern(pat, method, path string) (map[string]string, bool) {
	m, p, ok := strings.Cut(pat, " ")
	if !ok || m != method || strings.Count(p, "/") != strings.Count(path, "/") {
		return nil, false
	}
	var params map[string]string
	for p != "" {
		var ps, qs string
		ps, p, _ = strings.Cut(p, "/")
		qs, path, _ = strings.Cut(path, "/")
		if len(ps) > 2 && ps[0] == '{' && ps[len(ps)-1] == '}' {
			if qs == "" {
				return nil, false
			}
			if params == nil {
				params = map[string]string{}
			}
			params[ps[1:len(ps)-1]] = qs
		} else if ps != qs {
			return nil, false
		}
	}
	return params, path == ""
}

// canaryShapedName: "_" and 8 digits at the end, the first of them one a
// canary's number can start with; cheap, before any hashing.
func (c *Canaries) canaryShapedName(v string) bool {
	i := len(v) - 9
	return i >= 1 && v[i] == '_' && v[i+1] >= '1' && v[i+1] <= '8'
}
