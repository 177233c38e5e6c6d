package canary

import (
	"fmt"
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
