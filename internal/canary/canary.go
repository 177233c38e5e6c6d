package canary

import (
	"fmt"
	"math/bits"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/warden-gw/warden/internal/identify"
)

// Canaries derives and recognises canary profiles and decides which ones
// each identity sees. It is immutable after New and safe for concurrent use.
type Canaries struct {
	cfg     Config
	keys    []*key // keys[0] signs
	spacing int64  // ids per canary index
	phones  []phoneRange
	facets  []identify.Facet
	seed    map[string]bool // route patterns seeded
	// anchorBelow: a record is an anchor when its hash is below it.
	anchorBelow uint64
	// lo, hi bound a slot's bias as arcsine angles: p = sin^2(theta).
	lo, hi float64
	// minDigits, maxDigits: the lengths of the range's decimal ids.
	minDigits, maxDigits int
	// badSize is the answer to a list asked with a size the platform
	// refuses (pageSize): 400 and this body.
	badSize []byte
}

type phoneRange struct {
	prefix string
	digits int
	size   uint64
	cities []string
	// cc is the prefix's country code ("+44"), trunk the national prefix
	// its country writes before the national number ("0"; "" for +1 and
	// +34, whose national form is the national number alone): the range's
	// numbers written nationally are trunk, prefix[len(cc):], the digits.
	// national is false when libphonenumber writes them otherwise (trace
	// then reads them only internationally).
	cc, trunk string
	national  bool
}

// New builds Canaries from cfg (defaults applied), reading the keys from
// the environment variable cfg.KeyEnv through lookupEnv (nil: os).
func New(cfg Config, lookupEnv func(string) (string, bool)) (*Canaries, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("canary: %w", err)
	}
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	v, ok := lookupEnv(cfg.KeyEnv)
	if !ok || v == "" {
		return nil, fmt.Errorf("canary: key_env: %s is not set", cfg.KeyEnv)
	}
	keys, err := parseKeys(v)
	if err != nil {
		return nil, fmt.Errorf("canary: %s: %w", cfg.KeyEnv, err)
	}
	return newCanaries(cfg, keys), nil
}

// NewWithKeys is New with the keys given (tests, tools).
func NewWithKeys(cfg Config, keys ...string) (*Canaries, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("canary: %w", err)
	}
	ks, err := parseKeys(strings.Join(keys, ","))
	if err != nil {
		return nil, fmt.Errorf("canary: %w", err)
	}
	return newCanaries(cfg, ks), nil
}

func newCanaries(cfg Config, keys []*key) *Canaries {
	c := &Canaries{cfg: cfg, keys: keys, spacing: (cfg.IDs.Max - cfg.IDs.Min + 1) / indexCount, seed: map[string]bool{}}
	for _, p := range cfg.Phones {
		x := strings.IndexByte(p, 'x')
		pr := phoneRange{prefix: p[:x], digits: len(p) - x, size: pow10(len(p) - x)}
		region := ""
		if n, err := phonenumbers.Parse(fillPhone(p, x, 0), ""); err == nil {
			region = phonenumbers.GetRegionCodeForNumber(n)
		}
		if pr.cities = regionCities[region]; pr.cities == nil {
			pr.cities = otherCities
		}
		pr.cc, pr.trunk, pr.national = nationalForm(p, x)
		c.phones = append(c.phones, pr)
	}
	for _, f := range cfg.Facets {
		ff, _ := identify.ParseFacet(f)
		c.facets = append(c.facets, ff)
	}
	for _, r := range cfg.Routes.Seed {
		c.seed[r] = true
	}
	c.anchorBelow = uint64(cfg.Density * (1 << 63) * 2)
	c.lo, c.hi = arcsineBounds(cfg.Cutoff)
	c.minDigits, c.maxDigits = len(strconv.FormatInt(cfg.IDs.Min, 10)), len(strconv.FormatInt(cfg.IDs.Max, 10))
	c.badSize = badSizeBody(cfg.Page)
	return c
}

// Config is the configuration c was built from, defaults applied.
func (c *Canaries) Config() Config { return c.cfg }

