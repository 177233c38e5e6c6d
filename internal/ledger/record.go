package ledger

import (
	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
)

// Record appends acc: the Ledger is a gateway.Recorder. It runs on the
// recording's goroutine, never on the request path, and encodes acc as
// Add encodes an Entry, with acc's records read where they lie (an
// Entry's would be a slice allocated per Access).
func (l *Ledger) Record(acc *inspect.Access) {
	var in Entry
	entryOf(&in, acc)
	l.add(&in, acc.Records)
}

// entryOf sets in to acc's fields, all but its records (read where acc
// holds them).
func entryOf(in *Entry, acc *inspect.Access) {
	*in = Entry{Time: acc.Time, RequestID: acc.RequestID, Route: acc.Route, List: acc.List, Page: acc.Page,
		Lookup: acc.Lookup, Unreferenced: acc.Unreferenced, Status: acc.Status, Rule: acc.Rule, Facet: acc.Facet,
		MaskRules: acc.MaskRules, Classes: acc.Classes, Authors: acc.Authors, Links: acc.Links, AgeRank: acc.AgeRank}
	for _, f := range identify.Facets {
		in.Identity[f-1] = acc.Identity.Value(f)
	}
}

// Transient reports true: Record keeps nothing of an Access but its
// Identity's values (the front cache's; names it copies), so the gateway
// may reuse an Access's memory once the ledger has recorded it
// (gateway.Transient).
func (l *Ledger) Transient() bool { return true }
