package gateway

import "strings"

// hopHeaders are meaningful only for one connection (RFC 9110 7.6.1) and are
// never forwarded; nor is any header that Connection names.
var hopHeaders = [...]string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// connectionTokens calls fn with each header name listed in a Connection
// field value.
func connectionTokens(v string, fn func(name string)) {
	for v != "" {
		var tok string
		tok, v, _ = strings.Cut(v, ",")
		if tok = strings.TrimSpace(tok); tok != "" {
			fn(tok)
		}
	}
}

// isUpgrade reports whether a Connection value asks to upgrade.
func isUpgrade(connection string) bool {
	up := false
	connectionTokens(connection, func(t string) {
		if strings.EqualFold(t, "upgrade") {
			up = true
		}
	})
	return up
}

// forwardedFor renders one RFC 7239 node for an address: IPv6 quoted in
// brackets.
func forwardedNode(ip string) string {
	if strings.Contains(ip, ":") {
		return `"[` + ip + `]"`
	}
	return ip
}
