// Package inspect reads upstream answers for warden: a route map (Config)
// says, per route in net/http.ServeMux syntax, where records sit in the JSON
// answer ("$", "$.users[*]", "$.posts[*].author"), each record's id and
// author fields, which fields carry which data class (contact: [email,
// phone]), which ids the answer links to, and which path parameters are a
// direct look-up or say whose list it is.
//
// One pass of a validating, allocation-free JSON scanner over the decoded
// body (Result.Inspect) finds the records, the classes each carries (a
// class is present when one of its fields is not null, "", [] or {}), the
// authors and the links, and remembers the byte span of every class field,
// so masking (Result.Mask, then Result.Rewrite) splices the body without a
// second parse. Paths match member names as JSON decodes them, as any
// client of the platform reads them: a name written with escapes
// ("em\u0061il", "\u0069d") is the name it spells (email, id) and is
// classed, masked, counted and read for ids and links as the plain name
// is. Such a name (one with a backslash) is decoded into the Result's
// scratch memory (\u escapes of lone surrogates become U+FFFD, as in
// encoding/json); names without one are compared in place, at no cost. An
// invalid escape in a name is malformed JSON. Masking nulls the value and
// leaves the name as sent. String values read as ids, authors and links
// are the strings they spell too (an id "\u0035" is 5, recorded, linked
// and compared as "5" is): one with an escape is decoded as names are,
// one without is copied as it is; a number id is its text. Values inserted
// before records (Result.Insert: canaries) are no records of the Result;
// Result.InsertedLinks reads the route's links in them, each as a record
// of its neighbour's path, for the caller to link them.
//
// Masking format. A masked field's value becomes null; the rest of the
// record, and of the answer, is unchanged byte for byte. The record gains a
// first member
//
//	"_warden":{"masked":["email","phone"],"rules":["contact-account-day"],"request_id":"9f2c..."}
//
// naming the fields nulled, the rules that nulled them and the request id.
// A record that is not a JSON object gets no note. The output is valid
// JSON whenever the input was (FuzzInspect checks this).
//
// Bodies: only JSON (application/json, application/*+json) is inspected;
// gzip and deflate (zlib, or raw deflate) are decoded and a rewritten
// answer re-encoded the same way (Map.Decode, Map.Encode); Decode fails
// on other encodings (ErrEncoding), which the gateway never asks the
// upstream for on an inspected route, so ration treats such an answer as
// malformed. Decoding stops at Config.MaxBody (ErrOversize).
//
// What it must never do: change an answer no rule touched (Rewrite returns
// nil and the caller sends the upstream's bytes), keep a body past Reset, or
// copy a personal data value into an Access: an Access holds ids and class
// names only. It must never panic on any input: nesting is bounded
// (maxDepth) and malformed JSON is an error wrapping ErrMalformed.
package inspect
