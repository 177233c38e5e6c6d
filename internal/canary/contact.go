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
func (c *Canaries) PhoneShaped(p string) bool { return phoneShaped(c.phones, p) }

// phoneShaped is PhoneShaped of a string or of bytes (a reader's, not
// copied).
func phoneShaped[T ~string | ~[]byte](phones []phoneRange, p T) bool {
	for i := range phones {
		r := &phones[i]
		if len(p) == len(r.prefix)+r.digits && string(p[:len(r.prefix)]) == r.prefix {
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

// AppendShapedPhone appends to dst the number of a configured range that
// s, a copy's spelling of a phone, is, in E.164 ("+" and the digits), and
// reports whether there is one: s written internationally ("+1 415 590
// 1234", "0014155901234", "14155901234": E.164 without its "+", as
// databases keep numbers) or in the national form of the range's own
// country ("(415) 590-1234", "07400 912345", "06 12 90 12 34"; SamePhone).
// A national number names no country, so s is read in each range's: when
// it is numbers of two ranges (two countries writing their numbers alike),
// it is none, since which canary's it is cannot be said. No libphonenumber
// parse: a reader checks every contact-only record, and the ranges'
// national forms are known from New.
func (c *Canaries) AppendShapedPhone(dst []byte, s string) ([]byte, bool) {
	if len(s) > 64 {
		return dst, false // no number of a range is written in so many bytes
	}
	var buf [64]byte
	d := AppendNormPhone(buf[:0], s)
	if len(d) == 0 || len(d) > 20 {
		return dst, false // E.164 has 15 digits at most
	}
	if d[0] == '+' {
		if !phoneShaped(c.phones, d) {
			return dst, false
		}
		return append(dst, d...), true
	}
	// Read nationally in the country of each range: cc and rest are the
	// one number found ("" when none).
	var cc string
	var rest []byte
	for i := range c.phones {
		r := &c.phones[i]
		if !r.national || len(d) != len(r.trunk)+len(r.prefix)-len(r.cc)+r.digits ||
			string(d[:len(r.trunk)]) != r.trunk || string(d[len(r.trunk):len(r.trunk)+len(r.prefix)-len(r.cc)]) != r.prefix[len(r.cc):] {
			continue
		}
		if rest != nil && (cc != r.cc || string(rest) != string(d[len(r.trunk):])) {
			return dst, false // two countries' numbers
		}
		cc, rest = r.cc, d[len(r.trunk):]
	}
	// And internationally: E.164 without its "+", or "00" for it.
	var ib [21]byte
	e := append(ib[:0], '+')
	if len(d) > 2 && d[0] == '0' && d[1] == '0' {
		e = append(e, d[2:]...)
	} else {
		e = append(e, d...)
	}
	if phoneShaped(c.phones, e) {
		if rest != nil && (len(e) != len(cc)+len(rest) || string(e[:len(cc)]) != cc || string(e[len(cc):]) != string(rest)) {
			return dst, false // a national number of one range, international of another
		}
		return append(dst, e...), true
	}
	if rest == nil {
		return dst, false
	}
	return append(append(dst, cc...), rest...), true
}

// VerifyContact is Verify's rule for a record found by its e-mail or
// phone alone: at least one of them present and p's, none present
// differing (e-mail case-insensitive, phone as SamePhone).
func (c *Canaries) VerifyContact(p *Profile, email, phone string) bool {
	return c.matches(p, "", email, phone)
}
