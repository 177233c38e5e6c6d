package ledger

import (
	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
)

// Record appends acc: the Ledger is a gateway.Recorder. It runs on the
// recording's goroutine, never on the request path.
func (l *Ledger) Record(acc *inspect.Access) {
	e := Entry{Time: acc.Time, RequestID: acc.RequestID, Route: acc.Route, List: acc.List, Page: acc.Page,
		Lookup: acc.Lookup, Unreferenced: acc.Unreferenced, Status: acc.Status, Rule: acc.Rule, Facet: acc.Facet,
		MaskRules: acc.MaskRules, Classes: acc.Classes, Authors: acc.Authors, Links: acc.Links}
	for _, f := range identify.Facets {
		e.Identity[f-1] = acc.Identity.Value(f)
	}
	if n := len(acc.Records); n > 0 {
		e.Records = make([]Record, n)
		for i, r := range acc.Records {
			e.Records[i] = Record{ID: r.ID, Classes: uint64(r.Classes), Masked: uint64(r.Masked)}
		}
	}
	l.Add(&e)
}
