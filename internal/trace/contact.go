package trace

import (
	"math"
	"runtime"
	"sync"
	"unsafe"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/warden-gw/warden/internal/canary"
	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/ledger"
)

// A record with only an e-mail and/or a phone (no id, no username) cannot
// name its canary by itself: a canary's e-mail and phone are drawn from
// the key, not invertible, and making every index of a key again to index
// them costs a profile each (2^26 per key; see doc.go). So a read keeps the
// copy's contact-only values that can be a canary's (canary.EmailShaped,
// AppendShapedPhone: distinct pairs, nothing else), and the report replays the
// ledger once more, only when there are some, for the canaries it says
// were shown to anyone, makes each of them again and looks its e-mail and
// phone up among the kept values. A match must still pass Verify's rule.
//
// A phone alone is weak evidence: the default ranges hold 600,000 numbers,
// each some ~110 canaries' of a key. So a phone-only record counts only
// when exactly one served canary has its number, and only when the copy's
// phone-only values as a whole are served canaries' far more often than
// numbers drawn at random from the ranges would be (a copy listing every
// number of the ranges, or random ones, would otherwise "find" the served
// canaries and score every identity that was shown them).

// contact is one contact-only record's values that can be a canary's,
// normalised as Verify compares them ("" absent).
type contact struct{ email, phone string }

// keepContact adds rec's contact values to set when every one present can
// be a canary's (a value that cannot differs from every canary's, so the
// record is none, by Verify's rule).
func keepContact(c *canary.Canaries, rec *Record, set map[contact]struct{}) {
	// The checks read the reader's bytes in place (most records of a
	// contact copy are real users', checked and dropped): only a value
	// kept is copied.
	var phone [33]byte
	var p []byte
	var email string
	if len(rec.Email) > 0 {
		// "Name <a@b>" and "mailto:a@b" are the address (a substring).
		if email = canary.BareEmail(unsafe.String(&rec.Email[0], len(rec.Email))); !c.EmailShaped(email) {
			return
		}
	}
	if len(rec.Phone) > 0 {
		// A number of a configured range in E.164, however the copy
		// writes it: with or without its "+" or with "00" for it
		// ("12125901234", as databases keep E.164), or in the national
		// form of the range's country ("(212) 590-1234", "07400 912345").
		var ok bool
		if p, ok = c.AppendShapedPhone(phone[:0], unsafe.String(&rec.Phone[0], len(rec.Phone))); !ok {
			return
		}
	}
	k := contact{email: canary.NormEmail(email), phone: string(p)}
	if k != (contact{}) {
		set[k] = struct{}{}
	}
}

// servedCanaries replays led for the canaries shown to anyone, under
// every key: one bitmap of indices per key.
func (t *Tracer) servedCanaries(led Entries) []*roaring.Bitmap {
	c := t.c
	per := make([][]*roaring.Bitmap, t.workers)
	queues := make([]chan []*ledger.Entry, t.workers)
	var wg sync.WaitGroup
	for w := range per {
		per[w] = make([]*roaring.Bitmap, c.Keys())
		for ki := range per[w] {
			per[w][ki] = roaring.New()
		}
		queues[w] = make(chan []*ledger.Entry, 4)
		wg.Go(func() {
			for es := range queues[w] {
				for _, e := range es {
					_, ident := c.IdentityOf(func(f identify.Facet) string { return e.Identity[f-1] })
					for ki := range per[w] {
						bm := per[w][ki]
						c.Plan(ki, e.Route, e.List, ident, c.Bucket(e.Time), len(e.Records),
							func(i int) []byte { return bytesOf(e.Records[i].ID) },
							func(_ int, s canary.Slot, shown bool) {
								if shown {
									bm.Add(s.Canary)
								}
							})
					}
				}
			}
		})
	}
	next, batch := 0, make([]*ledger.Entry, 0, 256)
	led.Each(func(e *ledger.Entry) bool {
		if len(e.Records) == 0 || e.Status < 200 || e.Status > 299 || !c.Seeds(e.Route) {
			return true
		}
		if batch = append(batch, e); len(batch) == cap(batch) {
			queues[next] <- batch
			next = (next + 1) % t.workers
			batch = make([]*ledger.Entry, 0, 256)
		}
		return true
	})
	queues[next] <- batch
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	out := per[0]
	for _, p := range per[1:] {
		for ki := range out {
			out[ki].Or(p[ki])
		}
	}
	return out
}

