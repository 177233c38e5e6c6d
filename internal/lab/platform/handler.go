package platform

import (
	"bytes"
	"container/heap"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
)

// Handler serves the whole API of the contract (lab-platform.md).
func (p *Platform) Handler() http.Handler { return p }

var (
	hdrJSON = []string{"application/json"}
	hdrGzip = []string{"gzip"}
	hdrVary = []string{"Accept-Encoding"}
)

// Bodies the contract spells out, byte for byte.
var (
	bodyOK           = []byte(`{"ok": true}`)
	bodyUnauthorized = []byte(`{"error": "unauthorized"}`)
	bodyNotFound     = []byte(`{"error":"not found"}`)
	bodyMethod       = []byte(`{"error":"method not allowed"}`)
	bodyBadLimit     = []byte(`{"error":"limit must be an integer from 1 to 50"}`)
	bodyBadCursor    = []byte(`{"error":"bad cursor"}`)
	bodyShortQuery   = []byte(`{"error":"q must be at least 2 characters"}`)
	bodyFull         = []byte(`{"error":"sign-up capacity reached"}`)
)

const (
	defaultLimit = 20
	maxLimit     = 50
)

func (p *Platform) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	bp := p.bufs.Get().(*[]byte)
	b := (*bp)[:0]
	status, b := p.route(b, r)
	p.reply(w, r, status, b)
	if cap(b) <= 1<<16 {
		*bp = b
		p.bufs.Put(bp)
	}
}

// route writes the answer to r into b and returns its status.
func (p *Platform) route(b []byte, r *http.Request) (int, []byte) {
	path := r.URL.Path
	get := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch {
	case path == "/healthz":
		if !get {
			return http.StatusMethodNotAllowed, append(b, bodyMethod...)
		}
		return http.StatusOK, append(b, bodyOK...)
	case path == "/v1/accounts":
		if r.Method != http.MethodPost {
			return http.StatusMethodNotAllowed, append(b, bodyMethod...)
		}
		return p.signUpReply(b)
	case !strings.HasPrefix(path, "/v1/"):
		return http.StatusNotFound, append(b, bodyNotFound...)
	}
	var auth string
	if v := r.Header["Authorization"]; len(v) > 0 {
		auth = v[0]
	}
	caller := p.account(auth)
	if caller == 0 {
		return http.StatusUnauthorized, append(b, bodyUnauthorized...)
	}
	if !get {
		return http.StatusMethodNotAllowed, append(b, bodyMethod...)
	}
	rest := path[len("/v1/"):]
	switch {
	case rest == "me":
		return http.StatusOK, p.appendProfile(b, caller)
	case rest == "search":
		return p.searchReply(b, r.URL.Query())
	case rest == "feed":
		return p.feedReply(b, caller, r.URL.Query())
	case strings.HasPrefix(rest, "posts/"):
		id, err := strconv.ParseInt(rest[len("posts/"):], 10, 64)
		if err != nil {
			break
		}
		author, k, ok := p.postByID(id)
		if !ok {
			break
		}
		return http.StatusOK, p.appendPost(b, author, k)
	case strings.HasPrefix(rest, "users/by-username/"):
		name := strings.ToLower(rest[len("users/by-username/"):])
		if id := p.g.idForUsername(name, p.accounts()); id != 0 {
			return http.StatusOK, p.appendProfile(b, id)
		}
	case strings.HasPrefix(rest, "users/"):
		idStr, sub, _ := strings.Cut(rest[len("users/"):], "/")
		id := p.parseAccount(idStr)
		if id == 0 {
			break
		}
		switch sub {
		case "":
			if strings.HasSuffix(rest, "/") {
				break
			}
			return http.StatusOK, p.appendProfile(b, id)
		case "followers", "following", "posts":
			return p.listReply(b, id, sub, r.URL.Query())
		}
	}
	return http.StatusNotFound, append(b, bodyNotFound...)
}

// parseAccount returns the id in s if it is a canonical decimal of an
// existing account, else 0.
func (p *Platform) parseAccount(s string) int {
	if len(s) == 0 || len(s) > 9 || s[0] == '0' {
		return 0
	}
	id := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0
		}
		id = id*10 + int(s[i]-'0')
	}
	if id > p.accounts() {
		return 0
	}
	return id
}

