package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// The caller's own profile looked up by its username is its own data, as
// it is by its id: no unreferenced look-up, so it neither spends the
// unreferenced rule's budget nor counts in warden_unreferenced_lookups_total
// (which the enumeration detector's evidence mirrors). Before, only a
// look-up by id was recognised as the caller's own: a person opening its
// own profile through a username link three times was counted three
// unreferenced look-ups and, with the lab's limit of 1 a day, saw the
// first stranger it then opened by link masked.
func TestOwnProfileByUsernameIsNotUnreferenced(t *testing.T) {
	platformURL := startPlatform(t, 200)
	cfg := strings.Replace(provenanceConfig(""), "unreferenced: {facet: account}",
		"unreferenced: {facet: account, limit: 1, window: 24h, classes: [contact]}", 1)
	g := startGateway(t, cfg, platformURL)
	auth := map[string]string{"Authorization": "Bearer " + token(t, "40")}
	c := clientFrom("127.0.0.5")
	own := do(t, c, "GET", platformURL+"/v1/users/40", auth)
	var me struct{ Username string }
	if err := json.Unmarshal([]byte(own.body), &me); err != nil || me.Username == "" {
		t.Fatalf("own profile %d %q: %v", own.status, own.body, err)
	}
	for i := 0; i < 3; i++ {
		if a := do(t, c, "GET", g.url+"/v1/users/by-username/"+me.Username, auth); !contactServed(t, a) {
			t.Fatalf("own profile by username masked: %v %s", a.header, a.body)
		}
	}
	// The one unreferenced look-up of the day is still there.
	if a := do(t, c, "GET", g.url+"/v1/users/41", auth); !contactServed(t, a) {
		t.Fatalf("first stranger opened by id masked after the caller's own look-ups: %v %s", a.header, a.body)
	}
	m := adminDo(t, g, "GET", "/metrics", "").body
	if !strings.Contains(m, `warden_unreferenced_lookups_total{route="GET /v1/users/by-username/{username}"} 0`) {
		t.Errorf("own profile by username counted as unreferenced:\n%s", grepLines(m, "warden_unreferenced"))
	}
}
