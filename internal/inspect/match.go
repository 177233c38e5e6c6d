package inspect

import (
	"errors"
	"fmt"
	"strings"
)

// pattern is a route in net/http.ServeMux syntax: an optional method, then a
// path of literal segments, {name} wildcards, a final {name...} that takes
// the rest, or a final {$} that matches only the exact path. A pattern that
// ends in "/" matches every path below it. Host patterns are not supported.
type pattern struct {
	method string // "" matches every method; GET also matches HEAD
	segs   []seg
	rest   bool // the last seg takes the rest of the path
	prefix bool // trailing "/": matches anything below
	// slashes is how many "/" a path the pattern matches has: exactly
	// (exact) or at least. A route map tries most patterns on a path that
	// cannot fit them; counting once (fits) spares each a split of the
	// path (splitting was most of Map.Match's time).
	slashes int
	exact   bool
}

type seg struct {
	lit   string
	param string // wildcard name; "" for a literal
	wild  bool
}

const maxParams = 8

func parsePattern(s string) (pattern, error) {
	var p pattern
	if s == "" {
		return p, errors.New("empty route")
	}
	path := s
	if i := strings.IndexByte(s, ' '); i >= 0 {
		p.method, path = s[:i], strings.TrimLeft(s[i+1:], " ")
		for _, c := range p.method {
			if c < 'A' || c > 'Z' {
				return p, fmt.Errorf("route %q: method %q is not upper-case letters", s, p.method)
			}
		}
	}
	if !strings.HasPrefix(path, "/") {
		return p, fmt.Errorf("route %q: path must start with / (host patterns are not supported)", s)
	}
	parts := strings.Split(path[1:], "/")
	names := map[string]bool{}
	for i, part := range parts {
		last := i == len(parts)-1
		switch {
		case part == "" && last:
			if i > 0 || path == "/" {
				p.prefix = true
			}
		case part == "{$}":
			if !last {
				return p, fmt.Errorf("route %q: {$} must be last", s)
			}
			// exact match of the path up to here, trailing slash included
			p.segs = append(p.segs, seg{lit: ""})
		case strings.HasPrefix(part, "{") && strings.HasSuffix(part, "}"):
			name := part[1 : len(part)-1]
			rest := strings.HasSuffix(name, "...")
			if rest {
				if !last {
					return p, fmt.Errorf("route %q: {%s} must be last", s, name)
				}
				name = strings.TrimSuffix(name, "...")
				p.rest = true
			}
			if !validName(name) {
				return p, fmt.Errorf("route %q: bad wildcard name %q", s, name)
			}
			if names[name] {
				return p, fmt.Errorf("route %q: wildcard %q appears twice", s, name)
			}
			names[name] = true
			p.segs = append(p.segs, seg{param: name, wild: true})
		case strings.ContainsAny(part, "{}"):
			return p, fmt.Errorf("route %q: segment %q: a wildcard must be a whole segment", s, part)
		case part == "":
			return p, fmt.Errorf("route %q: empty segment", s)
		default:
			p.segs = append(p.segs, seg{lit: part})
		}
	}
	if len(names) > maxParams {
		return p, fmt.Errorf("route %q: at most %d wildcards", s, maxParams)
	}
	// match consumes one "/" before each segment (the leading one) and one
	// after each but the last; a trailing "/" needs one more, {x...} and
	// prefixes take any number past that, {$} and plain paths none.
	k := len(p.segs)
	switch {
	case p.prefix:
		p.slashes = k + 1
	case p.rest:
		p.slashes = k
	default: // {$} last, or a plain path
		p.slashes, p.exact = k, true
	}
	return p, nil
}

// fits reports whether a path with n slashes can match p: false rules a
// match out, true leaves it to match.
func (p *pattern) fits(n int) bool {
	if p.exact {
		return n == p.slashes
	}
	return n >= p.slashes
}

// Pattern is a route pattern for what else selects requests by route (the
// rate limits' routes): parsed and matched as the route map's own, so one
// spelling means the same requests everywhere in a config.
type Pattern struct{ p pattern }

// ParsePattern parses s in ServeMux syntax, as the route map does.
func ParsePattern(s string) (Pattern, error) {
	p, err := parsePattern(s)
	return Pattern{p}, err
}

// Match reports whether a request's method and path fit. It does not
// allocate.
func (p *Pattern) Match(method, path string) bool {
	var vals [maxParams]string
	return p.p.match(method, path, &vals)
}

// shape is the pattern with wildcard names erased, for duplicate checks.
func (p *pattern) shape() string {
	var b strings.Builder
	for _, s := range p.segs {
		b.WriteByte('/')
		switch {
		case s.wild:
			b.WriteString("{}")
		default:
			b.WriteString(s.lit)
		}
	}
	if p.rest {
		b.WriteString("...")
	}
	if p.prefix {
		b.WriteByte('/')
	}
	return b.String()
}

func (p *pattern) param(name string) int {
	n := 0
	for _, s := range p.segs {
		if s.wild {
			if s.param == name {
				return n
			}
			n++
		}
	}
	return -1
}

// match reports whether path matches and fills vals with the wildcards'
// values (substrings of path, not unescaped). It does not allocate.
func (p *pattern) match(method, path string, vals *[maxParams]string) bool {
	if p.method != "" && p.method != method && !(p.method == "GET" && method == "HEAD") {
		return false
	}
	if path == "" || path[0] != '/' {
		return false
	}
	rest := path[1:]
	nv := 0
	for i, s := range p.segs {
		last := i == len(p.segs)-1
		if s.wild && last && p.rest {
			vals[nv] = rest
			return true
		}
		if !s.wild && s.lit == "" { // {$}
			return rest == ""
		}
		j := strings.IndexByte(rest, '/')
		var part string
		if j < 0 {
			part, rest = rest, ""
		} else {
			part, rest = rest[:j], rest[j+1:]
		}
		if j < 0 && !last {
			return false
		}
		if s.wild {
			if part == "" {
				return false
			}
			vals[nv] = part
			nv++
		} else if part != s.lit {
			return false
		}
		if last {
			if p.prefix {
				return j >= 0
			}
			return j < 0
		}
	}
	return p.prefix // pattern "/": matches everything
}

// morePrecise orders patterns so that the most specific is tried first, as
// ServeMux would choose: at the first segment that differs, a literal beats
// a wildcard, and a wildcard beats the rest; a method beats none.
func morePrecise(a, b *pattern) int {
	for i := 0; i < len(a.segs) && i < len(b.segs); i++ {
		ka, kb := segKind(a, i), segKind(b, i)
		if ka != kb {
			return ka - kb
		}
	}
	if len(a.segs) != len(b.segs) {
		// the longer pattern is more specific when the other is a prefix
		return len(b.segs) - len(a.segs)
	}
	switch {
	case a.method != "" && b.method == "":
		return -1
	case a.method == "" && b.method != "":
		return 1
	}
	return 0
}

func segKind(p *pattern, i int) int {
	switch {
	case p.rest && i == len(p.segs)-1:
		return 2
	case p.segs[i].wild:
		return 1
	}
	return 0
}
