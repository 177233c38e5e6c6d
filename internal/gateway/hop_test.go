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

func TestRawScan(t *testing.T) {
	cases := []struct {
		raw                                   string
		hop, fwd, shape, override, underscore bool
	}{
		{"Host: a\r\nUser-Agent: x\r\n", false, false, false, false, false},
		{"Host: a\r\nkeep-alive: timeout=5\r\n", true, false, false, false, false},
		{"Host: a\r\nX-Te: 1\r\nTE: trailers\r\n", true, false, false, false, false},
		{"Host: a\r\nX-Upgrade-Note: Upgrade\r\n", false, false, false, false, false},
		{"Host: a\r\nx-forwarded-for: 10.0.0.1\r\n", false, true, false, false, false},
		{"forwarded: for=1.2.3.4\r\nConnection: close\r\n", true, true, false, false, false},
		{"X-Request-Id: abc\r\n", false, true, false, false, false},
		{"X-Forwarded-Fo: 1\r\nX-Request-Ids: 2\r\n", false, false, false, false, false},
		{"Host: a\r\naccept-encoding: br\r\n", false, false, true, false, false},
		{"RANGE: bytes=0-9\r\n", false, false, true, false, false},
		{"If-Range: x\r\nX-Request-Id: 1\r\n", false, true, true, false, false},
		{"Upgrade: websocket\r\nConnection: Upgrade\r\n", true, false, true, false, false},
		{"Ranges: 1\r\nAccept-Encodings: br\r\n", false, false, false, false, false},
		{"x-http-method-override: GET\r\n", false, false, false, true, false},
		{"X-HTTP-Method: GET\r\nX-Method-Override: GET\r\n", false, false, false, true, false},
		{"X-HTTP-Method-Overrides: GET\r\n", false, false, false, false, false},
		{"X_App_Key: k\r\n", false, false, false, false, true},
		{"x_forwarded_for: 1.2.3.4\r\nHost: a\r\n", false, false, false, false, true},
		{"", false, false, false, false, false},
	}
	for _, c := range cases {
		want := headerScan{c.hop, c.fwd, c.shape, c.override, c.underscore}
		if got := rawScan([]byte(c.raw)); got != want {
			t.Errorf("rawScan(%q) = %+v, want %+v", c.raw, got, want)
		}
	}
	for _, n := range forwardHeaders {
		if !isForwardName(toLower(n)) {
			t.Errorf("isForwardName(%q) = false", toLower(n))
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
