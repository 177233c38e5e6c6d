package ledger

import (
	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
)

// Record appends acc: the Ledger is a gateway.Recorder. It runs on the
// recording's goroutine, never on the request path, and encodes acc as
// Add encodes an Entry without making one: its records are read where
// they lie (an Entry's would be a slice allocated per Access).
func (l *Ledger) Record(acc *inspect.Access) {
	in := Entry{Route: acc.Route, List: acc.List, Page: acc.Page, Lookup: acc.Lookup, Unreferenced: acc.Unreferenced,
		Status: acc.Status, Rule: acc.Rule, Facet: acc.Facet, MaskRules: acc.MaskRules, Classes: acc.Classes,
		Authors: acc.Authors, Links: acc.Links}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.begin(acc.Time, acc.RequestID)
	if e == nil {
		return
	}
	for _, f := range identify.Facets {
		if v := acc.Identity.Value(f); v != "" {
			e.facets[f-1] = l.lookup(nsFacet+int(f)-1, v) + 1
		}
	}
	l.fill(e, &in)
	for _, r := range acc.Records {
		e.recs = append(e.recs, rec{id: l.intern(nsID, r.ID), classes: uint64(r.Classes), masked: uint64(r.Masked)})
	}
	l.end(e)
}