// nationalForm is how range p's numbers (x: where its digits drawn start)
// are written in their own country, from libphonenumber's national format
// of its first and last numbers as digits: the country code ("+33"), then
// the national (trunk) prefix written before the national significant
// number ("0": "06 12 90 00 00"). ok is false when the two numbers are
// written differently or not as a prefix and the national number.
func nationalForm(p string, x int) (cc, trunk string, ok bool) {
	for i, v := range []uint64{0, pow10(len(p)-x) - 1} {
		s := fillPhone(p, x, v)
		n, err := phonenumbers.Parse(s, "")
		if err != nil {
			return "", "", false
		}
		c := "+" + strconv.Itoa(int(n.GetCountryCode()))
		nsn := phonenumbers.GetNationalSignificantNumber(n)
		nat := normPhone(phonenumbers.Format(n, phonenumbers.NATIONAL))
		if c+nsn != s || len(c) > x || !strings.HasSuffix(nat, nsn) {
			return "", "", false
		}
		t := nat[:len(nat)-len(nsn)]
		if i == 0 {
			cc, trunk = c, t
		} else if c != cc || t != trunk {
			return "", "", false
		}
	}
	return cc, trunk, true
}

func pow10(n int) uint64 {
	v := uint64(1)
	for range n {
		v *= 10
	}
	return v
}

// Profile is one canary's data.
type Profile struct {
	ID         int64
	Index      uint32 // its index under its key
	Key        int    // which key made it (0: the signing key)
	Username   string
	FullName   string
	Bio        string // empty until AppendProfile needs it
	City       string
	Category   string
	IsBusiness bool
	Followers  int // follower_count: the length of the list warden serves
	Following  int
	Posts      int
	Created    int64 // unix seconds
	Email      string
	Phone      string
}

// Field tags of a profile's choices.
const (
	tagR uint64 = iota + 1
	tagFirst
	tagLast
	tagUserStyle
	tagMailStyle
	tagMailDigits
	tagDomain
	tagPhoneRange
	tagPhoneDigits
	tagCity
	tagBusiness
	tagCategory
	tagBio
	tagFollowers
	tagFollowing
	tagPosts
	tagCreated
	tagPost = 1 << 20
)

// epochUnix is the instant a canary's times count back from.
const epochUnix = 1793491200

// suffixBase starts the number a canary username ends in: above every
// number the lab platform's usernames end in (24 bits), 8 digits like them.
const suffixBase = 1 << 24

type chooser [4]uint64

func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// pick is choice tag reduced to [0, n).
func (s *chooser) pick(tag uint64, n int) int {
	hi, _ := bits.Mul64(mix(s[0]^mix(tag*0x9e3779b97f4a7c15+s[1])), uint64(n))
	return int(hi)
}

// profile derives canary j of key ki.
func (c *Canaries) profile(ki int, j uint32) Profile {
	k := c.keys[ki]
	s := chooser(k.seed(j))
	p := Profile{Index: j, Key: ki}
	p.ID = c.cfg.IDs.Min + int64(j)*c.spacing + int64(s.pick(tagR, int(c.spacing)))
	fi, li := s.pick(tagFirst, len(firstNames)), s.pick(tagLast, len(lastNames))
	p.FullName = firstNames[fi] + " " + lastNames[li]
	f, l := firstLower[fi], lastLower[li]
	suffix := strconv.FormatUint(suffixBase+uint64(k.permute(j)), 10)
	switch s.pick(tagUserStyle, 3) {
	case 0:
		p.Username = f + "." + l + "_" + suffix
	case 1:
		p.Username = f + l + "_" + suffix
	default:
		p.Username = l + "." + f + "_" + suffix
	}
	var local string
	switch s.pick(tagMailStyle, 4) {
	case 0:
		local = f + "." + l
	case 1:
		local = f[:1] + l
	case 2:
		local = l + "." + f
	default:
		local = f
	}
	local += strconv.Itoa(suffixBase + s.pick(tagMailDigits, 80_000_000))
	p.Email = local + "@" + c.cfg.Domains[s.pick(tagDomain, len(c.cfg.Domains))]
	pr := &c.phones[s.pick(tagPhoneRange, len(c.phones))]
	d := strconv.FormatUint(uint64(s.pick(tagPhoneDigits, int(pr.size))), 10)
	p.Phone = pr.prefix + strings.Repeat("0", pr.digits-len(d)) + d
	p.City = pr.cities[s.pick(tagCity, len(pr.cities))]
	p.IsBusiness = s.pick(tagBusiness, 100) < 15
	if p.IsBusiness {
		p.Category = businessCategories[s.pick(tagCategory, len(businessCategories))]
	} else {
		p.Category = personalCategories[s.pick(tagCategory, len(personalCategories))]
	}
	p.Followers = heavyTail(&s, tagFollowers)
	p.Following = heavyTail(&s, tagFollowing)
	if s.pick(tagPosts, 100) >= 15 {
		p.Posts = 1 + s.pick(tagPosts+1<<8, 50)
	}
	p.Created = epochUnix - 30*86400 - int64(s.pick(tagCreated, 2*365*86400))
	return p
}

