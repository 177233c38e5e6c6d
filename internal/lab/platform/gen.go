package platform

import (
	"math"
	"math/bits"
	"strconv"
	"time"
)

// epochUnix is the instant every derived time counts back from
// (2026-11-01T00:00:00Z), so no datum depends on the clock.
const epochUnix = 1793491200

// idBits bounds every account id (profiles and sign-ups) to 24 bits: the
// bijections below that make usernames, emails and phones unique work on
// that domain.
const (
	idBits  = 24
	idMask  = 1<<idBits - 1
	maxID   = idMask // ids are 1..maxID
	maxPost = 50
)

// Field tags: each derived datum hashes (key, id, tag), so fields are
// independent of each other and of the order they are computed in.
const (
	tagFirst uint64 = iota + 1
	tagLast
	tagUserStyle
	tagMailStyle
	tagDomain
	tagCity
	tagCategory
	tagBusiness
	tagBio
	tagPostCount
	tagPostGap
	tagPostLag
	tagCreated
	tagOutDegree
	tagPopularity
	tagEdges
	tagLikes
	tagSignup
	tagPermUser
	tagPermMail
	tagPermPhone
	tagCursor
	tagPostBase = 1 << 16 // + 4*k for post k's fields
)

// mix is SplitMix64's finaliser: a fixed, portable 64-bit bijection.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// gen derives every datum of the synthetic network from a seed. It holds
// only keys derived from the seed; it is immutable after newGen.
type gen struct {
	key   uint64
	perms [3]perm24 // usernames, emails, phones
}

func newGen(seed int64) *gen {
	g := &gen{key: mix(uint64(seed) ^ 0x6c61622d706c6174)}
	for i, tag := range []uint64{tagPermUser, tagPermMail, tagPermPhone} {
		g.perms[i] = newPerm24(g.h(0, tag))
	}
	return g
}

// h is the hash of (seed, id, tag): the source of every derived choice.
func (g *gen) h(id int, tag uint64) uint64 {
	return mix(g.key ^ mix(uint64(id)*0x9e3779b97f4a7c15+tag))
}

// pick returns h(id, tag) reduced to [0, n) without modulo bias that matters.
func (g *gen) pick(id int, tag uint64, n int) int {
	hi, _ := bits.Mul64(g.h(id, tag), uint64(n))
	return int(hi)
}

// perm24 is a keyed bijection on [0, 2^24): three rounds of multiply by an
// odd constant, add a key byte (both bijective mod 2^24) and xorshift
// (bijective). Names, emails and phones embed perm(id), so they are unique by
// construction, and a username's suffix leads back to its id.
type perm24 struct {
	add [3]uint64
	mul [3]uint64
	inv [3]uint64 // multiplicative inverses of mul mod 2^24
}

func newPerm24(k uint64) perm24 {
	var p perm24
	for r := range 3 {
		p.add[r] = (k >> (r * 16)) & idMask
		p.mul[r] = (mix(k+uint64(r)) & idMask) | 1
		// Newton's iteration doubles the correct low bits each step.
		x := p.mul[r]
		for range 5 {
			x *= 2 - p.mul[r]*x
		}
		p.inv[r] = x & idMask
	}
	return p
}

func (p *perm24) fwd(x uint64) uint64 {
	for r := range 3 {
		x = (x*p.mul[r] + p.add[r]) & idMask
		x ^= x >> 11
	}
	return x
}

func (p *perm24) back(x uint64) uint64 {
	for r := 2; r >= 0; r-- {
		x ^= x>>11 ^ x>>22
		x = ((x - p.add[r]) * p.inv[r]) & idMask
	}
	return x
}

// Profile fields.

func (g *gen) first(id int) int { return g.pick(id, tagFirst, len(firstNames)) }
func (g *gen) last(id int) int  { return g.pick(id, tagLast, len(lastNames)) }

// appendFullName writes "First Last".
func (g *gen) appendFullName(b []byte, id int) []byte {
	b = append(b, firstNames[g.first(id)]...)
	b = append(b, ' ')
	return append(b, lastNames[g.last(id)]...)
}

