package dashboard_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/ledger"
)

// The per-person report as JSON, through real HTTP: in a session with
// ?format=json or Accept: application/json, and on the admin API's GET
// /v1/person with the bearer token (a platform's backend, with no
// session); the field names are README's. Without a session the JSON form
// is a 401 in JSON, not the sign-in page; without a subject a 400. Before,
// /person answered HTML only.
func TestPersonReportJSON(t *testing.T) {
	dir := t.TempDir()
	l, err := ledger.Open(ledger.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	for _, who := range []struct{ account, app, net string }{
		{"a1", "app-x", "10.0.0.0/24"}, {"a2", "", "10.0.1.0/24"}, {"", "", "10.0.2.0/24"},
	} {
		e := &ledger.Entry{Time: at, Route: "GET /v1/users/{id}", Status: 200, Classes: []string{"contact", "profile"},
			Records: []ledger.Record{{ID: "77", Classes: 0b11}}}
		e.Identity[identify.FacetAccount-1] = who.account
		e.Identity[identify.FacetApp-1] = who.app
		e.Identity[identify.FacetNet-1] = who.net
		l.Add(e)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	e := newEnvLedger(t, dir, false, nil, benchLedger{dir, nil})

	type report struct {
		Subject string `json:"subject"`
		Class   string `json:"class"`
		Kinds   []struct {
			Kind         string     `json:"kind"`
			Identities   int        `json:"identities"`
			Unidentified bool       `json:"unidentified"`
			First        *time.Time `json:"first"`
			Last         *time.Time `json:"last"`
			Days         []struct {
				Day        string `json:"day"`
				Identities int    `json:"identities"`
			} `json:"days"`
		} `json:"kinds"`
	}
	want := map[string]struct {
		n    int
		anon bool
	}{"accounts": {2, true}, "apps": {1, true}, "networks": {3, false}}
	get := func(c *http.Client, path string, h map[string]string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
		for k, v := range h {
			req.Header.Set(k, v)
		}
		r, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return r.StatusCode, r.Header.Get("Content-Type"), body(t, r)
	}
	check := func(how string, code int, ctype, b string) {
		t.Helper()
		var rep report
		if err := json.Unmarshal([]byte(b), &rep); err != nil || code != 200 || ctype != "application/json" || rep.Subject != "77" || rep.Class != "contact" || len(rep.Kinds) != 3 {
			t.Fatalf("%s: %d %s %v\n%s", how, code, ctype, err, b)
		}
		for _, k := range rep.Kinds {
			w := want[k.Kind]
			if k.Identities != w.n || k.Unidentified != w.anon || k.First == nil || !k.First.Equal(at) || k.Last == nil || !k.Last.Equal(at) ||
				len(k.Days) != 1 || k.Days[0].Day != at.Format(time.DateOnly) || k.Days[0].Identities != w.n {
				t.Errorf("%s: %s %+v, want %d identities (unidentified %v), first and last %v, one day", how, k.Kind, k, w.n, w.anon, at)
			}
		}
		if strings.Contains(b, "a1") || strings.Contains(b, "app-x") || strings.Contains(b, "10.0.") {
			t.Errorf("%s: the report names an identity:\n%s", how, b)
		}
	}

	c := e.client(t)
	if code, ctype, b := get(c, "/person?subject=77&format=json", nil); code != 401 || ctype != "application/json" || !strings.Contains(b, `"error"`) {
		t.Errorf("JSON without a session: %d %s %q, want 401 in JSON", code, ctype, b)
	}
	e.signIn(t, c)
	code, ctype, b := get(c, "/person?subject=77&format=json", nil)
	check("?format=json", code, ctype, b)
	code, ctype, b = get(c, "/person?subject=77", map[string]string{"Accept": "application/json"})
	check("Accept: application/json", code, ctype, b)
	if code, _, b := get(c, "/person?subject=77", nil); code != 200 || !strings.Contains(b, `id="person-report"`) {
		t.Errorf("the page: %d, want the HTML report", code)
	}
	if code, _, b := get(c, "/person?format=json", nil); code != 400 || !strings.Contains(b, `"error":"subject is required`) {
		t.Errorf("no subject: %d %q, want 400 in JSON", code, b)
	}

	// The admin API: the bearer token, no session.
	api := e.srv.Client()
	bearer := map[string]string{"Authorization": "Bearer " + testToken}
	code, ctype, b = get(api, "/v1/person?subject=77", bearer)
	check("GET /v1/person", code, ctype, b)
	if code, _, _ := get(api, "/v1/person?subject=77", nil); code != 401 {
		t.Errorf("/v1/person without the token: %d, want 401", code)
	}
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/person?subject=77", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	r, err := api.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body(t, r)
	if r.StatusCode != 405 || r.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /v1/person: %d, Allow %q, want 405 and GET, HEAD", r.StatusCode, r.Header.Get("Allow"))
	}
}
