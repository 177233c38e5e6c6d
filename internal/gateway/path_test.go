package gateway

import (
	"net/url"
	"path"
	"strings"
	"testing"
)

func TestCanonPath(t *testing.T) {
	cases := []struct {
		in, want string
		err      error
	}{
		{"/", "/", nil},
		{"*", "*", nil},
		{"/v1/users/77", "/v1/users/77", nil},
		{"/v1/users/77/", "/v1/users/77/", nil},
		{"/v1/users/%37%37", "/v1/users/77", nil},
		{"/v1/%75sers/77", "/v1/users/77", nil},
		{"/%7e%41-%5F.", "/~A-_.", nil},
		{"/v1//users/77", "/v1/users/77", nil},
		{"//v1///users/77", "/v1/users/77", nil},
		{"/v1/./users/77", "/v1/users/77", nil},
		{"/v1/x/../users/77", "/v1/users/77", nil},
		{"/v1/x/%2e%2E/users/77", "/v1/users/77", nil},
		{"/v1/users/%2e/77", "/v1/users/77", nil},
		{"/../../v1/users/77", "/v1/users/77", nil},
		{"/v1/users/77/.", "/v1/users/77/", nil},
		{"/v1/users/77/..", "/v1/users/", nil},
		{"/..", "/", nil},
		{"//", "/", nil},
		{"/.", "/", nil},
		{"/a/...", "/a/...", nil},
		{"/a/.b/..c", "/a/.b/..c", nil},
		{"/a%20b", "/a%20b", nil},
		{"/a%3fb%3Fc", "/a%3Fb%3Fc", nil},
		{"/a%25", "/a%25", nil},
		{"/caf\xc3\xa9", "/caf%C3%A9", nil},
		{"/caf%c3%a9", "/caf%C3%A9", nil},
		{"/a;b=c/d", "/a;b=c/d", nil},
		{"/v1/users%2F77", "", errPathSlash},
		{"/v1/users%2f77", "", errPathSlash},
		{"/v1/users%5C77", "", errPathSlash},
		{"/v1/users\\77", "", errPathBackslashRaw},
		{"/a%00", "", errPathControl},
		{"/a%1f", "", errPathControl},
		{"/a%7F", "", errPathControl},
		{"/a\x01", "", errPathControl},
		{"/a%", "", errPathEscape},
		{"/a%4", "", errPathEscape},
		{"/a%zz", "", errPathEscape},
		{"/a%4g/b", "", errPathEscape},
		{"", "", errPathNotAbsolute},
		{"v1/users", "", errPathNotAbsolute},
	}
	for _, c := range cases {
		got, err := canonPath(c.in, false)
		if err != c.err || got != c.want {
			t.Errorf("canonPath(%q) = %q, %v; want %q, %v", c.in, got, err, c.want, c.err)
		}
	}
	for in, want := range map[string]string{
		"/groups/a%2fb/members": "/groups/a%2Fb/members",
		"/x%5c/y":               "/x%5C/y",
		"/x/./a%2F..":           "/x/a%2F..",
	} {
		if got, err := canonPath(in, true); err != nil || got != want {
			t.Errorf("canonPath(%q, keep slashes) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := canonPath("/a\\b", true); err != errPathBackslashRaw {
		t.Errorf("a raw backslash with encoded slashes kept: %v, want %v", err, errPathBackslashRaw)
	}
}

func TestCanonPathNoAlloc(t *testing.T) {
	p := "/v1/users/77/followers"
	if n := testing.AllocsPerRun(100, func() {
		if got, _ := canonPath(p, false); got != p {
			t.Fatal(got)
		}
	}); n != 0 {
		t.Fatalf("%v allocations for a canonical path, want 0", n)
	}
}

// FuzzCanonPath checks what the gateway relies on, for any input: the
// canonical form is a fixed point, is what net/url decodes to the same path
// as a cleaned reading of the input (so an upstream that decodes and cleans
// sees what warden matched), and has no "." or ".." segment, no empty
// segment and no escaped slash.
func FuzzCanonPath(f *testing.F) {
	for _, s := range []string{"/", "/v1/users/77", "/v1/./users/%37%37/", "/a/../../b", "//x//y/", "/%2e%2E/a%2fb", "/caf\xc3\xa9", "/a%zz", "*"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, in string, keep bool) {
		got, err := canonPath(in, keep)
		if err != nil {
			if got != "" {
				t.Fatalf("canonPath(%q) = %q with error %v", in, got, err)
			}
			return
		}
		if again, err := canonPath(got, keep); err != nil || again != got {
			t.Fatalf("canonPath(%q) = %q, not a fixed point: %q, %v", in, got, again, err)
		}
		if got == "*" {
			return
		}
		if isCanonPath(in) && got != in {
			t.Fatalf("canonPath(%q) = %q, but the fast check passed it as it is", in, got)
		}
		for seg := range strings.SplitSeq(strings.TrimSuffix(got[1:], "/"), "/") {
			if (seg == "" && got != "/") || seg == "." || seg == ".." {
				t.Fatalf("canonPath(%q) = %q has segment %q", in, got, seg)
			}
		}
		if keep {
			return
		}
		// Decoded, the canonical form is the decoded input cleaned (as
		// ServeMux and most routers read a path).
		dec, err := url.PathUnescape(in)
		if err != nil {
			t.Fatalf("canonPath(%q) = %q, but net/url cannot decode it: %v", in, got, err)
		}
		gotDec, err := url.PathUnescape(got)
		if err != nil {
			t.Fatalf("canonPath(%q) = %q, which net/url cannot decode: %v", in, got, err)
		}
		want := path.Clean(dec)
		if strings.HasSuffix(dec, "/") || strings.HasSuffix(dec, "/.") || strings.HasSuffix(dec, "/..") {
			if want != "/" {
				want += "/"
			}
		}
		if gotDec != want {
			t.Fatalf("canonPath(%q) = %q, decoded %q; the input decoded and cleaned is %q", in, got, gotDec, want)
		}
	})
}
