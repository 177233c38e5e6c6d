package gateway

import "errors"

// A request's path is put in one canonical form before anything reads it:
// bans, limits and the route map match that form, and the upstream receives
// it. Otherwise a caller could spell a path so that warden's route map
// misses it while the upstream, decoding it its own way, serves the
// resource: `/v1/users/%37%37`, `/v1/./users/77` or `/v1//users/77` for
// `/v1/users/77`, each an unrationed and unrecorded look-up. Forwarding the
// form warden matched leaves the upstream no other reading, except where
// the form itself is ambiguous: an encoded slash (`/v1/users%2F77`) is one
// segment to warden and two to an upstream that routes on the decoded path,
// as most do. Such paths are refused unless the config says the API uses
// encoded slashes in its ids.

// Path errors, the refusal's reason; the 400's body names them.
var (
	errPathEscape       = errors.New("malformed percent-encoding in path")
	errPathSlash        = errors.New("encoded slash or backslash in path")
	errPathControl      = errors.New("control character in path")
	errPathNotAbsolute  = errors.New("path does not start with /")
	errPathBackslashRaw = errors.New("backslash in path")
)

// canonPath returns path in canonical form:
//   - a percent-encoded unreserved character (RFC 3986: letters, digits,
//     "-", ".", "_", "~") is decoded, every other escape is kept with
//     upper-case hex, and a byte outside printable ASCII is escaped;
//   - "." and ".." segments are resolved (".." stops at the root), after
//     decoding, so `%2e%2e` is "..";
//   - runs of slashes are one slash; a trailing slash is kept.
//
// An escaped "/" or "\" is an error unless keepSlashes, and then kept as it
// is escaped (upper-case); a raw "\" and control characters, escaped or not,
// are errors. A path already canonical is returned as it is, without
// allocating: the common case, checked first.
func canonPath(path string, keepSlashes bool) (string, error) {
	if path == "*" { // OPTIONS *
		return path, nil
	}
	if path == "" || path[0] != '/' {
		return "", errPathNotAbsolute
	}
	if isCanonPath(path) {
		return path, nil
	}
	out := make([]byte, 0, len(path))
	// segs holds where each output segment starts (at its "/"), so ".."
	// can drop the last one.
	var segsArr [16]int
	segs := segsArr[:0]
	i := 0
	for i < len(path) {
		// path[i] is '/': read one segment, decoded, into seg.
		for i < len(path) && path[i] == '/' {
			i++
		}
		start := len(out)
		out = append(out, '/')
		for i < len(path) && path[i] != '/' {
			c := path[i]
			switch {
			case c == '%':
				if i+2 >= len(path) || unhex(path[i+1]) < 0 || unhex(path[i+2]) < 0 {
					return "", errPathEscape
				}
				b := byte(unhex(path[i+1])<<4 | unhex(path[i+2]))
				switch {
				case unreserved(b):
					out = append(out, b)
				case b == '/' || b == '\\':
					if !keepSlashes {
						return "", errPathSlash
					}
					out = appendEscaped(out, b)
				case b < 0x20 || b == 0x7f:
					return "", errPathControl
				default:
					out = appendEscaped(out, b)
				}
				i += 3
				continue
			case c == '\\':
				return "", errPathBackslashRaw
			case c < 0x20 || c == 0x7f:
				return "", errPathControl
			case c >= 0x80:
				out = appendEscaped(out, c)
			default:
				out = append(out, c)
			}
			i++
		}
		switch seg := string(out[start+1:]); {
		case seg == "." || seg == "":
			out = out[:start]
		case seg == "..":
			out = out[:start]
			if n := len(segs); n > 0 {
				out = out[:segs[n-1]]
				segs = segs[:n-1]
			}
		default:
			segs = append(segs, start)
			continue
		}
		// A dropped segment at the end leaves a directory: "/a/." is "/a/".
		if i >= len(path) {
			out = append(out, '/')
		}
	}
	if len(out) == 0 {
		out = append(out, '/')
	}
	if path[len(path)-1] == '/' && out[len(out)-1] != '/' {
		out = append(out, '/')
	}
	return string(out), nil
}

// isCanonPath reports whether path (starting with "/") is already in
// canonical form: no escape, no backslash, no control or non-ASCII byte, no
// empty segment but a trailing one, no "." or ".." segment.
func isCanonPath(path string) bool {
	for i := 0; i < len(path); i++ {
		c := path[i]
		if c == '%' || c == '\\' || c < 0x21 || c >= 0x7f {
			return false
		}
		if c != '/' || i+1 == len(path) {
			continue
		}
		switch rest := path[i+1:]; {
		case rest[0] == '/',
			rest[0] == '.' && (len(rest) == 1 || rest[1] == '/'),
			len(rest) >= 2 && rest[0] == '.' && rest[1] == '.' && (len(rest) == 2 || rest[2] == '/'):
			return false
		}
	}
	return true
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

func appendEscaped(b []byte, c byte) []byte {
	const hex = "0123456789ABCDEF"
	return append(b, '%', hex[c>>4], hex[c&15])
}
