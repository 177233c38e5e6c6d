package canary

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/warden-gw/warden/internal/inspect"
)

// Canaries in search answers. The lab platform's search (shared/
// lab-platform.md, internal/lab/platform/search.go) answers the profiles
// whose username or full name starts with the query, lower-cased, at least
// 2 characters: username matches first, then full-name matches whose
// username does not match. A canary is inserted into a search answer only
// when it would match the same way: its username, or its full name in
// lower case, starts with the query. So the slot's canary is drawn from
// the canaries that match, not from all of them (a harvester who searched
// "le" and got a "Tom Baker" would know). Which canaries match a query
// comes from a table of the first searchSample canaries of each key by
// name, built the first time a key seeds or replays a search.
//
// The list a search answer is, in the code's hash and in the ledger, is
// the query normalised as the platform does (lower case), encrypted under
// the key (SIV: the IV a MAC of the query), because a query may be a
// person's name and the ledger keeps no personal data value warden did not
// make; warden trace, holding the key, reads it back.

// searchSample is how many canaries of each key the search table holds:
// about 9 per (first, last) name and 3 per username stem, so a query as
// long as a whole name still finds one most of the time.
const searchSample = 1 << 17

// maxSearchQuery bounds the queries seeded: none longer matches a canary
// (a username is at most about 30 bytes).
const maxSearchQuery = 48

// searchTable is one key's canaries by name, for prefix look-ups.
type searchTable struct {
	// byName: lower-case full names, sorted, each with its canaries.
	byName []searchEntry
	// byStem: usernames without their digits ("lena.morgan_"), sorted.
	byStem []searchEntry
}

type searchEntry struct {
	key   string
	idx   []uint32
	stems []string // byName only: each canary's username stem
}

// search returns key ki's table, built once.
func (c *Canaries) search(ki int) *searchTable {
	k := c.keys[ki]
	k.searchOnce.Do(func() { k.searchTab = buildSearch(k) })
	return k.searchTab
}

func buildSearch(k *key) *searchTable {
	names := map[string]*searchEntry{}
	stems := map[string]*searchEntry{}
	for j := uint32(0); j < searchSample; j++ {
		s := chooser(k.seed(j))
		fi, li := s.pick(tagFirst, len(firstNames)), s.pick(tagLast, len(lastNames))
		n := firstLower[fi] + " " + lastLower[li]
		st := usernameStem(firstLower[fi], lastLower[li], s.pick(tagUserStyle, 3))
		if stems[st] == nil {
			stems[st] = &searchEntry{key: st}
		}
		stems[st].idx = append(stems[st].idx, j)
		if names[n] == nil {
			names[n] = &searchEntry{key: n}
		}
		e := names[n]
		e.idx, e.stems = append(e.idx, j), append(e.stems, stems[st].key)
	}
	sorted := func(m map[string]*searchEntry) []searchEntry {
		out := make([]searchEntry, 0, len(m))
		for _, e := range m {
			out = append(out, *e)
		}
		slices.SortFunc(out, func(a, b searchEntry) int { return strings.Compare(a.key, b.key) })
		return out
	}
	return &searchTable{byName: sorted(names), byStem: sorted(stems)}
}

// usernameStem is a username without its digits, by style.
func usernameStem(f, l string, style int) string {
	switch style {
	case 0:
		return f + "." + l + "_"
	case 1:
		return f + l + "_"
	default:
		return l + "." + f + "_"
	}
}

// prefixRange is the entries whose key starts with q, or of which q
// starts with the key when stems (q reaching into a username's digits).
func prefixRange(es []searchEntry, q string) []searchEntry {
	lo, _ := slices.BinarySearchFunc(es, q, func(e searchEntry, q string) int { return strings.Compare(e.key, q) })
	hi := lo
	for hi < len(es) && strings.HasPrefix(es[hi].key, q) {
		hi++
	}
	return es[lo:hi]
}

// stemOf is the entry whose key q starts with (q reaching into the
// digits), if any.
func stemOf(es []searchEntry, q string) *searchEntry {
	i := strings.IndexByte(q, '_')
	if i < 0 || i == len(q)-1 {
		return nil
	}
	if k, ok := slices.BinarySearchFunc(es, q[:i+1], func(e searchEntry, q string) int { return strings.Compare(e.key, q) }); ok {
		return &es[k]
	}
	return nil
}

