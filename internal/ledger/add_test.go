package ledger

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/warden-gw/warden/internal/inspect"
)

// Whatever path an Access takes into the log (Add with an Entry, Record
// with an Access; names and facets found in the front cache by the same
// string or by an equal copy, or missed; ids read ahead or, past
// prefetch's room, not; tables small or past prefetchSlots), it reads
// back as it was written.
func TestAddReadsBack(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: t0}
	l, err := Open(Options{Dir: dir, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	hx := func(s string) string {
		if s == "" {
			return ""
		}
		return fmt.Sprintf("#%016x", l.hash(s))
	}
	classes := []string{"contact", "profile"}
	var want []*Entry
	const n = 2500 // 20 records each: 50,000 ids, a table past prefetchSlots
	for i := range n {
		at := t0.Add(time.Duration(i) * time.Millisecond)
		acct := fmt.Sprint("acct", i%37)
		if i%3 == 0 {
			acct = strings.Clone(acct) // equal, not the same string
		}
		e := &Entry{Time: at, RequestID: fmt.Sprintf("%024x", i), Route: "GET /v1/users/{id}/followers",
			List: fmt.Sprint("u", i%500), Page: fmt.Sprint("cursor", i%3), Status: 200, MaskRules: []string{"contacts"}, Classes: classes}
		e.Identity = [NumFacets]string{"app" + fmt.Sprint(i%2), acct, fmt.Sprintf("10.0.%d.%d", i%7, i%251), fmt.Sprintf("10.0.%d.0/24", i%7), "fp"}
		if i%5 == 0 {
			e.Status, e.Rule, e.Facet, e.Identity[4] = 429, "per-ip", "ip", ""
		}
		for k := range 1 + i%20 { // up to 20 records: past prefetch's 16 ids
			id := fmt.Sprint("r", i*20+k)
			e.Records = append(e.Records, Record{ID: id, Classes: 0b11, Masked: uint64(k % 2)})
			e.Authors = append(e.Authors, fmt.Sprint("a", (i+k)%300))
			e.Links = append(e.Links, fmt.Sprint("a", k))
		}
		if i%2 == 0 {
			l.Add(e)
		} else {
			l.Record(accessOf(e))
		}
		w := *e
		w.Time = at.UTC()
		w.Page = hx(e.Page)
		w.Links = nil
		for _, s := range e.Links {
			w.Links = append(w.Links, hx(s))
		}
		want = append(want, &w)
	}
	// Each value has one integer: a look-up given another string's hash
	// would miss and add it again (it would still read back).
	distinct := make([]map[string]bool, nsCount)
	for ns := range distinct {
		distinct[ns] = map[string]bool{}
	}
	for _, e := range want {
		for f, v := range e.Identity {
			if v != "" {
				distinct[nsFacet+f][v] = true
			}
		}
		distinct[nsID][e.List] = true
		for _, r := range e.Records {
			distinct[nsID][r.ID] = true
		}
		for _, a := range e.Authors {
			distinct[nsID][a] = true
		}
	}
	for ns := range nsName {
		if got := l.dict[ns].len(); got != len(distinct[ns]) {
			t.Errorf("namespace %d holds %d names, want %d", ns, got, len(distinct[ns]))
		}
	}
	if len(l.dict[nsID].slots) < prefetchSlots {
		t.Fatalf("the ids' table has %d slots: prefetch never read ahead", len(l.dict[nsID].slots))
	}
	l.Sync()
	r := reader(t, dir, Window{})
	defer r.Close()
	i := 0
	r.Each(func(got *Entry) bool {
		if i < len(want) && !reflect.DeepEqual(got, want[i]) {
			t.Fatalf("Access %d reads back as\n%+v\nwant\n%+v", i, got, want[i])
		}
		i++
		return true
	})
	if i != n {
		t.Fatalf("%d Accesses read back, want %d", i, n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// Request ids are packed only when they are 24 lower-case hex digits;
// anything else is kept as it came.
func TestRequestIDForms(t *testing.T) {
	for _, c := range []struct {
		id     string
		packed bool
	}{
		{"0123456789abcdef01234567", true},
		{"ffffffffffffffffffffffff", true},
		{"0123456789ABCDEF01234567", false},
		{"0123456789abcdeg01234567", false},
		{"0123456789abcdef0123456", false},
		{"0123456789abcdef012345670", false},
		{"", false},
		{strings.Repeat("x", 300), false},
	} {
		b := appendReqID(nil, c.id)
		if packed := b[0] == 1; packed != c.packed || packed && len(b) != 13 {
			t.Errorf("%q: encoded %x, packed %v, want %v", c.id, b, packed, c.packed)
		}
		e := entry{reqID: c.id}
		var sizes [nsCount]int
		var got entry
		if err := decodeEntry(appendEntry(nil, &e, 0), 0, &sizes, &got, nil); err != nil {
			t.Fatalf("%q: %v", c.id, err)
		}
		if want := c.id[:min(len(c.id), 255)]; got.reqID != want {
			t.Errorf("%q reads back as %q", c.id, got.reqID)
		}
	}
}

// The ledger is transient (gateway.Transient): once Record returns, the
// gateway may write another request's Access over this one's memory.
// Here every string of each Access but its Identity's values lies in one
// buffer, overwritten after each Record, the same place holding another
// route, other classes and ids each time; what reads back is what each
// Access held when it was recorded.
func TestRecordKeepsNothing(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: t0}
	l, err := Open(Options{Dir: dir, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	if !l.Transient() {
		t.Fatal("the ledger is not transient")
	}
	buf := make([]byte, 512)
	pos := 0
	at := func(s string) string { // s, in buf's memory
		n := copy(buf[pos:], s)
		v := unsafe.String(&buf[pos], n)
		pos += n
		return v
	}
	var want []string
	for i := range 200 {
		route, class, id := fmt.Sprint("GET /v1/", "ab"[i%2:i%2+1]), fmt.Sprint("class", i%3), fmt.Sprint("id", i%10)
		pos = 0
		acc := &inspect.Access{Time: t0.Add(time.Duration(i) * time.Millisecond), RequestID: fmt.Sprintf("%024x", i),
			Route: at(route), Classes: []string{at(class)}, MaskRules: []string{at("rule" + class)}, List: at("l" + id),
			Lookup: at(id), Status: 200, Records: []inspect.Record{{ID: at(id), Classes: 1}}, Authors: []string{at("a" + id)}}
		acc.Identity.Account = fmt.Sprint("acct", i%4)
		l.Record(acc)
		for j := range buf {
			buf[j] = 'z'
		}
		want = append(want, fmt.Sprint(route, class, "rule"+class, "l"+id, id, "a"+id, acc.Identity.Account))
	}
	l.Sync()
	r := reader(t, dir, Window{})
	defer r.Close()
	i := 0
	r.Each(func(e *Entry) bool {
		if got := fmt.Sprint(e.Route, e.Classes[0], e.MaskRules[0], e.List, e.Records[0].ID, e.Authors[0], e.Identity[1]); got != want[i] {
			t.Fatalf("Access %d reads back as %s, want %s", i, got, want[i])
		}
		i++
		return true
	})
	if i != len(want) {
		t.Fatalf("%d Accesses read back, want %d", i, len(want))
	}
	l.Close()
}

// accessOf is e as the gateway hands it over: an inspect.Access, its
// Identity's values and records of their own types.
func accessOf(e *Entry) *inspect.Access {
	acc := &inspect.Access{Time: e.Time, RequestID: e.RequestID, Route: e.Route, List: e.List, Page: e.Page,
		Status: e.Status, Rule: e.Rule, Facet: e.Facet, MaskRules: e.MaskRules, Classes: e.Classes,
		Authors: e.Authors, Links: e.Links}
	acc.Identity.App, acc.Identity.Account, acc.Identity.Fingerprint = e.Identity[0], e.Identity[1], e.Identity[4]
	acc.Identity.IP = netip.MustParseAddr(e.Identity[2])
	acc.Identity.Net = netip.MustParsePrefix(e.Identity[3])
	for _, r := range e.Records {
		acc.Records = append(acc.Records, inspect.Record{ID: r.ID, Classes: inspect.ClassSet(r.Classes), Masked: inspect.ClassSet(r.Masked)})
	}
	return acc
}