// bio is p's bio: 200..~800 bytes of phrases, made only for a full
// profile (list answers show none).
func (c *Canaries) bio(p *Profile) string {
	s := chooser(c.keys[p.Key].seed(p.Index))
	var bio strings.Builder
	target := 200 + s.pick(tagBio, 600)
	for i := uint64(1); bio.Len() < target; i++ {
		if bio.Len() > 0 {
			bio.WriteByte(' ')
		}
		bio.WriteString(bioPhrases[s.pick(tagBio+i<<8, len(bioPhrases))])
	}
	return bio.String()
}

// heavyTail draws a count as the lab's are drawn: most few, some many.
func heavyTail(s *chooser, tag uint64) int {
	r := s.pick(tag, 1000)
	u := s.pick(tag+1<<8, 1<<30)
	span := func(lo, hi int) int { return lo + u%(hi-lo+1) }
	switch {
	case r < 100:
		return 0
	case r < 450:
		return span(1, 8)
	case r < 800:
		return span(9, 40)
	case r < 970:
		return span(41, 150)
	default:
		return span(151, 600)
	}
}

// byID returns the canary whose id this is, under any key (the signing key
// first).
func (c *Canaries) byID(id int64) (Profile, bool) {
	if id < c.cfg.IDs.Min || id > c.cfg.IDs.Max {
		return Profile{}, false
	}
	j := (id - c.cfg.IDs.Min) / c.spacing
	if j >= indexCount {
		return Profile{}, false
	}
	for ki := range c.keys {
		if p := c.profile(ki, uint32(j)); p.ID == id {
			return p, true
		}
	}
	return Profile{}, false
}

// idShaped reports whether s has as many digits as ids of the canary
// range can: the upstream's ids are shorter (the lab's below 2^24, 8
// digits at most, the default range 10 digits), so for them this one
// compare says "not a canary".
func (c *Canaries) idShaped(s string) bool {
	return len(s) >= c.minDigits && len(s) <= c.maxDigits
}

// ParseID returns the canary with decimal id s.
func (c *Canaries) ParseID(s string) (Profile, bool) {
	if !c.idShaped(s) || s[0] == '0' {
		return Profile{}, false
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return Profile{}, false
	}
	return c.byID(id)
}

// ByUsername returns the canary with this username in any case (a copy may
// keep names upper-cased; the id-column path compares them so too), under
// any key.
func (c *Canaries) ByUsername(name string) (Profile, bool) {
	i := strings.LastIndexByte(name, '_')
	if i < 1 || len(name)-i-1 != 8 {
		return Profile{}, false
	}
	n, err := strconv.ParseUint(name[i+1:], 10, 64)
	if err != nil || n < suffixBase || n >= suffixBase+indexCount {
		return Profile{}, false
	}
	for ki, k := range c.keys {
		if p := c.profile(ki, k.unpermute(uint32(n-suffixBase))); strings.EqualFold(p.Username, name) {
			return p, true
		}
	}
	return Profile{}, false
}

// Verify says whether a record of a leaked copy is a canary: its id or
// username names one, and at least one of the fields that only the key can
// make (username, e-mail, phone) is present and equal, and none present
// differs. A record shaped like a canary but not made by a key never is.
func (c *Canaries) Verify(id, username, email, phone string) (Profile, bool) {
	if id != "" {
		// After a rotation an id can name a canary under more than one
		// key (each places index j's canary in the same stretch of the
		// range): each is tried, so an old key's is not taken for a
		// forgery of the new key's.
		p, ok := c.ParseID(id)
		ok = ok && strconv.FormatInt(p.ID, 10) == id // "+1000000299" is no canary's id
		for ki := p.Key; ok && ki < len(c.keys); ki++ {
			if q := c.profile(ki, p.Index); q.ID == p.ID && c.matches(&q, username, email, phone) {
				return q, true
			}
		}
		return Profile{}, false
	}
	if p, ok := c.ByUsername(username); ok && c.matches(&p, username, email, phone) {
		return p, true
	}
	return Profile{}, false
}

