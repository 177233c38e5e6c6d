package refusal

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestBody(t *testing.T) {
	for _, c := range []struct {
		name string
		r    Refusal
		id   string
		want string
	}{
		{"rate limit", Refusal{Status: 429, Error: "rate limited", Rule: "per-ip", Facet: "ip"}, "abc",
			`{"error":"rate limited","rule":"per-ip","facet":"ip","request_id":"abc"}` + "\n"},
		{"gateway's own", Refusal{Status: 502, Error: "upstream unreachable"}, "",
			`{"error":"upstream unreachable","rule":"","facet":"","request_id":""}` + "\n"},
		{"control and quote", Refusal{Error: "a\x01\"b\\", Rule: "r\u2028"}, "x",
			`{"error":"a\u0001\"b\\","rule":"r` + "\u2028" + `","facet":"","request_id":"x"}` + "\n"},
		{"invalid UTF-8", Refusal{Error: "bad \xff\xfe path"}, "",
			`{"error":"bad ` + "\uFFFD\uFFFD" + ` path","rule":"","facet":"","request_id":""}` + "\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := string(c.r.Body(c.id)); got != c.want {
				t.Fatalf("body %s, want %s", got, c.want)
			}
		})
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{{time.Millisecond, "1"}, {time.Second, "1"}, {1500 * time.Millisecond, "2"}, {time.Hour, "3600"}} {
		r := Refusal{RetryAfter: c.d}
		if got := r.RetryAfterSeconds(); got != c.want {
			t.Errorf("%v: %s, want %s", c.d, got, c.want)
		}
	}
}

// FuzzAppendString checks AppendString against encoding/json's decoder:
// always valid JSON, and the string decodes to the input with invalid UTF-8
// replaced.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "\x00\x1f\x7f", `"\`, "\xff", "é\u2028\U0001F600", "a\xc3", "\ufeff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := AppendString([]byte("x"), s)
		if b[0] != 'x' {
			t.Fatal("prefix lost")
		}
		var got string
		if err := json.Unmarshal(b[1:], &got); err != nil {
			t.Fatalf("%q: not JSON: %v: %s", s, err, b[1:])
		}
		if want := replaceEach(s); got != want {
			t.Fatalf("%q decodes to %q, want %q", s, got, want)
		}
		r := Refusal{Error: s, Rule: s, Facet: s}
		var body map[string]string
		if err := json.Unmarshal(r.Body(s), &body); err != nil || len(body) != 4 {
			t.Fatalf("%q: body not a JSON object of 4: %v", s, err)
		}
	})
}

// replaceEach replaces each invalid byte with U+FFFD (ToValidUTF8 merges a
// run of them into one).
func replaceEach(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteString("\uFFFD")
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// TestOwn: warden's own rules, and names a config may use.
func TestOwn(t *testing.T) {
	for _, n := range []string{RuleIdentity, RuleBan, RuleStore, RuleUpstream, RuleRewrite, RuleOtherType, RuleMaxBody, RuleMalformed, RuleRequest, RuleInternal} {
		if !Own(n) {
			t.Errorf("Own(%q) = false", n)
		}
	}
	for _, n := range []string{"", "per-ip", "upstreams", "Ban", "contact-account-hour", "requests", "connect"} {
		if Own(n) {
			t.Errorf("Own(%q) = true", n)
		}
	}
}
