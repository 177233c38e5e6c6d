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
)

// contactOf is a profile's contact details as an answer gives them.
type contactOf struct {
	ID       string `json:"id"`
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

// TestTraceContactOnly: a harvester's take through the real gateway,
// written as contact details only (no id, no username: CSV e-mail and
// phone, JSON e-mails only, phones spelled "+1 (212) 590-1234", names
// and phones), names the harvester and nobody else: its records' canaries
// are found by looking their e-mails and phones up among the canaries the
// ledger says were served. Real users' contacts, and forged canary-shaped
// e-mails and phones, accuse nobody and count no canary.
func TestTraceContactOnly(t *testing.T) {
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
