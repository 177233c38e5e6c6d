package canary

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// TestContactShapes: every canary's e-mail and phone are canary-shaped
// (a reader keeps them), in any case or spelling; the lab's real
// e-mails and phones, and values near a canary's, are not.
func TestContactShapes(t *testing.T) {
	c := newTest(t, testKey, "an-older-key-0123456789abcdef")
	for ki := range 2 {
		for j := uint32(0); j < indexCount; j += indexCount / 4096 {
			p := c.Canary(ki, j+uint32(ki))
			if !c.EmailShaped(NormEmail(strings.ToUpper(p.Email))) || !c.PhoneShaped(NormPhone(p.Phone)) {
				t.Fatalf("canary %d/%d: %s, %s not canary-shaped", ki, j, p.Email, p.Phone)
			}
			spelled := p.Phone[:3] + " (" + p.Phone[3:6] + ") " + p.Phone[6:9] + "-" + p.Phone[9:]
			if !c.PhoneShaped(NormPhone(spelled)) || !VerifyContact(&p, "", spelled) || !VerifyContact(&p, strings.ToUpper(p.Email), "") {
				t.Fatalf("canary %d/%d: %q or its e-mail in capitals not verified", ki, j, spelled)
			}
		}
	}
	for _, e := range []string{
		"lena.morgan16777215@mail.example",  // the lab's suffixes are below 2^24
		"lena.morgan96777216@mail.example",  // above the canaries' range
		"lena.morgan123456789@mail.example", // 9 digits
		"lena.morgan20000000@gmail.com",     // no canary domain
		"20000000@mail.example", "@mail.example", "",
	} {
		if c.EmailShaped(e) {
			t.Errorf("%q is canary-shaped", e)
		}
	}
	for _, p := range []string{"+12125523456" /* a lab block's */, "+1212590123", "+121259012345", "+12125901234x", "12125901234", ""} {
		if c.PhoneShaped(p) { // PhoneShaped takes a NormPhone'd value
			t.Errorf("%q is canary-shaped", p)
		}
	}
	if got := c.PhoneSpace(); got != 600_000 {
		t.Errorf("PhoneSpace of the default ranges = %d, want 600000", got)
	}
}

// TestVerifyContact: Verify's rule for a record found by contact: one
// present and equal, none present differing.
func TestVerifyContact(t *testing.T) {
	c := newTest(t)
	p, q := c.Canary(0, 7), c.Canary(0, 8)
	for _, tc := range []struct {
		email, phone string
		want         bool
	}{
		{p.Email, p.Phone, true},
		{p.Email, "", true},
		{"", p.Phone, true},
		{p.Email, q.Phone, false},
		{q.Email, p.Phone, false},
		{"", "", false},
		{fmt.Sprintf("x%s", p.Email), "", false},
	} {
		if got := VerifyContact(&p, tc.email, tc.phone); got != tc.want {
			t.Errorf("VerifyContact(%q, %q) = %v, want %v", tc.email, tc.phone, got, tc.want)
		}
	}
}

// TestVerifySpellings: a record whose id and username name a canary is
// that canary whatever the spelling of its e-mail ("Name <a@b>",
// "mailto:") and phone (E.164 without "+", "00" for "+", national): a copy
// from a database that keeps numbers so was read as 100% forgeries. Another
// canary's e-mail or phone, in any spelling, still rejects the record.
func TestVerifySpellings(t *testing.T) {
	c := newTest(t)
	for i := uint32(0); i < 200; i++ {
		p, q := c.Canary(0, i), c.Canary(0, i+1000)
		id := strconv.FormatInt(p.ID, 10)
		cc := map[byte]int{'1': 2, '4': 3, '3': 3}[p.Phone[1]] // +1, +44/+49, +33/+34
		national := p.Phone[cc:]
		if p.Phone[1] != '1' && p.Phone[1:3] != "34" {
			national = "0" + national
		}
		for _, tc := range []struct{ email, phone string }{
			{"Lena Morgan <" + p.Email + ">", ""},
			{"mailto:" + strings.ToUpper(p.Email), ""},
			{" " + p.Email + " ", ""},
			{"", p.Phone[1:]},
			{"", "00" + p.Phone[1:]},
			{"", national},
			{p.Email, p.Phone[:4] + " " + p.Phone[4:]},
		} {
			if _, ok := c.Verify(id, p.Username, tc.email, tc.phone); !ok {
				t.Fatalf("Verify(%s, %s, %q, %q) of canary %s/%s: rejected", id, p.Username, tc.email, tc.phone, p.Email, p.Phone)
			}
		}
		qcc := map[byte]int{'1': 2, '4': 3, '3': 3}[q.Phone[1]]
		for _, tc := range []struct{ email, phone string }{
			{"Lena Morgan <" + q.Email + ">", ""},
			{"", q.Phone[1:]},
			{"", "00" + q.Phone[1:]},
			{"", "0" + q.Phone[qcc:]},
		} {
			if tc.phone != "" && strings.HasSuffix(p.Phone, strings.TrimPrefix(tc.phone, "0")) {
				continue // the same national number in two countries
			}
			if _, ok := c.Verify(id, p.Username, tc.email, tc.phone); ok {
				t.Fatalf("Verify(%s, %s, %q, %q) of canary %s/%s: accepted another canary's", id, p.Username, tc.email, tc.phone, p.Email, p.Phone)
			}
		}
	}
}