// matching appends to dst key ki's canaries (of the table) that the
// platform's search for q (normalised) would answer: username matches,
// then full-name matches whose username does not match, each once.
func (c *Canaries) matching(dst []uint32, ki int, q string) []uint32 {
	t := c.search(ki)
	k := c.keys[ki]
	userMatch := func(j uint32, stem string) bool {
		if len(q) <= len(stem) {
			return strings.HasPrefix(stem, q)
		}
		return strings.HasPrefix(stem+strconv.FormatUint(suffixBase+uint64(k.permute(j)), 10), q)
	}
	for _, e := range prefixRange(t.byStem, q) {
		dst = append(dst, e.idx...)
	}
	if e := stemOf(t.byStem, q); e != nil {
		for _, j := range e.idx {
			if userMatch(j, e.key) {
				dst = append(dst, j)
			}
		}
	}
	for _, e := range prefixRange(t.byName, q) {
		for x, j := range e.idx {
			if !userMatch(j, e.stems[x]) {
				dst = append(dst, j)
			}
		}
	}
	return dst
}

// NormalizeQuery is a search query as the platform reads it: the query
// parameter's value in lower case; ok false for one it refuses (shorter
// than 2 characters) or longer than any canary matches.
func NormalizeQuery(v string) (string, bool) {
	q := strings.ToLower(v)
	if utf8.RuneCountInString(q) < 2 || len(q) > maxSearchQuery {
		return "", false
	}
	return q, true
}

// SearchList is the list a search request's answer is, for the code and
// the ledger: its normalised query encrypted under the signing key; ""
// when the request is not seeded (no query, or one the platform refuses).
func (c *Canaries) SearchList(rawQuery string) string {
	q, ok := NormalizeQuery(inspect.QueryValue(rawQuery, c.cfg.Routes.SearchQuery))
	if !ok {
		return ""
	}
	return c.keys[0].sealQuery(q)
}

// searchPrefix starts a search list; the rest is base64url(iv || ct).
const searchPrefix = "q1."

const searchIV = aes.BlockSize

func (k *key) sealQuery(q string) string {
	m := hmac.New(sha256.New, k.searchMAC)
	m.Write([]byte(q))
	b := make([]byte, searchIV+len(q))
	copy(b, m.Sum(nil)[:searchIV])
	cipher.NewCTR(k.searchBlock, b[:searchIV]).XORKeyStream(b[searchIV:], []byte(q))
	return searchPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// ListName is how a ledger list reads to the operator who holds the key:
// a search list as "search:" and its query (decrypted), any other list
// as it is.
func (c *Canaries) ListName(list string) string {
	if q, ok := c.openQuery(list); ok {
		return "search:" + q
	}
	return list
}

// searchEncoding reads a list's base64 strictly (the unused bits of its
// last character zero): with the lenient decoder, up to 4 spellings of
// one sealed list opened, each a list of its own to Plan's slot hash.
var searchEncoding = base64.RawURLEncoding.Strict()

// openQuery reads a search list back under any key: the key whose MAC of
// the decrypted query is the IV made it. Only the spelling sealQuery
// writes opens (strict base64, no line breaks, which any decoder skips).
func (c *Canaries) openQuery(list string) (string, bool) {
	s, ok := strings.CutPrefix(list, searchPrefix)
	if !ok {
		return "", false
	}
	b, err := searchEncoding.DecodeString(s)
	if err != nil || len(b) <= searchIV || searchEncoding.EncodedLen(len(b)) != len(s) {
		return "", false
	}
	q := make([]byte, len(b)-searchIV)
	for _, k := range c.keys {
		cipher.NewCTR(k.searchBlock, b[:searchIV]).XORKeyStream(q, b[searchIV:])
		m := hmac.New(sha256.New, k.searchMAC)
		m.Write(q)
		if hmac.Equal(m.Sum(nil)[:searchIV], b[:searchIV]) {
			return string(q), true
		}
	}
	return "", false
}

// searchKeys are a key's search parts, derived in newKey.
type searchKeys struct {
	searchMAC   []byte
	searchBlock cipher.Block
	searchOnce  sync.Once
	searchTab   *searchTable
}

func (k *key) initSearch(secret []byte) {
	sub := func(label string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte("warden canary " + label))
		return m.Sum(nil)
	}
	k.searchMAC = sub("search mac")
	blk, err := aes.NewCipher(sub("search enc"))
	if err != nil {
		panic("canary: " + err.Error()) // a 32-byte key is always one
	}
	k.searchBlock = blk
}
