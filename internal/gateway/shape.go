package gateway

import (
	"strings"

	"github.com/warden-gw/warden/internal/inspect"
)

// On a route whose answers are inspected, warden asks the upstream for an
// answer it can read whole, whatever the client asked for. Otherwise the
// request's shape is a way around the route map:
//   - an upgrade (Connection: Upgrade) would be relayed as raw bytes, the
//     upstream's answer with it, uninspected;
//   - a range (Range, If-Range) gets a slice of the JSON, which does not
//     parse, and passes under inspect.on_malformed: pass;
//   - a coding warden cannot decode (br, zstd, "*") passes as it is;
//   - a media type other than JSON (text/csv, "*/*", on an API that
//     negotiates) passes as it is.
// So such a request is forwarded without its upgrade and range, its
// Accept-Encoding keeps only the codings warden decodes and its Accept only
// JSON.

// overrideHeaders ask some frameworks to handle a request as another
// method (POST as GET). Route maps, limits and bans match the request's own
// method, so these are dropped from every request: the upstream then acts
// on the method warden matched.
var overrideHeaders = [...]string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"}

// isOverrideName reports whether name (any case) is one of overrideHeaders.
func isOverrideName(name string) bool { return hasName(overrideHeaders[:], name) }

// shapeHeaders are the request headers that an inspected route rewrites.
var shapeHeaders = [...]string{"Range", "If-Range", "Accept-Encoding", "Accept", "Upgrade"}

// isShapeName reports whether name (any case) is one of shapeHeaders.
func isShapeName(name string) bool { return hasName(shapeHeaders[:], name) }

// dropOverrides removes overrideHeaders.
func dropOverrides(h forwardHeader) {
	for _, name := range overrideHeaders {
		h.del(name)
	}
}

// askReadable shapes the request of an inspected route: no range, and only
// codings and media types inspection reads, judged on every line the
// client sent. The upgrade is each front's to drop: the fast front never
// starts one, the std front drops its headers.
func askReadable(h forwardHeader) {
	h.del("Range")
	h.del("If-Range")
	if v, changed := decodableAccept(h.prior("Accept-Encoding")); changed {
		h.set("Accept-Encoding", v)
	}
	if a := h.prior("Accept"); a != "" {
		if v, changed := jsonAccept(a); changed {
			h.set("Accept", v)
		}
	}
}

// decodableAccept filters an Accept-Encoding value to the codings that
// inspection decodes (gzip, x-gzip, deflate, identity): "identity" when
// none is left.
func decodableAccept(v string) (string, bool) { return filterList(v, decodableCoding, "identity") }

// jsonAccept filters an Accept value to JSON media types
// (application/json, application/*+json): "application/json" when none is
// left, so that "*/*" or "text/csv" cannot ask for the records in a form
// inspection does not read.
func jsonAccept(v string) (string, bool) { return filterList(v, inspect.JSON, "application/json") }

// filterList keeps the elements of a comma-separated header value that keep
// accepts, in order and with their parameters. It returns v itself (and
// false) when nothing is dropped, and none when nothing is left.
func filterList(v string, keep func(el string) bool, none string) (string, bool) {
	all := true
	for rest := v; rest != "" && all; {
		var el string
		el, rest, _ = strings.Cut(rest, ",")
		el = strings.TrimSpace(el)
		all = el == "" || keep(el)
	}
	if all {
		return v, false
	}
	var b strings.Builder
	for rest := v; rest != ""; {
		var el string
		el, rest, _ = strings.Cut(rest, ",")
		if el = strings.TrimSpace(el); el == "" || !keep(el) {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString(el)
	}
	if b.Len() == 0 {
		return none, true
	}
	return b.String(), true
}

// decodableCoding reports whether one Accept-Encoding element ("gzip;q=0.8")
// names a coding inspection decodes.
func decodableCoding(el string) bool {
	c, _, _ := strings.Cut(el, ";")
	c = strings.TrimSpace(c)
	return strings.EqualFold(c, "gzip") || strings.EqualFold(c, "x-gzip") || strings.EqualFold(c, "deflate") || strings.EqualFold(c, "identity")
}
