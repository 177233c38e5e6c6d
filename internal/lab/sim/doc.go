// Package sim drives simulated users and harvesters at the lab platform,
// directly or through a gateway, and scores the run: how much personal data
// each harvester took (checked against the platform's ground truth) and how
// much legitimate traffic was refused or masked.
//
// Every simulated client sends from its own real source address in
// 127.0.0.0/8 (the dialer binds it), so a gateway sees distinct TCP peers;
// sim never spoofs forwarding headers. Every run is bounded by a duration
// and by a request count per population; sim sends traffic to the target
// URL only, which must be on loopback.
//
// Scenarios (name: what it is; parameters as NAME.KEY=VALUE, defaults in
// brackets):
//
//   - users: a legitimate population with heavy-tailed activity. Each user
//     reads the feed, opens profiles of authors seen there, browses
//     follower lists, searches names seen, then comes back later.
//     users.count [2000] users on users.addrs [400] addresses, of which
//     users.nat [0.3] of the users sit behind users.nat-addrs [8] carrier NAT
//     addresses; users.heavy [0.01] of users are ten times as active;
//     users.signups [0.05] of users are new: each signs up (POST
//     /v1/accounts) from its address before its first session, again next
//     session if refused (harm), and browses as the account it got;
//     users.think [3s] is the mean pause between actions (sessions are
//     users.session-gap [20s] apart).
//   - partner: one approved app (X-App-Key partner.key [partner-app]) acting
//     for partner.accounts [500] connected accounts from partner.addrs [2]
//     server addresses at a steady partner.rate [150] requests/s: their
//     feeds, posts, follower lists and the profiles of those followers.
//     A gateway must register the same key for the app (examples/lab.yaml
//     reads it from LAB_PARTNER_KEY; warden demo makes one and gives it to
//     both).
//   - naive: one address, one account, GET /v1/users/1, 2, 3, ... at
//     naive.rate [100] requests/s over naive.workers [4] connections, as
//     naive.account [random].
//   - slow: one address, one account, ids in order from slow.start [1],
//     paced at slow.rate [8] requests/s, under a typical per-second limit.
//   - ip-rotation: ids in order, every request from the next of
//     ip-rotation.addrs [4096] addresses (spread over /24s, no keep-alive),
//     with ip-rotation.accounts [4] accounts, at ip-rotation.rate [250]
//     requests/s, ip-rotation.workers [16].
//   - account-rotation: signs up account-rotation.accounts [300] accounts
//     (POST /v1/accounts), then ids in order, every request with the next
//     account, from account-rotation.addrs [4] addresses, at
//     account-rotation.rate [250] requests/s.
//   - fleet: fleet.bots [200] bots, each its own address (over fleet.nets
//     [32] /24s) and its own account (fleet.accounts: signup [default] or
//     aged, tokens for real old accounts), rotated together. It walks
//     follower lists and search results and opens the profiles each answer
//     linked, all from the bot that fetched the list, so its look-ups look
//     like navigation. fleet.rate [250] requests/s, fleet.workers [16].
//
// Harvesters are paced (NAME.rate; 0 means as fast as the workers go) so
// that a run's load is the same whatever the target does: a harvester
// refused early does not free the machine for the others, and columns of
// a comparison differ only by the protection in front of the platform.
//
// Every scenario also takes NAME.workers where it has parallel workers.
//   - nat-users: real users like users (nat-users.count [50],
//     nat-users.heavy [0.02], nat-users.signups [0.05]), all behind the 5 shared addresses
//     127.23.0.1-5, which nat-harvester and search-harvester send from too
//     (harm group "shared address"; users are group "alone").
//   - searchers: searchers.count [30] people on addresses of their own who
//     search a two-letter prefix and open one or two hits, by id or by
//     username, and one session in three go back to the same result page
//     (asked again) for one more: at most three people opened from one
//     answer (group "searchers").
//   - nat-harvester: from the shared addresses, with
//     nat-harvester.accounts [4] aged accounts, opens random ids and
//     follower lists at nat-harvester.rate [200]/s, and sends every refused
//     request again at once, up to nat-harvester.retries [20] times.
//   - search-harvester: search-harvester.accounts [20] aged accounts
//     behind the shared addresses search two-letter prefixes and open
//     every hit by username, search-harvester.rate [100]/s.
//   - hijacked: hijacked.accounts [60] aged accounts, each on a /24 of its
//     own, open random ids, reading their feed now and then,
//     hijacked.rate [100]/s.
//   - cohort: cohort.accounts [40] accounts signed up from one /24 with one
//     client build walk follower lists and open whom they see,
//     cohort.rate [100]/s.
//
// Harvesters report the profiles they took in all and per account they
// used; legitimate populations their harm and their group.
//
// A mix is a comma-separated list; the demo's default is
// users,partner,nat-users,fleet,nat-harvester.
// "all" is every scenario at once.
//
// Scoring: a harvester's harvest is the number of distinct real profiles
// (ids 1..N) whose true email and phone both reached it, as a percentage
// of N; records that are not real profiles, or carry other values, never
// count. A legitimate population's harm is the share of its users (and of
// its requests) that got a refusal (403, 429, 503) or a masked field: email
// or phone null or missing on a real profile it opened, a non-null
// "_warden" member in that record, or a Warden-*Mask* response header
// (warden's Warden-Masked). Users are counted if they sent a request.
// Other failures (401, 5xx other than 503, network errors) are not harm
// but are reported as errors, with every status count, in the JSON.
//
// The JSON (Report.WriteJSON; lab-sim --json) has per population: name,
// kind (harvester or legitimate), requests, ok, refused, masked, not_found,
// errors, status (count per HTTP status), first_refusal_s and first_mask_s
// (null when none), first_error (why the first request without an answer
// failed; absent when none); a harvester also harvested, harvest_pct, and, when it
// used accounts, accounts and harvest_per_account; a legitimate population
// group, users, active_users, harmed_users, harmed_requests, harm_users_pct
// and harm_requests_pct. A score of zero is written as 0, never left out.
// The report's truth_mismatch counts full profiles of real ids served under
// another username than the truth gives them: the truth is another
// platform's, and no harvest can be scored; truth_missing counts look-ups
// of real ids the target does not hold (404, or an account signed up past
// its last profile: email and phone both empty): the target holds fewer
// profiles than the truth, and every percentage is of the wrong number
// (the table warns of both, as it does for a population whose every
// request failed; Report.Void).
package sim
