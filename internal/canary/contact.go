package canary

import (
	"strconv"
	"strings"
)

// A copy of contact details (e-mails, phones, no id or username) is traced
// by looking its values up among canaries made again from their indices:
// a canary's e-mail and phone are drawn from the key, so they cannot be
// turned back into its index, and making every index of a key again costs
// a profile each (2^26 of them). The helpers below are the read side of
// that look-up: which values can be a canary's at all (so a reader keeps
// only those) and the rule a record matched by contact must pass, Verify's.

// mailDigits is how many e-mail suffixes a canary's are drawn from.
const mailDigits = 80_000_000

// NormEmail is e as Verify compares e-mails: in lower case.
func NormEmail(e string) string { return strings.ToLower(e) }

// NormPhone is s as Verify compares phones: "+" and the digits ("+1 (212)
// 590-1234" is "+12125901234").
func NormPhone(s string) string { return normPhone(s) }

// EmailShaped reports whether e (in any case) can be a canary's: at one of
// the configured domains, its local part ending in exactly 8 digits from
// the canaries' suffix range (above every suffix the lab's real e-mails
// have). A copy's other e-mails need no look-up.
func (c *Canaries) EmailShaped(e string) bool {
	at := strings.LastIndexByte(e, '@')
	if at < 9 {
		return false
	}
	domain, local := e[at+1:], e[:at]
	ok := false
	for _, d := range c.cfg.Domains {
		if strings.EqualFold(d, domain) {
			ok = true
			break
		}
	}
	if !ok || local[len(local)-9] >= '0' && local[len(local)-9] <= '9' {
		return false
	}
	n, err := strconv.ParseUint(local[len(local)-8:], 10, 64)
	return err == nil && n >= suffixBase && n < suffixBase+mailDigits
}

// PhoneShaped reports whether p (NormPhone'd) is a number of one of the
// configured ranges: only those can be a canary's.
func (c *Canaries) PhoneShaped(p string) bool {
	for i := range c.phones {
		r := &c.phones[i]
		if len(p) == len(r.prefix)+r.digits && strings.HasPrefix(p, r.prefix) {
			return true
		}
	}
	return false
}

// PhoneSpace is how many numbers the configured ranges hold: a canary's
// phone is one of them, so a phone alone names one of about
// canaries/PhoneSpace canaries, and a number drawn at random from the
// ranges is some canary's with that chance.
func (c *Canaries) PhoneSpace() uint64 {
	var n uint64
	for _, r := range c.phones {
		n += r.size
	}
	return n
}

// VerifyContact is Verify's rule for a record found by its e-mail or
// phone alone: at least one of them present and p's, none present
// differing (e-mail case-insensitive, phone as NormPhone).
func VerifyContact(p *Profile, email, phone string) bool {
	return matches(p, "", email, phone)
}
