// Package platform is the lab platform: a synthetic photo-sharing network
// with the API of the lab platform contract (shared/lab-platform.md),
// which warden is built, tested and measured against. `warden
// lab-platform` serves it and `warden lab-platform truth` prints its
// ground truth.
//
// Everything is a pure function of the seed and the id (the follow graph
// also of N, the profile count):
//
//   - Profile id (1..N): names, bio, city, category, is_business (15%),
//     email, phone and post count are hashes of (seed, id, field) looked up
//     in fixed word lists; nothing per profile is stored. Usernames, emails
//     and phones embed a keyed bijection of the id on 24 bits (perm24), so
//     they are unique by construction; phones come from 32 number blocks
//     each checked valid with libphonenumber.
//   - Follow graph: profile u follows outDegree(u) profiles (0 to 2,000,
//     most a few dozen) drawn by a Pareto popularity weight, so followers
//     are heavy-tailed. It is stored as two CSR int32 arrays (following and
//     followers), the only large allocation: about 8 bytes per edge.
//   - Posts: profile a has 0..50 posts k = 0 (newest) .. count-1 with id
//     a*100+k and strictly decreasing times counted back from a fixed epoch.
//   - Search: ids sorted by username and by lower-case full name.
//   - Sign-ups (POST /v1/accounts) are accounts N+1, N+2, ... with the
//     derived names, no email, phone or posts, following 10 profiles drawn
//     by follower count. They are the only mutable state, bounded by
//     MaxSignups, and are not in search results.
//
// JSON is written by appending into pooled buffers; no answer is
// precomputed. Errors are JSON: 401 {"error": "unauthorized"}, 404
// {"error":"not found"}, 400 for a limit outside 1..50, a bad cursor or a
// query shorter than 2 characters, 405 for a wrong method.
//
// It must never rate-limit or refuse a caller for volume (protecting it is
// the gateway's job), never depend on the clock or the machine for its
// data, and never send traffic anywhere: it only answers.
package platform