// contactResult is what matching the kept contact values found.
type contactResult struct {
	found     []canaryKey
	unmatched int // canary-shaped values that are no served canary's (or not proven, for phones)
}

// matchContacts looks the kept contact values up among the canaries led
// says were served. eps bounds the chance that phone-only values drawn at
// random from the ranges pass as a served canaries'.
func (t *Tracer) matchContacts(led Entries, eps float64) contactResult {
	c := t.c
	served := t.servedCanaries(led)
	emails, phones := map[string][]canaryKey{}, map[string][]canaryKey{}
	for k := range t.contacts {
		if k.email != "" {
			emails[k.email] = nil
		} else {
			phones[k.phone] = nil
		}
	}
	// Make each served canary again (a profile each, on every core) and
	// keep those whose e-mail or phone the copy has.
	type hit struct {
		ck           canaryKey
		email, phone string // "" when the copy does not have it
	}
	workers := max(1, min(t.workers, runtime.GOMAXPROCS(0)))
	found := make([][]hit, workers)
	jobs := make(chan canaryKey, 1024)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() { // the maps are only read until wg.Wait
			for ck := range jobs {
				p := c.Canary(ck.key, ck.index)
				h := hit{ck: ck}
				if _, ok := emails[canary.NormEmail(p.Email)]; ok {
					h.email = canary.NormEmail(p.Email)
				}
				if _, ok := phones[p.Phone]; ok {
					h.phone = p.Phone
				}
				if h.email != "" || h.phone != "" {
					found[w] = append(found[w], h)
				}
			}
		})
	}
	var total uint64
	for ki, bm := range served {
		total += bm.GetCardinality()
		it := bm.Iterator()
		for it.HasNext() {
			jobs <- canaryKey{ki, it.Next()}
		}
	}
	close(jobs)
	wg.Wait()
	for _, hs := range found {
		for _, h := range hs {
			if h.email != "" {
				emails[h.email] = append(emails[h.email], h.ck)
			}
			if h.phone != "" {
				phones[h.phone] = append(phones[h.phone], h.ck)
			}
		}
	}

	var res contactResult
	var phoneOnly []canaryKey
	n, m := 0, 0 // phone-only values, and those some served canary has
	for k := range t.contacts {
		if k.email != "" {
			ok := false
			for _, ck := range emails[k.email] {
				if p := c.Canary(ck.key, ck.index); c.VerifyContact(&p, k.email, k.phone) {
					res.found = append(res.found, ck)
					ok = true
				}
			}
			if !ok {
				res.unmatched++
			}
			continue
		}
		n++
		cks := phones[k.phone]
		if len(cks) > 0 {
			m++
		}
		if len(cks) == 1 {
			phoneOnly = append(phoneOnly, cks[0])
		} else {
			res.unmatched++ // no served canary's, or several's: which one is not said
		}
	}
	// Phone-only values count only as a whole, when they are the served
	// canaries' numbers and not some numbers among others: a number drawn
	// at random from the ranges is a served canary's with chance at most f
	// (served canaries over the numbers), so the count of them that are
	// must be beyond chance at eps, and nearly all (nine in ten) must be,
	// since a take of canaries holds no other number of the ranges, while
	// a copy listing the ranges beside a take would otherwise pass on the
	// take's numbers and "find" every other served canary's.
	f := math.Min(1, float64(total)/float64(c.PhoneSpace()))
	if len(phoneOnly) > 0 && binomialTail(n, m, f) <= eps && (n-m)*10 <= n {
		res.found = append(res.found, phoneOnly...)
	} else {
		res.unmatched += len(phoneOnly)
	}
	return res
}

// binomialTail bounds P(Binomial(n, f) >= m) (Chernoff: exp(-n KL(m/n ||
// f))); 1 when m/n is not above f.
func binomialTail(n, m int, f float64) float64 {
	if n == 0 {
		return 1
	}
	a := float64(m) / float64(n)
	if a <= f {
		return 1
	}
	if f <= 0 {
		return 0
	}
	kl := a * math.Log(a/f)
	if a < 1 {
		kl += (1 - a) * math.Log((1-a)/(1-f))
	}
	return math.Exp(-float64(n) * kl)
}
