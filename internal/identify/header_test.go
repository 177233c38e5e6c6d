package identify

import "strings"

// testHeader is a header in wire order: name, value, name, value, ...
type testHeader []string

func (h testHeader) Peek(name string) string {
	for i := 0; i+1 < len(h); i += 2 {
		if strings.EqualFold(h[i], name) {
			return h[i+1]
		}
	}
	return ""
}

func (h testHeader) Values(name string, fn func(string)) {
	for i := 0; i+1 < len(h); i += 2 {
		if strings.EqualFold(h[i], name) {
			fn(h[i+1])
		}
	}
}

func (h testHeader) Count(name string) int {
	n := 0
	h.Values(name, func(string) { n++ })
	return n
}

func (h testHeader) Names(fn func(string)) {
	for i := 0; i+1 < len(h); i += 2 {
		fn(h[i])
	}
}
