package gateway

import "testing"

func TestIsHopName(t *testing.T) {
	for _, n := range hopHeaders {
		for _, v := range []string{n, toLower(n)} {
			if !isHopName(v) {
				t.Errorf("isHopName(%q) = false", v)
			}
		}
	}
	for _, n := range []string{"", "Host", "X-Keep", "Tex", "Connections", "Keep-Alives", "Authorization"} {
		if isHopName(n) {
			t.Errorf("isHopName(%q) = true", n)
		}
	}
}

func TestRawHasHop(t *testing.T) {
	cases := []struct {
		raw  string
		want bool
	}{
		{"Host: a\r\nUser-Agent: x\r\n", false},
		{"Host: a\r\nkeep-alive: timeout=5\r\n", true},
		{"Host: a\r\nX-Te: 1\r\nTE: trailers\r\n", true},
		{"Host: a\r\nX-Upgrade-Note: Upgrade\r\n", false},
		{"", false},
	}
	for _, c := range cases {
		if got := rawHasHop([]byte(c.raw)); got != c.want {
			t.Errorf("rawHasHop(%q) = %v, want %v", c.raw, got, c.want)
		}
	}
}

func toLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
