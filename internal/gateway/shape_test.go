package gateway

import "testing"

func TestDecodableAccept(t *testing.T) {
	cases := []struct {
		in, want string
		changed  bool
	}{
		{"gzip", "gzip", false},
		{"gzip, deflate", "gzip, deflate", false},
		{"GZIP;q=1.0, identity;q=0.5", "GZIP;q=1.0, identity;q=0.5", false},
		{"x-gzip", "x-gzip", false},
		{"gzip, deflate, br", "gzip, deflate", true},
		{"br;q=1.0, gzip;q=0.8, *;q=0.1", "gzip;q=0.8", true},
		{"br", "identity", true},
		{"zstd, br", "identity", true},
		{"*", "identity", true},
		{" br , deflate ", "deflate", true},
		{"gzip,,br", "gzip", true},
	}
	for _, c := range cases {
		got, changed := decodableAccept(c.in)
		if got != c.want || changed != c.changed {
			t.Errorf("decodableAccept(%q) = %q, %v; want %q, %v", c.in, got, changed, c.want, c.changed)
		}
	}
}

func TestJSONAccept(t *testing.T) {
	cases := []struct {
		in, want string
		changed  bool
	}{
		{"application/json", "application/json", false},
		{"application/vnd.api+json", "application/vnd.api+json", false},
		{"application/json; charset=utf-8, application/problem+json;q=0.5", "application/json; charset=utf-8, application/problem+json;q=0.5", false},
		{"application/json, text/plain, */*", "application/json", true},
		{"*/*", "application/json", true},
		{"text/csv", "application/json", true},
		{"application/xml;q=1, application/json;q=0.9", "application/json;q=0.9", true},
		{"application/*", "application/json", true},
	}
	for _, c := range cases {
		got, changed := jsonAccept(c.in)
		if got != c.want || changed != c.changed {
			t.Errorf("jsonAccept(%q) = %q, %v; want %q, %v", c.in, got, changed, c.want, c.changed)
		}
	}
}
