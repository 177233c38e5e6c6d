// Package refusal is the one answer warden sends in place of the
// upstream's: a ban, a rate limit, a budget that blocks, a credential that
// cannot be verified, a failed store, an upstream that is down, a request
// warden cannot read. Every such answer has the same JSON body,
//
//	{"error":"...","rule":"...","facet":"...","request_id":"..."}
//
// so a client, a log and the ledger name the same rule and facet, and the
// request id leads an operator to the decision.
//
// It also holds the JSON string encoder every body warden writes uses
// (AppendString): valid JSON for any input, invalid UTF-8 replaced.
//
// It must never render a credential, a secret or a personal data value:
// callers put fixed words and ids in a Refusal, never what a client sent.
package refusal