// matches reports whether at least one of username, email and phone is
// present and p's, and none present differs. An e-mail may come as a
// copy writes it ("Name <a@b>", "mailto:a@b", any case) and a phone in
// any spelling of the same number (SamePhone).
func (c *Canaries) matches(p *Profile, username, email, phone string) bool {
	match := 0
	if username != "" {
		if !strings.EqualFold(username, p.Username) {
			return false
		}
		match++
	}
	if email != "" {
		if !strings.EqualFold(BareEmail(email), p.Email) {
			return false
		}
		match++
	}
	if phone != "" {
		if !c.SamePhone(phone, p.Phone) {
			return false
		}
		match++
	}
	return match > 0
}

// BareEmail is the address of an e-mail as a copy may write it: "Lena
// Morgan <lena@mail.example>", "<lena@mail.example>", "mailto:lena@...",
// with spaces around. Any other value is returned as it is.
func BareEmail(e string) string {
	e = strings.TrimSpace(e)
	if i := strings.LastIndexByte(e, '<'); i >= 0 {
		if j := strings.IndexByte(e[i:], '>'); j > 1 {
			e = strings.TrimSpace(e[i+1 : i+j])
		}
	}
	if len(e) > 7 && strings.EqualFold(e[:7], "mailto:") {
		e = e[7:]
	}
	return e
}

// IntlPhone is s (a copy's spelling of a number) in E.164 when it says
// its country: "+1 (212) 590-1234", "001 212 590 1234" and "12125901234"
// (E.164 without its "+", as many databases keep numbers) are all
// "+12125901234". A number without a country code ("(212) 590-1234") is
// returned as "+" and its digits, which SamePhone also reads nationally.
func IntlPhone(s string) string {
	n := normPhone(s)
	if n == "" || n[0] == '+' {
		return n
	}
	return "+" + strings.TrimPrefix(n, "00")
}

// SamePhone reports whether a copy's value s is canonical, a canary's
// phone (E.164), in some spelling: international (IntlPhone), or the
// national form of canonical's own country as libphonenumber writes it,
// its trunk prefix included ("(415) 590-1234" for +14155901234, "07400
// 912345" for +447400912345, "06 12 90 12 34" for +33612901234, "612 90
// 12 34" for +34612901234). A national number of another country is not
// canonical even where its digits end canonical's: "0612901234" is French
// and never +34612901234, "612901234" Spanish and never +33612901234.
func (c *Canaries) SamePhone(s, canonical string) bool {
	if IntlPhone(s) == canonical {
		return true
	}
	n := normPhone(s)
	if n == "" || n[0] == '+' || strings.HasPrefix(n, "00") {
		return false // it names its country, and another number
	}
	for i := range c.phones {
		r := &c.phones[i]
		if len(canonical) == len(r.prefix)+r.digits && strings.HasPrefix(canonical, r.prefix) {
			rest := canonical[len(r.cc):]
			return r.national && len(n) == len(r.trunk)+len(rest) && strings.HasPrefix(n, r.trunk) && n[len(r.trunk):] == rest
		}
	}
	return false
}

// normPhone keeps "+" and the digits (a copy may write "+1 212-590-1234").
func normPhone(s string) string {
	return string(AppendNormPhone(make([]byte, 0, len(s)), s))
}

// AppendNormPhone appends s's "+" (leading) and digits to dst: NormPhone
// without an allocation, for a reader checking every record.
func AppendNormPhone(dst []byte, s string) []byte {
	n := len(dst)
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= '0' && c <= '9' || c == '+' && len(dst) == n {
			dst = append(dst, c)
		}
	}
	return dst
}

// Bucket is the time bucket of t.
func (c *Canaries) Bucket(t time.Time) int64 { return t.Unix() / int64(c.cfg.Bucket/time.Second) }
