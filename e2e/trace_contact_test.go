package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

// contactOf is a profile's contact details as an answer gives them.
type contactOf struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	FullName string `json:"full_name"`
	Email    string `json:"email"`
	Phone    string `json:"phone"`
}

// lookUp fetches the profiles of ids from base (the gateway, or the
// platform itself) with one account: their contact details.
func lookUp(t *testing.T, cl *http.Client, base, tok string, ids []string) []contactOf {
	t.Helper()
	var out []contactOf
	for _, id := range ids {
		a := do(t, cl, "GET", base+"/v1/users/"+id, map[string]string{"Authorization": tok})
		if a.status != 200 {
			t.Fatalf("profile %s: %d %s", id, a.status, a.body)
		}
		var c contactOf
		if err := json.Unmarshal([]byte(a.body), &c); err != nil {
			t.Fatal(err)
		}
		if c.Email == "" || c.Phone == "" {
			t.Fatalf("profile %s has no contact details: %s", id, a.body)
		}
		out = append(out, c)
	}
	return out
}

// spelled writes a phone as people do: "+1 (212) 590-1234", "+44 7400 912345".
func spelled(p string) string {
	if strings.HasPrefix(p, "+1") && len(p) == 12 {
		return fmt.Sprintf("+1 (%s) %s-%s", p[2:5], p[5:8], p[8:])
	}
	return p[:3] + " " + p[3:7] + " " + p[7:]
}