func (p *Platform) signUpReply(b []byte) (int, []byte) {
	id, token, created, err := p.signUp(time.Now())
	if errors.Is(err, errFull) {
		return http.StatusServiceUnavailable, append(b, bodyFull...)
	}
	if err != nil {
		return http.StatusInternalServerError, append(b, `{"error":"internal error"}`...)
	}
	b = append(b, `{"account_id": `...)
	b = appendIDString(b, int64(id))
	b = append(b, `, "token": `...)
	b = appendString(b, token)
	b = append(b, `, "created": `...)
	b = strconv.AppendInt(b, created, 10)
	return http.StatusCreated, append(b, '}')
}

// pageArgs reads limit and cursor; the cursor must be of kind with n values.
func (p *Platform) pageArgs(q url.Values, kind byte, vals []uint64) (limit int, hasCursor bool, bad []byte) {
	limit = defaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return 0, false, bodyBadLimit
		}
		limit = n
	}
	if c := q.Get("cursor"); c != "" {
		if !p.g.decodeCursor(c, kind, vals) {
			return 0, false, bodyBadCursor
		}
		hasCursor = true
	}
	return limit, hasCursor, nil
}

// listReply answers followers, following and posts of account id. Their
// cursors hold (id, offset).
func (p *Platform) listReply(b []byte, id int, which string, q url.Values) (int, []byte) {
	kind := map[string]byte{"followers": curFollowers, "following": curFollowing, "posts": curPosts}[which]
	var vals [2]uint64
	limit, hasCursor, bad := p.pageArgs(q, kind, vals[:])
	if bad != nil {
		return http.StatusBadRequest, append(b, bad...)
	}
	at := 0
	if hasCursor {
		if vals[0] != uint64(id) || vals[1] > 1<<31 {
			return http.StatusBadRequest, append(b, bodyBadCursor...)
		}
		at = int(vals[1])
	}
	var total int
	if which == "posts" {
		total = p.postCount(id)
		b = append(b, `{"posts":[`...)
		for k := at; k < total && k < at+limit; k++ {
			if k > at {
				b = append(b, ',')
			}
			b = p.appendPost(b, id, k)
		}
	} else {
		var page []int32
		if which == "followers" {
			page, total = p.followersPage(id, at, limit)
		} else {
			all := p.followingList(id)
			page, total = window(all, nil, at, limit), len(all)
		}
		b = append(b, `{"users":[`...)
		for i, v := range page {
			if i > 0 {
				b = append(b, ',')
			}
			b = p.appendSummary(b, int(v))
		}
	}
	b = append(b, `],"next_cursor":`...)
	if at+limit < total {
		b = appendString(b, p.g.encodeCursor(kind, uint64(id), uint64(at+limit)))
	} else {
		b = append(b, "null"...)
	}
	return http.StatusOK, append(b, '}')
}

// searchReply: cursor holds (hash of q, phase, index).
func (p *Platform) searchReply(b []byte, q url.Values) (int, []byte) {
	query := strings.ToLower(q.Get("q"))
	if len([]rune(query)) < 2 {
		return http.StatusBadRequest, append(b, bodyShortQuery...)
	}
	qh := uint64(p.g.cursorCheck([]byte(query)))
	var vals [3]uint64
	limit, hasCursor, bad := p.pageArgs(q, curSearch, vals[:])
	if bad != nil {
		return http.StatusBadRequest, append(b, bad...)
	}
	var at searchPos
	if hasCursor {
		if vals[0] != qh || vals[1] > 1 || vals[2] > uint64(p.n) {
			return http.StatusBadRequest, append(b, bodyBadCursor...)
		}
		at = searchPos{phase: int(vals[1]), index: int(vals[2])}
	}
	ids, next, done := p.search.page(p.g, []byte(query), at, limit)
	b = append(b, `{"users":[`...)
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = p.appendSummary(b, id)
	}
	b = append(b, `],"next_cursor":`...)
	if done {
		b = append(b, "null"...)
	} else {
		b = appendString(b, p.g.encodeCursor(curSearch, qh, uint64(next.phase), uint64(next.index)))
	}
	return http.StatusOK, append(b, '}')
}

