package trace

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/canary"
	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/ledger"
)

// contactScene is a ledger of followers pages read by one harvester and
// innocents, and what the harvester was shown: real subjects and canaries.
type contactScene struct {
	c        *canary.Canaries
	led      entries
	real     []int            // the harvester's real subjects, in order
	canaries []canary.Profile // the canaries it was shown, in order
}

func newContactScene(t *testing.T) *contactScene {
	t.Helper()
	c, err := canary.NewWithKeys(canary.Config{KeyEnv: "X"}, "contact-test-canary-key-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	s := &contactScene{c: c}
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	seen := map[int64]bool{}
	page := func(k int, account string, list int, keep bool) {
		e := &ledger.Entry{Route: leakRoute, Status: 200, Time: t0.Add(time.Duration(k) * time.Second), List: strconv.Itoa(list)}
		e.Identity[identify.FacetAccount-1] = account
		for i := range 40 { // below page.max (50): a full page shows no canary
			e.Records = append(e.Records, ledger.Record{ID: strconv.Itoa(1 + (list*50+i)%3000), Classes: 1})
		}
		s.led = append(s.led, e)
		if !keep {
			return
		}
		c.Plan(0, leakRoute, e.List, account, c.Bucket(e.Time), len(e.Records), func(i int) []byte { return []byte(e.Records[i].ID) },
			func(_ int, sl canary.Slot, shown bool) {
				if p := c.Canary(0, sl.Canary); shown && !seen[p.ID] {
					seen[p.ID] = true
					s.canaries = append(s.canaries, p)
				}
			})
		for _, r := range e.Records {
			id, _ := strconv.Atoi(r.ID)
			s.real = append(s.real, id)
		}
	}
	k := 0
	for list := 1; list <= 400; list++ {
		page(k, "harvester", list, true)
		k++
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 40 {
		for range 5 {
			page(k, fmt.Sprintf("innocent%d", i), 1+rng.IntN(600), false)
			k++
		}
	}
	if len(s.canaries) < 50 {
		t.Fatalf("the harvester was shown %d canaries; the scene needs more", len(s.canaries))
	}
	return s
}

// realEmail and realPhone are a real subject's, lab-shaped: a suffix below
// 2^24, a phone of the lab's blocks (never a canary range's).
func realEmail(id int) string { return fmt.Sprintf("lena.morgan%d@mail.example", id*7919%16777216) }
func realPhone(id int) string { return fmt.Sprintf("+12125%06d", id*31%524288) }

// usSpelling writes a phone as people do: "+1 (212) 590-1234", "+44 7400 912345".
func usSpelling(p string) string {
	if strings.HasPrefix(p, "+1") && len(p) == 12 {
		return fmt.Sprintf("+1 (%s) %s-%s", p[2:5], p[5:8], p[8:])
	}
	return p[:3] + " " + p[3:7] + " " + p[7:]
}

// copyOf writes the harvester's take as contact details only: a record
// per real subject and canary, by line(email, phone).
func (s *contactScene) copyOf(line func(email, phone string) string) string {
	var b strings.Builder
	for i, id := range s.real {
		if i%10 == 0 && i/10 < len(s.canaries) { // the canaries among the records, as served
			p := s.canaries[i/10]
			b.WriteString(line(p.Email, p.Phone))
		}
		b.WriteString(line(realEmail(id), realPhone(id)))
	}
	return b.String()
}

func (s *contactScene) trace(t *testing.T, data string, led Entries) *Report {
	t.Helper()
	tr := New(s.c, 2)
	if _, err := tr.Read(strings.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}
	return tr.ReportEntries(led, 0)
}

func accusedOf(r *Report) string {
	var a []string
	for _, x := range r.Accused {
		a = append(a, x.Value)
	}
	slices.Sort(a)
	return strings.Join(a, ",")
}

// TestContactOnlyCopies: a take written as contact details only (CSV
// e-mail and phone, JSON e-mails only, phones spelled otherwise, names and
// phones) has its canaries found through the canaries the ledger says
// were served and names the harvester, nobody else.
func TestContactOnlyCopies(t *testing.T) {
	s := newContactScene(t)
	cases := map[string]string{
		"csv email,phone": "email,phone\n" + s.copyOf(func(e, p string) string { return e + "," + p + "\n" }),
		"json e-mails":    "[" + strings.TrimSuffix(s.copyOf(func(e, _ string) string { return fmt.Sprintf(`{"email":%q},`, e) }), ",") + "]",
		"phones spelled":  "email,phone\n" + s.copyOf(func(e, p string) string { return fmt.Sprintf("%s,%q\n", strings.ToUpper(e), usSpelling(p)) }),
		"names and phones": s.copyOf(func(_, p string) string {
			return fmt.Sprintf(`{"full_name":"Lena Morgan","mobile":%q}`+"\n", usSpelling(p))
		}),
	}
	for name, data := range cases {
		r := s.trace(t, data, s.led)
		t.Logf("%s: %d records, %d contact-only, %d canaries found (%d by contact), %d unmatched, accused %q",
			name, r.Records, r.ContactOnly, r.CanariesFound, r.ContactCanaries, r.ContactUnmatched, accusedOf(r))
		if r.ContactOnly != r.Records {
			t.Errorf("%s: %d of %d records contact-only", name, r.ContactOnly, r.Records)
		}
		// A phone several served canaries share names none of them.
		if r.ContactCanaries < len(s.canaries)*9/10 || r.CanariesFound != r.ContactCanaries {
			t.Errorf("%s: found %d (%d by contact) of the take's %d canaries", name, r.CanariesFound, r.ContactCanaries, len(s.canaries))
		}
		if got := accusedOf(r); got != "harvester" {
			t.Errorf("%s: accused %q, want the harvester alone", name, got)
		}
	}
}

// TestContactOnlyInnocent: real users' contacts, canary-shaped forgeries,
// every number of a canary range, and canaries' e-mails beside another
// canary's phone accuse nobody and find no canary; without a ledger no
// canary is found.
func TestContactOnlyInnocent(t *testing.T) {
	s := newContactScene(t)
	var real strings.Builder
	for id := 1; id <= 3000; id++ {
		fmt.Fprintf(&real, "%s,%s\n", realEmail(id), realPhone(id))
	}
	r := s.trace(t, real.String(), s.led)
	if r.CanariesFound != 0 || r.ContactUnmatched != 0 || len(r.Accused) != 0 {
		t.Errorf("real users' contacts: found %d, unmatched %d, accused %q", r.CanariesFound, r.ContactUnmatched, accusedOf(r))
	}
	// Forged: shaped as canaries' (a suffix of the canaries' range at a
	// canary domain, numbers of the ranges), made by no key.
	var forged strings.Builder
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 500 {
		fmt.Fprintf(&forged, "lena.morgan%d@mail.example,+121259%05d\n", 16777216+rng.IntN(80_000_000), i*37)
	}
	r = s.trace(t, forged.String(), s.led)
	if r.CanariesFound != 0 || r.ContactUnmatched != 500 || len(r.Accused) != 0 {
		t.Errorf("forged: found %d, unmatched %d of 500, accused %q", r.CanariesFound, r.ContactUnmatched, accusedOf(r))
	}
	// Every number of the ranges the take's canaries' phones are in, and
	// the take's own phones: the phones alone prove nothing, so none counts.
	var every strings.Builder
	for _, pre := range []string{"+121259", "+141559"} {
		for n := range 100_000 {
			fmt.Fprintf(&every, "{\"phone\":\"%s%05d\"}\n", pre, n)
		}
	}
	r = s.trace(t, every.String()+s.copyOf(func(_, p string) string { return fmt.Sprintf("{\"phone\":%q}\n", p) }), s.led)
	if r.CanariesFound != 0 || len(r.Accused) != 0 {
		t.Errorf("every number: found %d, accused %q", r.CanariesFound, accusedOf(r))
	}
	// A canary's e-mail beside another's phone is neither (Verify's rule).
	var mixed strings.Builder
	for i, p := range s.canaries {
		fmt.Fprintf(&mixed, "%s,%s\n", p.Email, s.canaries[(i+1)%len(s.canaries)].Phone)
	}
	r = s.trace(t, mixed.String(), s.led)
	if r.CanariesFound != 0 || len(r.Accused) != 0 || r.ContactUnmatched != len(s.canaries) {
		t.Errorf("e-mail and phone of two canaries: found %d, unmatched %d of %d, accused %q", r.CanariesFound, r.ContactUnmatched, len(s.canaries), accusedOf(r))
	}
	// The take without a ledger: no served canaries to look up.
	r = s.trace(t, "email,phone\n"+s.copyOf(func(e, p string) string { return e + "," + p + "\n" }), nil)
	if r.CanariesFound != 0 || r.ContactUnmatched != len(s.canaries) {
		t.Errorf("no ledger: found %d, unmatched %d, want 0 and %d", r.CanariesFound, r.ContactUnmatched, len(s.canaries))
	}
}

// TestBinomialTail: the bound is 1 at or below the chance, tiny for a
// copy whose phones are all served canaries', and not for a few.
func TestBinomialTail(t *testing.T) {
	if b := binomialTail(100, 1, 0.01); b != 1 {
		t.Errorf("at the chance: %v", b)
	}
	if b := binomialTail(20, 20, 0.001); b > 1e-50 {
		t.Errorf("all 20 of 20 at 0.001: %v", b)
	}
	if b := binomialTail(2, 1, 0.3); b < 1e-6 {
		t.Errorf("1 of 2 at 0.3: %v", b)
	}
}

// cutEntries is a ledger whose every replay is cut short after n entries,
// and says so through Err, as a ledger.Reader and a Replay do.
type cutEntries struct {
	entries
	n   int
	err error
}

func (c *cutEntries) Each(fn func(*ledger.Entry) bool) {
	c.entries[:c.n].Each(fn)
	c.err = errors.New("cut")
}

func (c *cutEntries) Err() error { return c.err }

// TestContactReplayCut: when the replay for the served canaries is cut
// short the report stops there (no canary, nobody accused) and the
// ledger's error stands for the caller, instead of a second replay's
// clearing it.
func TestContactReplayCut(t *testing.T) {
	s := newContactScene(t)
	led := &cutEntries{entries: s.led, n: len(s.led) / 2}
	r := s.trace(t, "email,phone\n"+s.copyOf(func(e, p string) string { return e + "," + p + "\n" }), led)
	if led.Err() == nil || len(r.Accused) != 0 || r.CanariesFound != 0 {
		t.Errorf("cut replay: err %v, found %d, accused %q", led.Err(), r.CanariesFound, accusedOf(r))
	}
}

// FuzzKeepContact: any e-mail and phone bytes are checked without a panic,
// and what is kept is canary-shaped, normalised as Verify compares.
func FuzzKeepContact(f *testing.F) {
	c, err := canary.NewWithKeys(canary.Config{KeyEnv: "X"}, "contact-test-canary-key-0123456789")
	if err != nil {
		f.Fatal(err)
	}
	p := c.Canary(0, 12345)
	f.Add([]byte(p.Email), []byte(p.Phone))
	f.Add([]byte(strings.ToUpper(p.Email)), []byte(usSpelling(p.Phone)))
	f.Add([]byte(p.Email), []byte(national(p.Phone, 0)))
	f.Add([]byte(p.Email), []byte("00"+p.Phone[1:]))
	f.Add([]byte("a@mail.example"), []byte("+"))
	f.Add([]byte("@"), []byte{})
	f.Fuzz(func(t *testing.T, email, phone []byte) {
		set := map[contact]struct{}{}
		rec := Record{Email: email, Phone: phone}
		keepContact(c, &rec, set)
		for k := range set {
			if k.email != "" && (!c.EmailShaped(k.email) || k.email != strings.ToLower(k.email)) ||
				k.phone != "" && (!c.PhoneShaped(k.phone) || k.phone != canary.NormPhone(k.phone)) {
				t.Fatalf("kept %+v from %q, %q", k, email, phone)
			}
		}
	})
}

// TestSpelledCopies: a take whose e-mails are written "Name <a@b>" and
// whose phones lack their "+" (as databases keep E.164) or have "00" for
// it: with ids and usernames, every canary is found and none is counted a
// forgery (before, each was rejected for its phone's spelling and nobody
// was accused); as contact details only, the canaries are found by them.
func TestSpelledCopies(t *testing.T) {
	s := newContactScene(t)
	noPlus := func(p string) string { return p[1:] }
	dialOut := func(p string) string { return "00" + p[1:] }
	full := func(phone func(string) string) string {
		var b strings.Builder
		b.WriteString("id,username,email,phone\n")
		for i, id := range s.real {
			if i%10 == 0 && i/10 < len(s.canaries) {
				p := s.canaries[i/10]
				fmt.Fprintf(&b, "%d,%s,\"Lena Morgan <%s>\",%s\n", p.ID, p.Username, p.Email, phone(p.Phone))
			}
			fmt.Fprintf(&b, "%d,lena.morgan_%d,\"Lena Morgan <%s>\",%s\n", id, id, realEmail(id), phone(realPhone(id)))
		}
		return b.String()
	}
	for name, tc := range map[string]struct {
		data    string
		contact bool
	}{
		"full, phones without +":     {full(noPlus), false},
		"full, phones with 00":       {full(dialOut), false},
		"contact, name <email>":      {"email\n" + s.copyOf(func(e, _ string) string { return "\"Lena Morgan <" + e + ">\"\n" }), true},
		"contact, phones without +":  {"name,phone\n" + s.copyOf(func(_, p string) string { return "Lena Morgan," + noPlus(p) + "\n" }), true},
		"contact, mailto and 00 tel": {"email,phone\n" + s.copyOf(func(e, p string) string { return "mailto:" + e + "," + dialOut(p) + "\n" }), true},
	} {
		r := s.trace(t, tc.data, s.led)
		t.Logf("%s: %d records, %d canaries found (%d by contact), %d rejected, accused %q", name, r.Records, r.CanariesFound, r.ContactCanaries, r.CanariesForged, accusedOf(r))
		want := len(s.canaries)
		if tc.contact {
			want = want * 9 / 10 // a phone several served canaries share names none
		}
		if r.CanariesFound < want || r.CanariesForged != 0 {
			t.Errorf("%s: found %d of the take's %d canaries, %d rejected as forgeries", name, r.CanariesFound, len(s.canaries), r.CanariesForged)
		}
		if got := accusedOf(r); got != "harvester" {
			t.Errorf("%s: accused %q, want the harvester alone", name, got)
		}
	}
}

// TestHandles: a list of "@name" lines is a list of usernames (read
// without the '@'), not of e-mails: a value starting with '@', or whose
// domain has no dot, is no e-mail. Before, such a copy was read as
// contact-only and found no canary, where the same list without '@' found
// them all.
func TestHandles(t *testing.T) {
	s := newContactScene(t)
	for _, at := range []string{"@", ""} {
		var b strings.Builder
		for i, p := range s.canaries {
			fmt.Fprintf(&b, "%s%s\n%slena.morgan_%d\n", at, p.Username, at, 4821173+i)
		}
		tr := New(s.c, 2)
		if _, err := tr.Read(strings.NewReader(b.String()), nil); err != nil {
			t.Fatal(err)
		}
		rep := tr.ReportEntries(s.led, 0)
		if rep.CanariesFound != len(s.canaries) || rep.ContactOnly != 0 {
			t.Errorf("%q lines: %d canaries found of %d, %d contact-only", at, rep.CanariesFound, len(s.canaries), rep.ContactOnly)
		}
	}
	for v, want := range map[string]int{"@lena.morgan": fUsername, "lena@mail.example": fEmail, "lena@localhost": fNone,
		"@lena@mail.example": fNone, "a.b@host": fNone} {
		if got := sniff([]byte(v)); got != want {
			t.Errorf("sniff(%q) = %d, want %d", v, got, want)
		}
	}
}

// TestUsernameOnly: records with a username and no id are counted
// (Report.UsernameOnly): their canaries are found, and they give no
// coverage, which the caller says.
func TestUsernameOnly(t *testing.T) {
	s := newContactScene(t)
	var b strings.Builder
	b.WriteString("username\n")
	for i, p := range s.canaries {
		fmt.Fprintf(&b, "%s\nlena.morgan_%d\n", p.Username, 4821173+i)
	}
	tr := New(s.c, 2)
	if _, err := tr.Read(strings.NewReader(b.String()), nil); err != nil {
		t.Fatal(err)
	}
	rep := tr.ReportEntries(s.led, 0)
	if rep.UsernameOnly != int64(2*len(s.canaries)) || rep.CanariesFound != len(s.canaries) || rep.Subjects != 0 {
		t.Errorf("username only: %d counted of %d, %d canaries found of %d, %d subjects", rep.UsernameOnly, 2*len(s.canaries),
			rep.CanariesFound, len(s.canaries), rep.Subjects)
	}
}

// TestIDsOnly: a copy of ids alone holds canaries' ids with nothing to
// verify them by: they are counted apart (CanaryIDsOnly), neither found
// nor forgeries, while an id of the range the key never made, or a
// canary's id beside another's username, is still a forgery. Before,
// every canary of an ids-only copy was reported as a forgery.
func TestIDsOnly(t *testing.T) {
	s := newContactScene(t)
	var b strings.Builder
	for _, id := range s.real {
		fmt.Fprintf(&b, "%d\n", id)
	}
	forged := 0
	for _, p := range s.canaries {
		fmt.Fprintf(&b, "%d\n", p.ID)
		if _, ok := s.c.ParseID(strconv.FormatInt(p.ID+1, 10)); !ok {
			fmt.Fprintf(&b, "%d\n", p.ID+1)
			forged++
		}
	}
	tr := New(s.c, 2)
	if _, err := tr.Read(strings.NewReader(b.String()), nil); err != nil {
		t.Fatal(err)
	}
	rep := tr.ReportEntries(s.led, 0)
	if rep.CanaryIDsOnly != len(s.canaries) || rep.CanariesForged != forged || rep.CanariesFound != 0 || forged == 0 {
		t.Errorf("ids only: %d unverified of %d canaries, %d rejected of %d forged, %d found", rep.CanaryIDsOnly, len(s.canaries),
			rep.CanariesForged, forged, rep.CanariesFound)
	}
	// Beside a username that is not its canary's: a forgery.
	tr = New(s.c, 1)
	tr.Read(strings.NewReader(fmt.Sprintf("id,username\n%d,lena.morgan_4821173\n", s.canaries[0].ID)), nil)
	if rep := tr.ReportEntries(nil, 0); rep.CanariesForged != 1 || rep.CanaryIDsOnly != 0 {
		t.Errorf("a canary's id with another username: %d rejected, %d unverified", rep.CanariesForged, rep.CanaryIDsOnly)
	}
}

// national writes an E.164 phone of the canary ranges' countries (or a
// real subject's, +1) in its country's national form, spelled the way
// style (0-2) picks: "(415) 559-2671", "415-559-2671", "4155592671";
// "07400 912345"; "01512 3912345"; "06 12 91 23 45"; "612 91 23 45".
func national(p string, style int) string {
	switch {
	case strings.HasPrefix(p, "+1"):
		n := p[2:]
		return [...]string{"(" + n[:3] + ") " + n[3:6] + "-" + n[6:], n[:3] + "-" + n[3:6] + "-" + n[6:], n}[style]
	case strings.HasPrefix(p, "+33"):
		n := "0" + p[3:]
		return [...]string{n[:2] + " " + n[2:4] + " " + n[4:6] + " " + n[6:8] + " " + n[8:], n, n[:2] + "." + n[2:4] + "." + n[4:6] + "." + n[6:8] + "." + n[8:]}[style]
	case strings.HasPrefix(p, "+34"):
		n := p[3:]
		return [...]string{n[:3] + " " + n[3:5] + " " + n[5:7] + " " + n[7:], n, n[:3] + "-" + n[3:6] + "-" + n[6:]}[style]
	default: // +44, +49: a trunk "0"
		n := "0" + p[3:]
		return [...]string{n[:5] + " " + n[5:], n, n[:5] + "-" + n[5:]}[style]
	}
}

// TestNationalCopies: a take whose phones are kept in the national form
// of their country (no country code: "(415) 559-2671", "07400 912345",
// "06 12 91 23 45"), with ids and usernames, as contact details only, and
// as a CSV without a header, finds the same canaries and accuses the same
// identity as the take with its phones in E.164. Before, a contact-only
// copy in national form found no canary by phone (a national number was
// read as E.164 without its "+", which no range has) and a headerless
// column of them was not read at all.
func TestNationalCopies(t *testing.T) {
	s := newContactScene(t)
	full := func(phone func(int, string) string) string {
		var b strings.Builder
		b.WriteString("id,username,phone\n")
		k := 0
		for i, id := range s.real {
			if i%10 == 0 && i/10 < len(s.canaries) {
				p := s.canaries[i/10]
				fmt.Fprintf(&b, "%d,%s,%q\n", p.ID, p.Username, phone(k, p.Phone))
				k++
			}
			fmt.Fprintf(&b, "%d,lena.morgan_%d,%q\n", id, id, phone(k, realPhone(id)))
			k++
		}
		return b.String()
	}
	e164 := func(_ int, p string) string { return p }
	nat := func(k int, p string) string { return national(p, k%3) }
	cases := []struct {
		name     string
		orig, nl string
		contact  bool
	}{
		{"ids, usernames and phones", full(e164), full(nat), false},
		{"phones only", "phone\n" + s.copyOf(func(_, p string) string { return p + "\n" }),
			"phone\n" + s.copyOf(func(_, p string) string { return fmt.Sprintf("%q\n", national(p, len(p)%3)) }), true},
		{"phones only, no header", s.copyOf(func(_, p string) string { return p + "\n" }),
			s.copyOf(func(_, p string) string { return national(p, 0) + "\n" }), true},
		{"phone digits only, no header", s.copyOf(func(_, p string) string { return p[1:] + "\n" }),
			s.copyOf(func(_, p string) string { return national(p, 2) + "\n" }), true},
		{"names and phones", s.copyOf(func(_, p string) string { return fmt.Sprintf(`{"full_name":"Lena Morgan","mobile":%q}`+"\n", p) }),
			s.copyOf(func(_, p string) string {
				return fmt.Sprintf(`{"full_name":"Lena Morgan","mobile":%q}`+"\n", national(p, 1))
			}), true},
	}
	for _, tc := range cases {
		a, b := s.trace(t, tc.orig, s.led), s.trace(t, tc.nl, s.led)
		t.Logf("%s: E.164 %d canaries (%d by contact), national %d (%d by contact), %d rejected, accused %q",
			tc.name, a.CanariesFound, a.ContactCanaries, b.CanariesFound, b.ContactCanaries, b.CanariesForged, accusedOf(b))
		want := len(s.canaries)
		if tc.contact {
			want = want * 9 / 10 // a phone several served canaries share names none
		}
		if a.CanariesFound < want || b.CanariesFound != a.CanariesFound || b.ContactCanaries != a.ContactCanaries ||
			b.CanariesForged != 0 || b.Records != a.Records || b.Subjects != a.Subjects {
			t.Errorf("%s: national: %d records, %d subjects, %d canaries (%d by contact), %d rejected; E.164: %d records, %d subjects, %d canaries (%d by contact)",
				tc.name, b.Records, b.Subjects, b.CanariesFound, b.ContactCanaries, b.CanariesForged, a.Records, a.Subjects, a.CanariesFound, a.ContactCanaries)
		}
		if got := accusedOf(b); got != "harvester" || got != accusedOf(a) {
			t.Errorf("%s: national copy accused %q, E.164 copy %q; want the harvester alone", tc.name, got, accusedOf(a))
		}
	}
}

// TestNationalWrongCountry: canaries' phones rewritten as another
// country's national number with the same digits (a French canary's
// "0612912345" written "612912345", Spain's form; a Spanish one's as
// "0612912345", France's) are another number: beside the canary's id
// they reject the record (a forgery), and alone they find no canary.
func TestNationalWrongCountry(t *testing.T) {
	s := newContactScene(t)
	swap := func(p string) (string, bool) {
		switch {
		case strings.HasPrefix(p, "+33"):
			return p[3:], true
		case strings.HasPrefix(p, "+34"):
			return "0" + p[3:], true
		}
		return "", false
	}
	var full, contacts strings.Builder
	full.WriteString("id,username,phone\n")
	contacts.WriteString("phone\n")
	n := 0
	for _, p := range s.canaries {
		if f, ok := swap(p.Phone); ok {
			fmt.Fprintf(&full, "%d,%s,%s\n", p.ID, p.Username, f)
			fmt.Fprintf(&contacts, "%s\n", f)
			n++
		}
	}
	if n < 10 {
		t.Fatalf("%d French or Spanish canaries: the test needs more", n)
	}
	r := s.trace(t, full.String(), s.led)
	if r.CanariesFound != 0 || r.CanariesForged != n || len(r.Accused) != 0 {
		t.Errorf("ids beside another country's number: %d found, %d rejected of %d, accused %q", r.CanariesFound, r.CanariesForged, n, accusedOf(r))
	}
	r = s.trace(t, contacts.String(), s.led)
	if r.CanariesFound != 0 || len(r.Accused) != 0 {
		t.Errorf("another country's numbers alone: %d found, accused %q", r.CanariesFound, accusedOf(r))
	}
}

// TestDigitColumns: in a CSV without a header, a column of phones kept as
// digits ("14155912345", E.164 without its "+"; "4155912345", the North
// American national form; "0612912345", a trunk "0") is read as phones,
// not ids, wherever it stands: before, a first column of them was taken
// for the records' ids (the real ids beside them ignored: no coverage,
// and numbers of 10 digits counted as forged canaries), and alone they
// were ids and found no canary. Columns of ids (sequential, or random
// ones of 10 and 11 digits) stay ids.
func TestDigitColumns(t *testing.T) {
	s := newContactScene(t)
	subjects := map[int]bool{}
	for _, id := range s.real {
		subjects[id] = true
	}
	write := func(phone func(string) string, withID bool) string {
		var b strings.Builder
		for i, id := range s.real {
			if i%10 == 0 && i/10 < len(s.canaries) {
				if p := s.canaries[i/10]; withID {
					fmt.Fprintf(&b, "%s,%d,%s\n", phone(p.Phone), p.ID, p.Username)
				} else {
					fmt.Fprintf(&b, "%s\n", phone(p.Phone))
				}
			}
			if withID {
				fmt.Fprintf(&b, "%s,%d,lena.morgan_%d\n", phone(realPhone(id)), id, id)
			} else {
				fmt.Fprintf(&b, "%s\n", phone(realPhone(id)))
			}
		}
		return b.String()
	}
	forms := map[string]func(string) string{
		"E.164 without +": func(p string) string { return p[1:] },
		"national digits": func(p string) string { return national(p, 2) },
	}
	for name, phone := range forms {
		r := s.trace(t, write(phone, true), s.led)
		if r.Subjects != len(subjects) || r.CanariesFound != len(s.canaries) || r.CanariesForged != 0 || accusedOf(r) != "harvester" {
			t.Errorf("%s, then ids and usernames: %d subjects of %d, %d canaries of %d, %d rejected, accused %q",
				name, r.Subjects, len(subjects), r.CanariesFound, len(s.canaries), r.CanariesForged, accusedOf(r))
		}
		r = s.trace(t, write(phone, false), s.led)
		if r.Subjects != 0 || r.ContactOnly != r.Records || r.CanariesFound < len(s.canaries)*9/10 || r.CanariesForged != 0 || accusedOf(r) != "harvester" {
			t.Errorf("%s alone: %d subjects, %d of %d records contact-only, %d canaries of %d, %d rejected, accused %q",
				name, r.Subjects, r.ContactOnly, r.Records, r.CanariesFound, len(s.canaries), r.CanariesForged, accusedOf(r))
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for name, id := range map[string]func(int) int64{
		"sequential ids": func(i int) int64 { return int64(i + 1) },
		"10-digit ids":   func(int) int64 { return 1_000_000_000 + rng.Int64N(3_000_000_000) },
		"11-digit ids":   func(int) int64 { return 10_000_000_000 + rng.Int64N(90_000_000_000) },
	} {
		var b strings.Builder
		for i := range 2000 {
			fmt.Fprintf(&b, "%d,lena.morgan_%d\n", id(i), i)
		}
		tr := New(nil, 2)
		if _, err := tr.Read(strings.NewReader(b.String()), nil); err != nil {
			t.Fatal(err)
		}
		if r := tr.ReportEntries(nil, 0); r.UsernameOnly != 0 || r.ContactOnly != 0 {
			t.Errorf("%s: %d records without an id, %d contact-only", name, r.UsernameOnly, r.ContactOnly)
		}
	}
	// sniff: what a value alone looks like.
	for v, want := range map[string]int{"0612912345": fPhone, "00447400912345": fPhone, "07400 912345": fPhone, "(415) 559-2671": fPhone,
		"415.559.2671": fPhone, "06 12 91 23 45": fPhone, "612 91 23 45": fPhone, "4155592671": fID, "0000161": fID,
		"2024-01-05": fNone, "1234567.89": fNone, "12:30:00": fNone, "415 559": fNone} {
		if got := sniff([]byte(v)); got != want {
			t.Errorf("sniff(%q) = %d, want %d", v, got, want)
		}
	}
}