// writeContacts writes cs to dir/name, a record per line(c), between head and tail.
func writeContacts(t *testing.T, dir, name, head, tail string, cs []contactOf, line func(contactOf) string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(head)
	for i, c := range cs {
		if i > 0 && strings.HasPrefix(head, "[") {
			b.WriteString(",")
		}
		b.WriteString(line(c))
	}
	b.WriteString(tail)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// contactTake is a harvester's take through the real gateway with the
// contact details of its records' profiles, and real users' contacts
// nobody took.
type contactTake struct {
	dir, ledgerDir string
	contacts       []contactOf // the take's profiles: every canary's, 600 real ones'
	canaries       int         // how many of contacts are canaries
	realContacts   []contactOf // 1,000 profiles from the platform itself
}

// contactHarvest: account 101 harvests the followers lists of 1..400
// through the gateway (20 innocents read a few lists each) and looks up
// its records' profiles; the ledger is closed on return.
func contactHarvest(t *testing.T) contactTake {
	up, dir, ledgerDir, g, cl := traceLab(t)
	tok := accountToken(t, 101)
	take := dedupe(harvest(t, cl, g.url, tok, lists(1, 400)))
	for i := range 20 { // innocents reading a few lists, some the harvester's
		harvest(t, cl, g.url, accountToken(t, 300+i), []int{1 + i*37, 750 + i*13, 1500 + i*11})
	}
	// The harvester looks up its records' profiles for their contact
	// details: every canary's, and (to keep the test's requests bounded)
	// the first 600 real ones'.
	var ids []string
	canaries, real := 0, 0
	for _, u := range take {
		if len(u.ID) >= 10 {
			ids = append(ids, u.ID)
			canaries++
		} else if real < 600 {
			ids = append(ids, u.ID)
			real++
		}
	}
	contacts := lookUp(t, cl, g.url, tok, ids)
	// Real users' contacts from the platform itself, taken by nobody.
	var others []string
	for id := 1001; id <= 3000; id += 2 {
		others = append(others, fmt.Sprint(id))
	}
	realContacts := lookUp(t, cl, up, accountToken(t, 999), others)
	g.p.Stop() // the ledger is written and closed
	t.Logf("take: %d records, %d canaries; %d profiles looked up", len(take), canaries, len(contacts))
	return contactTake{dir: dir, ledgerDir: ledgerDir, contacts: contacts, canaries: canaries, realContacts: realContacts}
}

// TestTraceContactOnly: a harvester's take through the real gateway,
// written as contact details only (no id, no username: CSV e-mail and
// phone, JSON e-mails only, phones spelled "+1 (212) 590-1234", names
// and phones), names the harvester and nobody else: its records' canaries
// are found by looking their e-mails and phones up among the canaries the
// ledger says were served. Real users' contacts, and forged canary-shaped
// e-mails and phones, accuse nobody and count no canary.
func TestTraceContactOnly(t *testing.T) {
	h := contactHarvest(t)
	dir, ledgerDir, contacts, canaries, realContacts := h.dir, h.ledgerDir, h.contacts, h.canaries, h.realContacts
	for name, p := range map[string]string{
		"csv email,phone": writeContacts(t, dir, "take.csv", "email,phone\n", "", contacts, func(c contactOf) string { return c.Email + "," + c.Phone + "\n" }),
		"json e-mails":    writeContacts(t, dir, "take.json", "[", "]\n", contacts, func(c contactOf) string { return fmt.Sprintf(`{"email":%q}`, c.Email) }),
		"phones spelled":  writeContacts(t, dir, "take-spelled.csv", "E-Mail,Phone Number\n", "", contacts, func(c contactOf) string { return fmt.Sprintf("%s,%q\n", c.Email, spelled(c.Phone)) }),
		"names and phones": writeContacts(t, dir, "take-phones.ndjson", "", "", contacts, func(c contactOf) string {
			return fmt.Sprintf(`{"name":%q,"mobile":%q}`+"\n", c.FullName, spelled(c.Phone))
		}),
	} {
		r := runTraceCmd(t, ledgerDir, p)
		t.Logf("%s: %d records (%d contact-only), %d canaries found (%d by contact), %d unmatched, accused %v",
			name, r.Records, r.ContactOnly, r.CanariesFound, r.ContactCanaries, r.ContactUnmatched, accusedSet(r))
		if r.ContactOnly != int64(len(contacts)) {
			t.Errorf("%s: %d of %d records contact-only", name, r.ContactOnly, len(contacts))
		}
		// A phone that several served canaries share names none of them.
		if r.ContactCanaries < canaries*8/10 || r.CanariesFound != r.ContactCanaries {
			t.Errorf("%s: %d canaries found (%d by contact) of the take's %d", name, r.CanariesFound, r.ContactCanaries, canaries)
		}
		if got := accusedSet(r); fmt.Sprint(got) != "[account:101]" {
			t.Errorf("%s: accused %v, want account 101", name, got)
		}
	}

	r := runTraceCmd(t, ledgerDir, writeContacts(t, dir, "real.csv", "email,phone\n", "", realContacts, func(c contactOf) string { return c.Email + "," + c.Phone + "\n" }))
	if len(r.Accused) != 0 || r.CanariesFound != 0 || r.ContactUnmatched != 0 {
		t.Errorf("real users' contacts: accused %v, %d canaries found, %d unmatched", accusedSet(r), r.CanariesFound, r.ContactUnmatched)
	}
	// Forged: e-mails with a canary's suffix range at its domains, numbers
	// of its phone ranges, made by no key; beside real users' contacts.
	rng := rand.New(rand.NewPCG(8, 9))
	var forged []contactOf
	for i := range 500 {
		forged = append(forged, contactOf{Email: fmt.Sprintf("lena.morgan%d@inbox.example", 16_777_216+rng.IntN(80_000_000)), Phone: fmt.Sprintf("+141559%05d", i*199)})
	}
	r = runTraceCmd(t, ledgerDir, writeContacts(t, dir, "forged.csv", "email,phone\n", "", append(realContacts, forged...), func(c contactOf) string { return c.Email + "," + c.Phone + "\n" }))
	if len(r.Accused) != 0 || r.CanariesFound != 0 || r.ContactUnmatched != len(forged) {
		t.Errorf("forged contacts: accused %v, %d canaries found, %d unmatched of %d", accusedSet(r), r.CanariesFound, r.ContactUnmatched, len(forged))
	}
}

// nationalForm is p (E.164) as its country writes it without the country
// code, libphonenumber's national format: "(415) 559-2671", "07400
// 912345", "06 12 91 23 45", "612 91 23 45", "090-1234-5678".
func nationalForm(t *testing.T, p string) string {
	n, err := phonenumbers.Parse(p, "")
	if err != nil || !phonenumbers.IsValidNumber(n) {
		t.Fatalf("%s: not a valid number: %v", p, err)
	}
	return phonenumbers.Format(n, phonenumbers.NATIONAL)
}

// digitsOf is s's digits alone.
func digitsOf(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

// TestTraceNationalPhones: the harvester's take written with every phone
// in the national form of its country (no country code, as a leaked
// database of one country's users keeps them: "(415) 559-2671", "07400
// 912345", "06 12 91 23 45") finds the same canaries and accuses the same
// identities as the take with its phones in E.164: with ids, usernames
// and e-mails (each canary's phone must still be its own, or the record
// is a forgery), as phones alone, and as a CSV without a header whose
// phones are digits alone ("4155592671", "0612912345"). Before, a
// contact-only copy in national form found no canary by phone, and a
// headerless column of phone digits was read as ids.
func TestTraceNationalPhones(t *testing.T) {
	h := contactHarvest(t)
	full := func(phone func(string) string) func(contactOf) string {
		return func(c contactOf) string {
			return fmt.Sprintf("%s,%s,%s,%q\n", c.ID, c.Username, c.Email, phone(c.Phone))
		}
	}
	intl := func(p string) string { return p }
	nat := func(p string) string { return nationalForm(t, p) }
	natDigits := func(p string) string { return digitsOf(nationalForm(t, p)) }
	for _, tc := range []struct {
		name, head string
		orig, nl   func(contactOf) string
		contact    bool
	}{
		{"ids, usernames, e-mails and phones", "id,username,email,phone\n", full(intl), full(nat), false},
		{"phones alone", "phone\n", func(c contactOf) string { return c.Phone + "\n" }, func(c contactOf) string { return nat(c.Phone) + "\n" }, true},
		{"names and phone digits, no header", "",
			func(c contactOf) string { return fmt.Sprintf("%q,%s\n", c.FullName, c.Phone[1:]) },
			func(c contactOf) string { return fmt.Sprintf("%q,%s\n", c.FullName, natDigits(c.Phone)) }, true},
	} {
		a := runTraceCmd(t, h.ledgerDir, writeContacts(t, h.dir, "take-e164.csv", tc.head, "", h.contacts, tc.orig))
		b := runTraceCmd(t, h.ledgerDir, writeContacts(t, h.dir, "take-national.csv", tc.head, "", h.contacts, tc.nl))
		t.Logf("%s: E.164: %d records, %d canaries (%d by contact), accused %v; national: %d records, %d canaries (%d by contact), %d rejected, accused %v",
			tc.name, a.Records, a.CanariesFound, a.ContactCanaries, accusedSet(a), b.Records, b.CanariesFound, b.ContactCanaries, b.Forged, accusedSet(b))
		want := h.canaries
		if tc.contact {
			want = want * 8 / 10 // a phone that several served canaries share names none of them
		}
		if a.CanariesFound < want || b.CanariesFound != a.CanariesFound || b.ContactCanaries != a.ContactCanaries ||
			b.Forged != 0 || b.Records != a.Records || b.ContactOnly != a.ContactOnly {
			t.Errorf("%s: national: %d records (%d contact-only), %d canaries (%d by contact), %d rejected; E.164: %d records (%d contact-only), %d canaries (%d by contact) of the take's %d",
				tc.name, b.Records, b.ContactOnly, b.CanariesFound, b.ContactCanaries, b.Forged, a.Records, a.ContactOnly, a.CanariesFound, a.ContactCanaries, h.canaries)
		}
		if got := accusedSet(b); fmt.Sprint(got) != "[account:101]" || fmt.Sprint(got) != fmt.Sprint(accusedSet(a)) {
			t.Errorf("%s: national copy accused %v, E.164 copy %v; want account 101 alone", tc.name, got, accusedSet(a))
		}
	}
	// Real users' phones in national form accuse nobody and find no canary.
	r := runTraceCmd(t, h.ledgerDir, writeContacts(t, h.dir, "real-national.csv", "phone\n", "", h.realContacts, func(c contactOf) string { return nat(c.Phone) + "\n" }))
	if len(r.Accused) != 0 || r.CanariesFound != 0 || r.ContactUnmatched != 0 {
		t.Errorf("real users' phones, national: accused %v, %d canaries found, %d unmatched", accusedSet(r), r.CanariesFound, r.ContactUnmatched)
	}
}