// feedReply merges the posts of the accounts the caller follows, newest
// first (ties by higher post id). The cursor holds the last (time, id)
// served; the next page starts strictly after it.
func (p *Platform) feedReply(b []byte, caller int, q url.Values) (int, []byte) {
	var vals [2]uint64
	limit, hasCursor, bad := p.pageArgs(q, curFeed, vals[:])
	if bad != nil {
		return http.StatusBadRequest, append(b, bad...)
	}
	before := func(t, id int64) bool { return true }
	if hasCursor {
		ct, cid := int64(vals[0]), int64(vals[1])
		before = func(t, id int64) bool { return t < ct || (t == ct && id < cid) }
	}
	var h postHeap
	for _, a := range p.followingList(caller) {
		author := int(a)
		n := p.postCount(author)
		// Keys fall as k grows: find the first k before the cursor.
		lo, hi := 0, n
		for lo < hi {
			m := (lo + hi) / 2
			if before(p.g.postTime(author, m), postID(author, m)) {
				hi = m
			} else {
				lo = m + 1
			}
		}
		if lo < n {
			h = append(h, postRef{t: p.g.postTime(author, lo), author: author, k: lo, n: n})
		}
	}
	heap.Init(&h)
	b = append(b, `{"posts":[`...)
	var last postRef
	for i := 0; i < limit && len(h) > 0; i++ {
		top := h[0]
		if i > 0 {
			b = append(b, ',')
		}
		b = p.appendPost(b, top.author, top.k)
		last = top
		if top.k+1 < top.n {
			h[0].k++
			h[0].t = p.g.postTime(top.author, top.k+1)
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
		}
	}
	b = append(b, `],"next_cursor":`...)
	if len(h) > 0 {
		b = appendString(b, p.g.encodeCursor(curFeed, uint64(last.t), uint64(postID(last.author, last.k))))
	} else {
		b = append(b, "null"...)
	}
	return http.StatusOK, append(b, '}')
}

type postRef struct {
	t         int64
	author, k int
	n         int // the author's post count
}

// postHeap is a max-heap by (time, post id).
type postHeap []postRef

func (h postHeap) Len() int { return len(h) }
func (h postHeap) Less(i, j int) bool {
	if h[i].t != h[j].t {
		return h[i].t > h[j].t
	}
	return postID(h[i].author, h[i].k) > postID(h[j].author, h[j].k)
}
func (h postHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *postHeap) Push(x any)   { *h = append(*h, x.(postRef)) }
func (h *postHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// reply writes body with status, gzip-compressed when the client asks.
func (p *Platform) reply(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = hdrJSON
	h["Vary"] = hdrVary
	if acceptsGzip(r.Header["Accept-Encoding"]) {
		zp := p.bufs.Get().(*[]byte)
		out := bytes.NewBuffer((*zp)[:0])
		zw, _ := p.gzips.Get().(*gzip.Writer)
		if zw == nil {
			zw, _ = gzip.NewWriterLevel(out, gzip.BestSpeed)
		} else {
			zw.Reset(out)
		}
		zw.Write(body)
		zw.Close()
		p.gzips.Put(zw)
		h["Content-Encoding"] = hdrGzip
		h["Content-Length"] = []string{strconv.Itoa(out.Len())}
		w.WriteHeader(status)
		w.Write(out.Bytes())
		if out.Cap() <= 1<<16 {
			*zp = out.Bytes()[:0]
			p.bufs.Put(zp)
		}
		return
	}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(status)
	w.Write(body)
}

// acceptsGzip reports whether Accept-Encoding lists gzip (or *) with a
// non-zero q.
func acceptsGzip(values []string) bool {
	for _, v := range values {
		for part := range strings.SplitSeq(v, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			name = strings.TrimSpace(name)
			if !strings.EqualFold(name, "gzip") && name != "*" {
				continue
			}
			params = strings.ReplaceAll(params, " ", "")
			if qv, ok := strings.CutPrefix(params, "q="); ok {
				if f, err := strconv.ParseFloat(qv, 64); err == nil && f == 0 {
					continue
				}
			}
			return true
		}
	}
	return false
}
