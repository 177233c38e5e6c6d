package admin

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/store/memory"
)

// FuzzBanRequests feeds arbitrary bodies and paths to the handler: every
// answer is a success or a 4xx, never a panic or a 5xx.
func FuzzBanRequests(f *testing.F) {
	f.Add(`{"facet":"net","value":"10.1.2.7/24","reason":"r","ttl":"1h"}`, "net/10.1.2.0%2F24")
	f.Add(`{"facet":"ip","value":"::ffff:1.2.3.4","reason":"r","ttl":3600}`, "ip/::ffff:1.2.3.4")
	f.Add(`{"facet":"account","value":"a//../b","reason":"r","until":"2026-11-24T00:00:00Z"}`, "account/a%2F%2F..%2Fb")
	f.Add(`{"ttl":1e308}`, "x/y")
	f.Add(`{"facet":"app","value":"k","reason":"r","ttl":"-9223372036854775808ns"}`, "app/k")
	st := memory.New(memory.Options{SweepEvery: -1})
	defer st.Close()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	s, err := New(Options{Token: testToken, Gatherer: prometheus.NewRegistry(), Bans: st,
		Limits: ipLimits{st: st, now: func() time.Time { return now }}, Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	h := s.Handler()
	f.Fuzz(func(t *testing.T, body, key string) {
		for _, r := range []*http.Request{
			httptest.NewRequest("POST", "/v1/bans", strings.NewReader(body)),
			httptest.NewRequest("DELETE", "/v1/bans/"+pathSafe(key), nil),
			httptest.NewRequest("GET", "/v1/facets/"+pathSafe(key), nil),
		} {
			r.Header.Set("Authorization", "Bearer "+testToken)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code >= 500 {
				t.Fatalf("%s %s: %d %s", r.Method, r.URL, w.Code, w.Body)
			}
		}
	})
}

// pathSafe keeps characters httptest.NewRequest accepts in a path.
func pathSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r == 0x7f || r == '?' || r == '#' || r == '%' {
			return '_'
		}
		return r
	}, s)
}
