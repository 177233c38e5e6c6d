// Package trace reads a leaked copy of personal data and names the
// identities it was taken by: canaries found and verified by the key,
// scored per identity with the symmetric Tardos score over the canary
// slots of the list answers the ledger says it was served, and the
// ledger's coverage of the copy's real subjects.
//
// Readers stream: CSV (with or without a header, any column order or
// names), a JSON array or object dump, NDJSON, MongoDB extended JSON,
// Elasticsearch bulk and elasticdump output, any of them gzip'd; tens of
// GB pass through a few buffers, line-delimited input on every core.
//
// It must never: accuse an identity whose false-accusation bound is above
// the stated probability; count a record as a canary that the key did not
// make; keep a copy's personal data beyond the run (only ids and counts
// leave a reader); write to the ledger.
package trace
