// Package identify turns one request into an Identity: the facets of who is
// asking (app, account, ip, net, fingerprint) that every limit, budget and
// ban counts by.
//
// It is front-independent: the HTTP fronts (fasthttp, net/http) adapt their
// requests to Input and Header. It must never depend on an HTTP library's
// request type, never fail a request (a facet it cannot establish is left
// empty), never block a request on I/O (JWKS fetches run in the background),
// never trust a forwarding header from a peer outside trusted_proxies, and
// never log a token, a secret or an app key.
//
// # Facets
//
//   - app: with app.keys, the name of the registered app whose key the
//     request presents in app.header (default X-App-Key); any other key is no
//     app, and a registered app's scopes join the token's. Keys are held as
//     SHA-256 digests and looked up by the digest of the presented value.
//     Without app.keys the header's value itself (up to 256 bytes) is the
//     app, unverified: good for counting, and refused by the configuration
//     as a reason to exempt anyone.
//   - account: the subject claim of a JWT from account.header (default
//     Authorization with the Bearer scheme) verified against the configured
//     keys; see Accounts.
//   - ip: the TCP peer, or when the peer is a trusted proxy the client address
//     its forwarding headers report; see ClientIP for the walk and the rules
//     on malformed entries. Forwarded (RFC 7239) is read when it has any
//     element, else X-Forwarded-For; the two are never mixed.
//   - net: the ip's prefix of net.ipv4_prefix (default 24) or net.ipv6_prefix
//     (default 48) bits. IPv4-mapped IPv6 addresses are unmapped first, so
//     ::ffff:192.0.2.7 is 192.0.2.7 in 192.0.2.0/24.
//   - fingerprint: see Fingerprint.
//
// # Accounts
//
// Accepted algorithms are account.algorithms, at most HS256, RS256 and ES256;
// "none" is refused by Validate, and the key is chosen by the token's
// algorithm: the HS256 secret only verifies HS256, RSA keys only RS256, P-256
// keys only ES256, so an RSA public key can never be used as an HMAC secret.
// RS256/ES256 keys come from public_key_file, jwks_file and jwks_url; with a
// kid, only the JWK of that kid is tried (and its alg, when it names one, must
// match the token's). A jwks_url is fetched at start and every jwks_refresh;
// a token naming an unknown kid asks for an early refresh (at most one per
// 30s) but is not waited for: until the new keys land it is unverified
// (unknown_key), so the gateway refuses or strips it.
//
// exp, nbf and iat are checked with account.leeway, iss and aud when
// configured. A valid token without a string (or integral number) subject is
// no account. The created claim (unix seconds, or an RFC 3339 string) gives
// Identity.AccountCreated; the scopes claim (a space-separated string or an
// array of strings, at most 64) gives Identity.Scopes. A token without a
// readable created claim is the youngest account (AccountAge 0) unless
// account.missing_created is oldest. account.subject_pattern, when set, is
// a regular expression every subject must match whole (as if anchored:
// a pattern that only had to occur in it would pass "+77"), so that an upstream that
// reads "077" or "+77" as account 77 cannot be handed one account under
// several names.
//
// # Credentials warden cannot verify
//
// The header value is read as RFC 9110 defines it: optional white space
// around it is space and tab, nothing else; with Authorization the scheme
// is "Bearer" (any case) and one or more spaces, and the token is a token68
// (a JWT is one). Any other byte (U+00A0, U+0085, U+3000, a second token)
// makes the credential unverifiable, as do a bad signature, exp passed,
// nbf or iat in the future, a size over 8 KiB, an unknown kid, a subject
// that is missing, over 256 bytes or off subject_pattern. Such a request is
// no account, and Identity.Unverified says so, with Identity.UnverifiedWhy a
// fixed word for the reason (never the token). The same for an app key
// that is not registered when app.keys registers some. identify never
// decides what happens to such a request: the gateway refuses it (401,
// rule identity) or strips the credential before forwarding, by
// account.unverified and app.unregistered, and never forwards it as it
// came, since an upstream whose parser accepts what warden refused would
// serve an identity warden never counted or banned.
//
// Results are cached in bounded LRUs (account.cache_size verified tokens, a
// quarter as many refused ones, kept apart so a flood of bad tokens cannot
// evict good ones; 16 shards each) keyed by a seeded hash of the token and
// holding the token itself (a collision is a miss). A verified token is kept
// until exp+leeway but at most 5 minutes (so a key dropped from a JWKS stops
// working within that); a refused one 10 seconds; one refused for an unknown
// kid not at all.
//
// # Fingerprint
//
// Identity.Fingerprint is 16 lower-case hex digits: the first 8 bytes of
// SHA-256 over
//
//	TLS "|" NAMES "|" UA
//
// where TLS is Input.TLSFingerprint (HelloFingerprint of the connection, ""
// for cleartext), NAMES the request's header names in the order the front
// reports them (wire order for HTTP/1.1 on fasthttp), lower-cased, joined by
// ",", and UA the first User-Agent value. A part left out of
// fingerprint.parts (tls, header_order, user_agent) is hashed as "".
//
// HelloFingerprint is the same 8-byte SHA-256 prefix in hex over the JA3-like
// string
//
//	"v=" VERSIONS ";c=" CIPHERS ";e=" EXTENSIONS ";g=" GROUPS ";p=" POINTS ";s=" SIGALGS ";a=" ALPN
//
// each a "-"-separated list of decimal values in the client's order (ALPN
// protocol names ","-separated), with GREASE values (RFC 8701) removed and
// EXTENSIONS sorted, since browsers randomise extension order per connection.
//
// # Hot path
//
// Identify runs on every request and, once warm, allocates nothing: the
// forwarding walk and the fingerprint hash use pooled scratch state whose
// callbacks are bound once; app keys and fingerprints are shared copies from
// bounded direct-mapped tables (1024 and 4096 slots; a new value replaces the
// one in its slot); a token found in the cache costs a hash and a compare.
// testdata/bench-identify.txt holds the measured figures (BenchmarkIdentify).
package identify
