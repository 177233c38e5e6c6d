package admit

import "strings"

// pattern is a ServeMux-style route: optional method, literal segments,
// {name} wildcards and a trailing {name...}.
type pattern struct {
	method string
	segs   []string // "" for a {wildcard}
	rest   bool     // last segment was {name...}
	prefix bool     // path ended in "/": matches everything below
}

func parsePattern(p string) pattern {
	var pt pattern
	if m, rest, ok := strings.Cut(p, " "); ok {
		pt.method, p = m, strings.TrimSpace(rest)
	}
	if strings.HasSuffix(p, "/") && p != "/" {
		pt.prefix = true
	}
	for _, s := range strings.Split(strings.Trim(p, "/"), "/") {
		switch {
		case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "...}"):
			pt.rest = true
			return pt
		case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}"):
			pt.segs = append(pt.segs, "")
		default:
			pt.segs = append(pt.segs, s)
		}
	}
	if p == "/" {
		pt.segs, pt.prefix = nil, true
	}
	return pt
}

// match reports whether method and path fit, without allocating.
func (pt *pattern) match(method, path string) bool {
	if pt.method != "" && pt.method != method && !(pt.method == "GET" && method == "HEAD") {
		return false
	}
	path = strings.TrimPrefix(path, "/")
	for _, seg := range pt.segs {
		if path == "" && seg != "" {
			return false
		}
		var cur string
		cur, path, _ = strings.Cut(path, "/")
		if seg != "" && seg != cur {
			return false
		}
		if seg == "" && cur == "" {
			return false
		}
	}
	return path == "" || pt.rest || pt.prefix
}
