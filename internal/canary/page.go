package canary

import (
	"net/url"
	"strconv"
	"strings"
)

// Room is how many canaries a list page of n real records has room for:
// the page size the request asked (rawQuery's Page.Limit parameter, else
// Page.Default) less n, at most MaxPerPage. A full page has none, and so
// has a page asked with a size the upstream refuses (not a number, or
// outside 1..Page.Max): an answer warden changes is never longer than the
// size asked. The package doc's "Pages" says why room, and not a record
// displaced to make some.
func (c *Canaries) Room(rawQuery string, n int) int {
	size, ok := c.pageSize(rawQuery)
	if !ok {
		return 0
	}
	return max(0, min(size-n, c.cfg.MaxPerPage))
}

// pageSize reads the page size rawQuery asks, as the platform reads it
// (url.Values.Get): the parameter's first value, unescaped, a decimal in
// 1..Page.Max; the default without one or with an empty one. A value it
// cannot read is no size: nothing is seeded.
func (c *Canaries) pageSize(rawQuery string) (int, bool) {
	v := firstParam(rawQuery, c.cfg.Page.Limit)
	if v == "" {
		return c.cfg.Page.Default, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > c.cfg.Page.Max {
		return 0, false
	}
	return n, true
}

// firstParam is the first value of key in a raw query, unescaped ("" for
// none); one that does not unescape is "\x00", which no size reads as.
func firstParam(q, key string) string {
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(kv, "=")
		if strings.ContainsAny(k, "%+") {
			if u, err := url.QueryUnescape(k); err == nil {
				k = u
			}
		}
		if k != key {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			u, err := url.QueryUnescape(v)
			if err != nil {
				return "\x00"
			}
			v = u
		}
		return v
	}
	return ""
}
