package inspect

import (
	"fmt"
	"net/url"
	"strings"
)

// maxQueryPairs is how many pairs net/url reads in one query at most (its
// default GODEBUG urlmaxqueryparams): past it, ParseQuery reads none.
const maxQueryPairs = 10000

// QueryValue is the value of key in rawQuery as the platform reads it:
// net/url's ParseQuery, then Values.Get, so the first value of the first
// pair whose key is key once unescaped ("" for none). As ParseQuery, it
// skips a pair holding a ';' and one whose key or value does not unescape,
// and reads nothing of a query of more than maxQueryPairs pairs. Warden
// forwards the query unchanged, so whatever reads it for the upstream's
// sake (the cursor the ledger records, the page size canaries are seeded
// into) must read the same value the upstream will; and it does so
// without ParseQuery's map, on the request path.
func QueryValue(rawQuery, key string) string {
	if rawQuery == "" || strings.Count(rawQuery, "&") >= maxQueryPairs {
		return ""
	}
	for q := rawQuery; q != ""; {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		if kv == "" || strings.IndexByte(kv, ';') >= 0 {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if !queryKeyIs(k, key) {
			continue
		}
		if strings.IndexByte(v, '%') < 0 && strings.IndexByte(v, '+') < 0 {
			return v
		}
		if u, err := url.QueryUnescape(v); err == nil {
			return u
		}
	}
	return ""
}

// queryKeyIs reports whether the raw key k unescapes to key (false when it
// does not unescape).
func queryKeyIs(k, key string) bool {
	if strings.IndexByte(k, '%') < 0 && strings.IndexByte(k, '+') < 0 {
		return k == key
	}
	u, err := url.QueryUnescape(k)
	return err == nil && u == key
}

// CheckQueryName reports why name cannot name a query parameter as
// QueryValue reads it: nil when it can. A name holding a separator never
// stands alone as a key, and one that unescapes to another never matches
// (keys are compared unescaped, as the platform reads them): a parameter
// named so in a config would be read as absent on every request.
func CheckQueryName(name string) error {
	if name == "" || strings.ContainsAny(name, "&=#?; \t") {
		return fmt.Errorf("%q is not a query parameter name", name)
	}
	if u, err := url.QueryUnescape(name); err != nil || u != name {
		return fmt.Errorf("%q is escaped: name the parameter as the platform reads it, unescaped (%s)", name, u)
	}
	return nil
}
