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
			if !c.PhoneShaped(NormPhone(spelled)) || !c.VerifyContact(&p, "", spelled) || !c.VerifyContact(&p, strings.ToUpper(p.Email), "") {
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
		if got := c.VerifyContact(&p, tc.email, tc.phone); got != tc.want {
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
			{"", q.Phone[qcc:]},
		} {
			if _, ok := c.Verify(id, p.Username, tc.email, tc.phone); ok {
				t.Fatalf("Verify(%s, %s, %q, %q) of canary %s/%s: accepted another canary's", id, p.Username, tc.email, tc.phone, p.Email, p.Phone)
			}
		}
	}
}

// nationally writes a canary's phone as its country does, in each way a
// copy keeps it: the spellings, and the number's country.
func nationally(p string) (region string, forms []string) {
	switch {
	case strings.HasPrefix(p, "+1"):
		n := p[2:] // 4155901234
		return "US", []string{"(" + n[:3] + ") " + n[3:6] + "-" + n[6:], n[:3] + "-" + n[3:6] + "-" + n[6:], n, n[:3] + "." + n[3:6] + "." + n[6:]}
	case strings.HasPrefix(p, "+44"):
		n := "0" + p[3:] // 07400912345
		return "GB", []string{n[:5] + " " + n[5:], n, n[:5] + "-" + n[5:8] + "-" + n[8:]}
	case strings.HasPrefix(p, "+49"):
		n := "0" + p[3:] // 015123912345
		return "DE", []string{n[:5] + " " + n[5:], n, n[:5] + "/" + n[5:]}
	case strings.HasPrefix(p, "+33"):
		n := "0" + p[3:] // 0612912345
		return "FR", []string{n[:2] + " " + n[2:4] + " " + n[4:6] + " " + n[6:8] + " " + n[8:], n, n[:2] + "." + n[2:4] + "." + n[4:6] + "." + n[6:8] + "." + n[8:]}
	default: // +34: no trunk prefix
		n := p[3:] // 612912345
		return "ES", []string{n[:3] + " " + n[3:5] + " " + n[5:7] + " " + n[7:], n}
	}
}

// TestNationalPhones: a canary's phone written in the national form of
// its own country, in every spelling of it, is read as that canary's
// number (AppendShapedPhone, for a contact-only copy) and verifies it
// (SamePhone, for a record with its id); the same digits written as
// another country's national number are that country's number, never the
// canary's: "0612912345" is French, not +34612912345, "612912345" Spanish,
// not +33612912345 (before, any suffix of 6 digits or more with a trunk
// "0" or not verified a canary, so a French national number verified the
// Spanish canary with the same digits). A token two configured ranges read
// as different numbers is read as none.
func TestNationalPhones(t *testing.T) {
	c := newTest(t)
	regions := map[string]int{}
	for j := uint32(0); j < 3000; j++ {
		p := c.Canary(0, j)
		region, forms := nationally(p.Phone)
		regions[region]++
		for _, f := range append(forms, p.Phone, p.Phone[1:], "00"+p.Phone[1:]) {
			got, ok := c.AppendShapedPhone(nil, f)
			if !ok || string(got) != p.Phone {
				t.Fatalf("%s canary %s written %q: read as %q, %v", region, p.Phone, f, got, ok)
			}
			if !c.SamePhone(f, p.Phone) {
				t.Fatalf("%s canary %s written %q: not the same phone", region, p.Phone, f)
			}
		}
		// Its national number written as another country's.
		var other []string
		switch region {
		case "FR":
			other = []string{p.Phone[3:], "+34" + p.Phone[3:]} // Spanish
		case "ES":
			other = []string{"0" + p.Phone[3:], "+33" + p.Phone[3:]} // French
		case "GB", "DE":
			other = []string{p.Phone[3:]} // no trunk: no national form of theirs
		case "US":
			other = []string{"0" + p.Phone[2:], "1" + p.Phone[2:4]} // a trunk "0" the US has not
		}
		for _, f := range other {
			if c.SamePhone(f, p.Phone) {
				t.Fatalf("%s canary %s: %q taken for it", region, p.Phone, f)
			}
			if got, ok := c.AppendShapedPhone(nil, f); ok && string(got) == p.Phone {
				t.Fatalf("%s canary %s: %q read as it", region, p.Phone, f)
			}
		}
	}
	if len(regions) != 5 {
		t.Fatalf("canaries of %d countries (%v): the test needs all five of the default ranges", len(regions), regions)
	}
	// The lab's real numbers (blocks below the canaries' ranges) in
	// national form are no canary's.
	for _, f := range []string{"(415) 512-3456", "0612345678", "612345678", "07400 123456", "01512 3123456"} {
		if got, ok := c.AppendShapedPhone(nil, f); ok {
			t.Errorf("%q read as canary-shaped %s", f, got)
		}
	}
	// Two ranges that read one token differently: "4745591234" is the US
	// national form of +14745591234 (Canada's 474, in the plan) and,
	// without its "+", Norwegian +4745591234. Neither is said; each
	// written internationally is.
	amb, err := NewWithKeys(Config{KeyEnv: "X", Phones: []string{"+1474559xxxx", "+474559xxxx"}}, testKey)
	if err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]string{"4745591234": "", "(474) 559-1234": "", "+1 474 559 1234": "+14745591234", "+47 45 59 12 34": "+4745591234",
		"14745591234": "+14745591234", "0047 4559 1234": "+4745591234"} {
		got, ok := amb.AppendShapedPhone(nil, f)
		if string(got) != want || ok != (want != "") {
			t.Errorf("NANP and Norwegian ranges: %q read as %q, %v; want %q", f, got, ok, want)
		}
	}
}

// TestShapedPhoneAllocs: reading a contact-only record's phone allocates
// nothing (a reader checks every one).
func TestShapedPhoneAllocs(t *testing.T) {
	c := newTest(t)
	buf := make([]byte, 0, 32)
	for _, f := range []string{"+1 (415) 590-1234", "(415) 590-1234", "0612912345", "+12125523456", "0044 7400 912345"} {
		if n := testing.AllocsPerRun(100, func() { c.AppendShapedPhone(buf[:0], f) }); n != 0 {
			t.Errorf("%q: %v allocations", f, n)
		}
	}
}
