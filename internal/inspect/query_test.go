package inspect

import (
	"net/url"
	"strings"
	"testing"
)

// platformValue is what a Go platform reads: ParseQuery's pairs, first value.
func platformValue(q, key string) string {
	v, _ := url.ParseQuery(q)
	return v.Get(key)
}

func TestQueryValue(t *testing.T) {
	for _, c := range []struct{ q, key, want string }{
		{"", "cursor", ""},
		{"cursor=abc", "cursor", "abc"},
		{"limit=5&cursor=abc&cursor=def", "cursor", "abc"},
		{"cursor", "cursor", ""},                 // no '=': an empty value
		{"cursor=&cursor=x", "cursor", ""},       // the first value, though empty
		{"cur%73or=a%2Bb+c", "cursor", "a+b c"},  // key and value unescaped
		{"cursor=%zz&cursor=ok", "cursor", "ok"}, // a value that does not unescape: skipped
		{"cur%zzsor=x&cursor=y", "cursor", "y"},  // a key that does not unescape: skipped
		{"cursor=a;b&cursor=c", "cursor", "c"},   // a ';' anywhere in the pair: skipped
		{"&&cursor=z&", "cursor", "z"},
		{"limit=50", "cursor", ""},
		{"Cursor=x", "cursor", ""},                                         // keys are case-sensitive
		{strings.Repeat("a=1&", maxQueryPairs) + "cursor=x", "cursor", ""}, // past net/url's count: nothing read
		{strings.Repeat("a=1&", maxQueryPairs-1) + "cursor=x", "cursor", "x"},
	} {
		got := QueryValue(c.q, c.key)
		if got != c.want {
			t.Errorf("QueryValue(%.40q, %q) = %q, want %q", c.q, c.key, got, c.want)
		}
		if p := platformValue(c.q, c.key); got != p {
			t.Errorf("QueryValue(%.40q, %q) = %q, net/url reads %q", c.q, c.key, got, p)
		}
	}
}

func TestQueryValueAllocates(t *testing.T) {
	q := "limit=20&cursor=eyJhIjoxfQ"
	if n := testing.AllocsPerRun(100, func() { _ = QueryValue(q, "cursor") }); n != 0 {
		t.Fatalf("QueryValue of an unescaped value allocates %v times", n)
	}
}

// FuzzQueryValue holds QueryValue to net/url's reading of any query.
func FuzzQueryValue(f *testing.F) {
	for _, s := range []string{"cursor=abc", "cur%73or=a%2Bb+c&cursor=x", "cursor=%zz&cursor=ok", "a;b=c&cursor=d", "=&=x&cursor", "limit=%20&limit=3"} {
		f.Add(s, "cursor")
		f.Add(s, "limit")
	}
	f.Fuzz(func(t *testing.T, q, key string) {
		if got, want := QueryValue(q, key), platformValue(q, key); got != want {
			t.Fatalf("QueryValue(%q, %q) = %q, net/url reads %q", q, key, got, want)
		}
	})
}

// A name CheckQueryName accepts is one QueryValue finds, written as a
// client would escape it; one it refuses is never found.
func TestCheckQueryName(t *testing.T) {
	for name, ok := range map[string]bool{
		"limit": true, "page[size]": true, "cursor_1": true,
		"": false, "q;": false, "a=b": false, "a&b": false, "a b": false,
		"page%5Bsize%5D": false, "a+b": false, "50%": false,
	} {
		err := CheckQueryName(name)
		if (err == nil) != ok {
			t.Errorf("CheckQueryName(%q) = %v, want ok %v", name, err, ok)
		}
		if found := QueryValue(url.Values{name: {"v"}}.Encode(), name) == "v"; ok && !found {
			t.Errorf("%q accepted, but QueryValue does not find it in %q", name, url.Values{name: {"v"}}.Encode())
		}
	}
}