// appendFullNameLower writes the search key of the full name.
func (g *gen) appendFullNameLower(b []byte, id int) []byte {
	b = append(b, firstLower[g.first(id)]...)
	b = append(b, ' ')
	return append(b, lastLower[g.last(id)]...)
}

// appendUsername writes e.g. "lena.morgan_4821173". The digits after the
// last '_' are perm_user(id); name parts never hold '_' or digits, so two ids
// never share a username.
func (g *gen) appendUsername(b []byte, id int) []byte {
	f, l := firstLower[g.first(id)], lastLower[g.last(id)]
	switch g.pick(id, tagUserStyle, 3) {
	case 0:
		b = append(append(append(b, f...), '.'), l...)
	case 1:
		b = append(append(b, f...), l...)
	default:
		b = append(append(append(b, l...), '.'), f...)
	}
	b = append(b, '_')
	return strconv.AppendUint(b, g.perms[0].fwd(uint64(id)), 10)
}

// idForUsername inverts appendUsername; 0 when no id has this username.
func (g *gen) idForUsername(name string, accounts int) int {
	i := len(name) - 1
	for i >= 0 && name[i] >= '0' && name[i] <= '9' {
		i--
	}
	if i < 1 || name[i] != '_' || len(name)-i-1 > 8 {
		return 0
	}
	n, err := strconv.ParseUint(name[i+1:], 10, 32)
	if err != nil || n > idMask {
		return 0
	}
	id := int(g.perms[0].back(n))
	if id < 1 || id > accounts {
		return 0
	}
	var buf [64]byte
	if string(g.appendUsername(buf[:0], id)) != name {
		return 0
	}
	return id
}

var mailDomains = [...]string{"mail.example", "inbox.example", "post.example", "example.com", "example.net", "example.org"}

// appendEmail writes an RFC 5322 dot-atom address. Its local part ends in
// decimal perm_mail(id) and names hold no digits, so the trailing digits
// alone identify the id: emails are unique by construction.
func (g *gen) appendEmail(b []byte, id int) []byte {
	f, l := firstLower[g.first(id)], lastLower[g.last(id)]
	switch g.pick(id, tagMailStyle, 4) {
	case 0:
		b = append(append(append(b, f...), '.'), l...)
	case 1:
		b = append(append(b, f[0]), l...)
	case 2:
		b = append(append(append(b, l...), '.'), f...)
	default:
		b = append(b, f...)
	}
	b = strconv.AppendUint(b, g.perms[1].fwd(uint64(id)), 10)
	b = append(b, '@')
	return append(b, mailDomains[g.pick(id, tagDomain, len(mailDomains))]...)
}

// phoneSlot splits perm_phone(id) into one of 32 number blocks and a
// 19-bit local number; (slot, local) is a bijection of the id.
func (g *gen) phoneSlot(id int) (slot int, local uint64) {
	p := g.perms[2].fwd(uint64(id))
	return int(p & 31), p >> 5
}

// appendPhone writes "+" + the slot's prefix + the local number in six
// digits (local < 524288). Slot prefixes are prefix-free and every block
// was checked valid with libphonenumber, so phones are unique and valid.
func (g *gen) appendPhone(b []byte, id int) []byte {
	slot, local := g.phoneSlot(id)
	b = append(b, '+')
	b = append(b, phoneSlots[slot].prefix...)
	var d [6]byte
	for i := 5; i >= 0; i-- {
		d[i] = byte('0' + local%10)
		local /= 10
	}
	return append(b, d[:]...)
}

// city comes from the country of the phone's block.
func (g *gen) city(id int) string {
	slot, _ := g.phoneSlot(id)
	cs := countryCities[phoneSlots[slot].country]
	return cs[g.pick(id, tagCity, len(cs))]
}

func (g *gen) isBusiness(id int) bool { return g.pick(id, tagBusiness, 100) < 15 }

func (g *gen) category(id int) string {
	if g.isBusiness(id) {
		return businessCategories[g.pick(id, tagCategory, len(businessCategories))]
	}
	return personalCategories[g.pick(id, tagCategory, len(personalCategories))]
}

