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
// looked up in lower case, as the platform answers real ones. A canary's
// own lists read their page size as a real list's is read (Config.Page:
// the parameter, default and max the seeding reads too), and refuse a
// size the platform refuses with its 400 and body (the lab's words, with
// the configured parameter and max); a search for a canary's username
// refuses a bad size and any cursor, as the platform refuses them on a
// search it answers empty. Read otherwise (a fixed "limit" up to 50), a
// canary's list answered ?size=70 from an upstream paging by "size" up
// to 100 with 20 records where a real one's had 70: a tell.
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
// Pages. A canary goes only into the room a list page has below the size
// the caller asked (its limit parameter, else the platform's default:
// Config.Page, Room): a page the upstream filled gets none, a page with
// room (a list's last page, a list shorter than the limit) up to
// min(room, MaxPerPage). So no answer warden changes is longer than the
// size asked: a harvester that counts (limit=20, 21 back) could drop the
// extra record and learn which ids are canaries. The other ways were
// weighed and refused. Displacing a real record to make room and carrying
// it by warden's own cursor needs warden to rewrite the request's cursor
// on its way upstream (the fronts forward the request as it came) and
// gives every seeded route a cursor of warden's shape, longer when it
// carries; the carried record would then go out as an insertion, not a
// record, which no budget counts. Displacing it and asking the upstream
// again for a cursor to it costs a second round trip on those pages, and
// a canary before the last record kept cannot be placed: the record moves
// to the next page and, the code deciding by record, brings its canary
// again (a duplicate) or none. With room only, every real record comes in
// the page and order the platform gives it, with the platform's own
// cursors; nothing is carried, stored or fetched twice. What a harvester
// sees is what it saw before, less: a canary comes just before its anchor
// (so never last on a page), a walk is the list's length plus its
// canaries, and a page with canaries is longer than the list's remainder
// (as before, by the same count), never than the limit.
//
// What it costs, measured on the lab (3,000 profiles, every followers
// list and 234 two-letter searches walked, both rules replayed at density
// 0.015): at limit 50 a walk meets 64% of the followers canaries and 62%
// of the search ones it met when every page was seeded, at limit 20 40%
// and 25%. The default density went from 0.015 to 0.025 for it (with
// 0.02, of the three accounts of e2e TestTrace's fleet keeping only the
// records all of them got, one was accused, at a bound of 6e-7 against
// 1e-6; with 0.025 all three, at 8e-8, as when every page was seeded at
// 0.015). A caller
// that asks only pages that come back full (limit 1, or a limit that
// divides the list's length, which the owner's follower_count tells) is
// shown none; it pays a request per page, which the rate limits count,
// and its take is still in the ledger, which names it by coverage
// (warden trace's named). One that drops every page shorter than its
// limit escapes them too, at the cost of every list shorter than a page
// and the tail of the others.
//
// What it does not stop, and the previous way did not either: a caller
// that asks a page again at a smaller limit. Canaries depend on the room,
// so a page with room asked again at the number of items it came back
// with, less one, comes back without one of its canaries: the id that is
// gone is a canary (or, without any, the page loses its last real record
// to the next page, which says it had none). One request a canary. When
// every page was seeded, a canary always came just before its anchor at
// any limit, and asking limits around it (a binary search, about log2 of
// the page's length, 6 requests at 50) found the anchor, and the canary
// before it. Only a list whose canaries do not depend on the limit stops
// it: the real list with its canaries in place, paged by the limit asked,
// a record a canary pushed past a page's end coming first on the next.
// That needs cursors of warden's own on the seeded routes (the upstream's
// cannot point into a page), rewritten to the upstream's on the way in,
// which the fronts do not do (they forward the request as it came), and
// the pushed record served from warden's cursor, where no budget and no
// ledger entry would see it unless they were taught to.
//
// warden trace replays a page from the ledger, which keeps the records
// served and not the limit asked, as asked at Page.Max (Plan: room
// Page.Max - n), what a harvester asks (the fewest requests): exact for
// it. For a page asked smaller and served full, the replay counts slots
// as shown that were not inserted; that can only lower the symmetric
// score of the identity that fetched the page, never raise an innocent's
// (the symbols stay keyed hashes, independent of the copy), and leaves
// Tardos's score over the canaries the copy holds as it is. trace
// --served lists those slots' canaries too.
//
// A leaked record with only an e-mail or a phone cannot be turned back
// into its canary's index (both are drawn from the key): warden trace
// keeps the values that can be a canary's (EmailShaped, AppendShapedPhone:
// a number of a range written internationally or in the national form of
// the range's country, worked out from libphonenumber once, in New) and
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
