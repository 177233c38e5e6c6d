// Package canary makes synthetic profiles from a secret key and decides
// which of them each identity is shown in list answers.
//
// A canary is a pure function of a key and an index: its id (in a range
// the upstream never issues), username, name, bio, city, counts, e-mail
// and phone. Nothing is stored to recognise one: Verify recomputes it.
// Every route about a canary (profile, by-username, followers, following,
// posts, one post) is answered from the key, the same for every identity,
// so a look-up from a second account gives nothing away; a request without
// an account is left to the upstream (Config.Anonymous), and a username is
// looked up in lower case, as the platform answers real ones.
// An answer on an inspected route is then rationed by the gateway as an
// upstream's would be (gateway/local.go, counting nothing through
// ration.Uncounted): a canary profile is masked, or refused, exactly when
// a real one would be, so an account past its budget cannot sort canaries
// out of its take by what comes back unmasked. For that the canaries
// inserted into a list answer are linked in the identity's link memory as
// the answer's real ids are (gateway's linkCanaries, a second Link call
// only on answers that carry canaries), and so are the ids a canary's own
// list shows (its followers: canaries), as a real profile's list's are: a
// canary the identity was shown is looked up with the list's provenance,
// one never shown to it (another account's take) is unreferenced, masked
// past the unreferenced rule's budget as a real record never shown is.
//
// Which canaries an identity sees follows a keyed Tardos code: a list
// record is an anchor when a keyed hash says so (the same for everyone);
// an anchor's slot carries one canary, shown to an identity when a keyed
// hash of (identity, slot, time bucket) falls under the slot's bias, drawn
// from the arcsine distribution. Plan replays the decision from a ledger
// entry, which is what warden trace scores against. Search answers are
// lists too: their list is the query normalised, sealed under the key (the
// ledger keeps no query in clear), and a slot's canary is one whose
// username or lower-case full name starts with the query, as the
// platform's search matches (search.go).
//
// A leaked record with only an e-mail or a phone cannot be turned back
// into its canary's index (both are drawn from the key): warden trace
// keeps the values that can be a canary's (EmailShaped, PhoneShaped) and
// looks them up among the canaries a ledger says were served, each made
// again from its index, under Verify's rule (VerifyContact; contact.go).
//
// It must never: store or log a key; derive a canary from anything but the
// key and its index (no clock, no request data in a profile); give a canary
// an id, username, e-mail or phone a real profile can have; let a canary
// count against a budget or as a real subject (it never enters a Result's
// records, only its insertions; budgets are read for it, never spent);
// decide inclusion from anything an identity controls besides the list it
// asks for. One exception, decided so: a canary opened from an answer
// counts one open in the fan-out cap's state as a real record's does
// (that state is per answer, not a distinct-subject budget, and a canary
// that never counted there would come back unmasked past the cap where
// real profiles are masked); its link in the link memory is likewise kept
// as a real shown id's.
package canary