// appendBio writes 200..~860 bytes of phrases, which keeps a full profile's
// JSON between 400 and 2,000 bytes whatever the other fields are.
func (g *gen) appendBio(b []byte, id int) []byte {
	target := 200 + g.pick(id, tagBio, 600)
	start := len(b)
	for i := uint64(1); len(b)-start < target; i++ {
		if len(b) > start {
			b = append(b, ' ')
		}
		b = append(b, bioPhrases[g.pick(id, tagBio+i<<8, len(bioPhrases))]...)
	}
	return b
}

// Posts. A profile's posts are numbered k = 0 (newest) .. count-1; post k of
// author a has id a*100+k, so ids are unique and name their author.

func (g *gen) postCount(id int) int {
	c := g.pick(id, tagPostCount, 100)
	if c < 15 {
		return 0
	}
	return 1 + g.pick(id, tagPostCount+1<<8, maxPost)
}

func postID(author, k int) int64 { return int64(author)*100 + int64(k) }

// postTime is strictly decreasing in k: k*gap + jitter(k) with jitter < gap.
func (g *gen) postTime(author, k int) int64 {
	gap := 3600 + g.pick(author, tagPostGap, 14*86400)
	lag := g.pick(author, tagPostLag, 3*86400)
	jitter := g.pick(author, tagPostBase+uint64(k)*4, gap)
	return epochUnix - int64(lag) - int64(k)*int64(gap) - int64(jitter)
}

// created is when a profile's account was made: before its oldest post.
func (g *gen) created(id int) int64 {
	gap := 3600 + g.pick(id, tagPostGap, 14*86400)
	lag := g.pick(id, tagPostLag, 3*86400)
	return epochUnix - int64(lag) - int64(g.postCount(id)+1)*int64(gap) - int64(g.pick(id, tagCreated, 2*365*86400))
}

func (g *gen) appendPostText(b []byte, author, k int) []byte {
	n := 1 + g.pick(author, tagPostBase+uint64(k)*4+1, 3)
	for i := range n {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, postPhrases[g.pick(author, tagPostBase+uint64(k)*4+1+uint64(i+1)<<32, len(postPhrases))]...)
	}
	b = append(b, " #"...)
	return append(b, hashtags[g.pick(author, tagPostBase+uint64(k)*4+2, len(hashtags))]...)
}

// likes grows with the author's audience, heavy-tailed.
func (g *gen) likes(author, k, followers int) int {
	r := g.pick(author, tagPostBase+uint64(k)*4+3, 1000)
	return (followers/8 + 5) * r * r / 1_000_000
}

func appendRFC3339(b []byte, unix int64) []byte {
	return time.Unix(unix, 0).UTC().AppendFormat(b, time.RFC3339)
}

// Graph inputs.

// outDegree is how many accounts a profile tries to follow: most follow a
// few dozen, a few follow thousands.
func (g *gen) outDegree(id int) int {
	r := g.pick(id, tagOutDegree, 10000)
	u := g.h(id, tagOutDegree+1<<8)
	span := func(lo, hi int) int { return lo + int(u%uint64(hi-lo+1)) }
	switch {
	case r < 800:
		return 0
	case r < 3500:
		return span(1, 5)
	case r < 6500:
		return span(6, 15)
	case r < 8800:
		return span(16, 40)
	case r < 9700:
		return span(41, 100)
	case r < 9950:
		return span(101, 300)
	case r < 9995:
		return span(301, 1000)
	default:
		return span(1001, 2000)
	}
}

// popularity is a Pareto(alpha 4/3) weight, scaled by 16 and capped: the
// chance that a follow lands on a profile. It uses only sqrt, multiply and
// divide, each correctly rounded by IEEE 754, and no fused operations, so
// every machine computes the same weights.
func (g *gen) popularity(id int) uint64 {
	u := float64(g.h(id, tagPopularity)>>11+1) * (1.0 / (1 << 53))
	s := math.Sqrt(u)
	t := math.Sqrt(s)
	d := float64(s * t)
	w := float64(16 / d)
	if w > 1<<22 {
		return 1 << 22
	}
	return uint64(w)
}
