package trace

import (
	"bytes"

	"github.com/nyaruka/phonenumbers"
)

// Record is one record of a copy: the fields trace reads, as bytes of the
// reader's buffer (valid only during the callback). Absent fields are nil.
type Record struct {
	ID, Username, Email, Phone []byte
	// storeID is a store's own key ("_id") when numeric, the platform's
	// id kept there (mongoexport, elasticdump): the record's ID when it
	// has none of its own.
	storeID []byte
}

func (r *Record) empty() bool {
	return r.ID == nil && r.Username == nil && r.Email == nil && r.Phone == nil
}

// Field kinds.
const (
	fNone = iota
	fID
	fUsername
	fEmail
	fPhone
	fStoreID // "_id", read as the id only when numeric and the record has no id
)

// allDigits: a decimal id of 1 to 19 digits (an ObjectId's hex is not).
func allDigits(v []byte) bool {
	if len(v) == 0 || len(v) > 19 {
		return false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// fieldOfKey is fieldOf inlined for the names most copies use: a compare
// with a constant is a load and a compare, fieldOf's switch over all the
// names a call and a search.
func fieldOfKey(name []byte) int {
	switch string(name) {
	case "id":
		return fID
	case "username":
		return fUsername
	case "email":
		return fEmail
	case "phone":
		return fPhone
	}
	return fieldOf(name)
}

// fieldOf names the kind of a member or column name: case, '_', '-' and
// spaces ignored. Callers go through fieldOfKey, which has the exact
// spellings of the four fields.
func fieldOf(name []byte) int {
	switch string(name) { // the common names, without normalising (fieldOfKey has the four fields')
	case "full_name", "bio", "city", "category", "is_business", "follower_count", "following_count",
		"posts_count", "created_at", "name", "text", "like_count", "author", "author_id":
		return fNone
	}
	if len(name) == 0 || name[0] == '_' || name[0] == '$' { // _id, $oid: a store's own keys
		return fNone
	}
	var buf [32]byte
	norm, ok := normalName(name, &buf)
	if !ok {
		return fNone
	}
	switch string(norm) {
	case "id", "userid", "uid", "pk", "profileid", "accountid", "idstr", "numericid":
		return fID
	case "username", "user", "login", "handle", "screenname", "nick", "nickname", "uname":
		return fUsername
	case "email", "mail", "emailaddress", "useremail", "contactemail":
		return fEmail
	case "phone", "phonenumber", "mobile", "tel", "telephone", "msisdn", "cell", "cellphone", "mobilephone", "contactphone":
		return fPhone
	}
	return fNone
}

// normalName is name in lower case without '_', '-', '.' and spaces, in
// buf; false when it does not fit.
func normalName(name []byte, buf *[32]byte) ([]byte, bool) {
	n := 0
	for _, c := range name {
		switch {
		case c == '_' || c == '-' || c == ' ' || c == '.':
			continue
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		}
		if n == len(buf) {
			return nil, false
		}
		buf[n] = c
		n++
	}
	return buf[:n], true
}

// notField reports whether a column name says its values are something
// trace does not read: a count, a date, a person's name, whose values may
// look like ids or usernames.
func notField(name []byte) bool {
	var buf [32]byte
	norm, ok := normalName(name, &buf)
	if !ok {
		return false
	}
	switch string(norm) {
	case "fullname", "name", "firstname", "lastname", "displayname", "bio", "city", "country", "category",
		"isbusiness", "followercount", "followers", "followingcount", "following", "postscount", "posts",
		"likecount", "likes", "createdat", "created", "updatedat", "date", "age", "text", "author", "authorid":
		return true
	}
	return false
}

// idName reports whether an unknown column name says it holds ids
// ("identifier", "member_id", "ID number").
func idName(name []byte) bool {
	var buf [32]byte
	norm, ok := normalName(name, &buf)
	return ok && (bytes.HasPrefix(norm, []byte("id")) || bytes.HasSuffix(norm, []byte("id")))
}

func (r *Record) set(kind int, v []byte) {
	switch kind {
	case fID:
		if r.ID == nil {
			r.ID = v
		}
	case fUsername:
		if r.Username == nil {
			r.Username = v
		}
	case fEmail:
		if r.Email == nil {
			r.Email = v
		}
	case fPhone:
		if r.Phone == nil {
			r.Phone = v
		}
	case fStoreID:
		if r.storeID == nil && allDigits(v) {
			r.storeID = v
		}
	}
}

// sniff guesses the kind of a value whose name says nothing.
func sniff(v []byte) int {
	if len(v) == 0 || len(v) > 320 {
		return fNone
	}
	at, dot, digits, letters, plus := 0, false, 0, 0, v[0] == '+'
	for _, c := range v {
		switch {
		case c == '@':
			at++
			dot = false
		case c == '.':
			dot = true
		case c >= '0' && c <= '9':
			digits++
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			letters++
		}
	}
	switch {
	case at == 1 && v[0] == '@' && letters > 0 && len(v) <= 65 && !hasSpace(v):
		return fUsername // "@lena.morgan": a handle (read without its '@')
	case at > 0 && letters > 0 && v[0] != '@' && dot: // a dot in the domain
		return fEmail
	case at > 0:
		return fNone
	case plus && digits >= 7 && letters == 0:
		return fPhone
	case digits == len(v) && trunkDigits(v):
		return fPhone // "0612912345", "00447400912345": no decimal id starts with a "0"
	case digits == len(v) && len(v) <= 19:
		return fID // or a phone's digits: columns tells them apart by a sample
	case letters == 0 && phoneShape(v):
		return fPhone // "(415) 555-2671", "020 7946 0018", "06 12 34 56 78"
	case letters > 0 && len(v) <= 64 && !hasSpace(v):
		return fUsername
	}
	return fNone
}

func hasSpace(v []byte) bool {
	for _, c := range v {
		if c == ' ' {
			return true
		}
	}
	return false
}

// trunkDigits: a number written with a trunk "0" before its national
// number ("07400912345", "0612912345") or "00" before its country code
// ("00447400912345"), in 8 to 17 digits. An id written in decimal has no
// leading "0"; an id padded with zeros ("0000161") has more than these.
func trunkDigits(v []byte) bool {
	if len(v) < 8 || len(v) > 17 || v[0] != '0' {
		return false
	}
	if v[1] != '0' {
		return len(v) <= 13
	}
	return v[2] != '0' && len(v) >= 10
}

// phoneShape: a number as people write one, digits grouped by spaces,
// '-', '.', '/' or a pair of parentheses, 9 to 15 digits ("(415)
// 555-2671", "415.555.2671", "020 7946 0018", "06 12 34 56 78", "612 91
// 23 45"). A date ("2024-01-05": 8 digits), a decimal ("1234567.89": one
// '.', nothing else) and a time (':') are not.
func phoneShape(v []byte) bool {
	digits, seps, dots, open, closed := 0, 0, 0, 0, 0
	for i, c := range v {
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c == ' ' || c == '-' || c == '/':
			if i == 0 {
				return false
			}
			seps++
		case c == '.':
			dots++
		case c == '(' && open == 0 && digits == 0:
			open++
		case c == ')' && open == 1 && closed == 0:
			closed++
		default:
			return false
		}
	}
	return digits >= 9 && digits <= 15 && open == closed && (seps > 0 || dots > 1 || open > 0) && !(dots == 1 && seps == 0 && open == 0)
}

// phoneDigits reports whether v, decimal digits a column's sample holds
// (sniff's fID), is a valid phone number read as E.164 without its "+"
// ("14155552671", as databases keep numbers) or as a number of the North
// American plan without its country code ("4155552671", that plan's
// national form: 10 digits, no trunk prefix). libphonenumber parses it
// (15-30 us), so this is asked only of a sample's values, never of every
// record. Ids seldom pass: of random 10-digit ids 45%, of 11-digit ones
// 21%, of 8-digit ones and sequential ids almost none.
func phoneDigits(v []byte) bool {
	if len(v) < 8 || len(v) > 15 || v[0] == '0' {
		return false
	}
	if n, err := phonenumbers.Parse("+"+string(v), ""); err == nil && phonenumbers.IsValidNumber(n) {
		return true
	}
	if len(v) == 10 {
		n, err := phonenumbers.Parse("+1"+string(v), "")
		return err == nil && phonenumbers.IsValidNumber(n)
	}
	return false
}
