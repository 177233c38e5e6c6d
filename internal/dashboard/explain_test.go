package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-gw/warden/internal/admin"
	"github.com/warden-gw/warden/internal/explain"
)

// explainAnswers answers the admin API's explain from fixed explanations
// by request id.
type explainAnswers map[string]any

func (a explainAnswers) Query(_ context.Context, name string, v url.Values) (any, error) {
	x, ok := a[v.Get("id")]
	if name != "explain" || !ok {
		return nil, fmt.Errorf("%w: no request %s in the ledger", admin.ErrNotFound, v.Get("id"))
	}
	return x, nil
}

// TestExplainPage: the explain page of a served, a masked and a refused
// request, an upstream's 404 and an upstream down, and of an id the ledger does not hold, is the golden file's to
// the byte (UPDATE_GOLDEN=1 rewrites them).
func TestExplainPage(t *testing.T) {
	// The explanations are warden explain --json's: cmd/warden's golden
	// files themselves, not copies (copies here had drifted from what the
	// command prints), read strictly into the type the command and the
	// page share.
	answers := explainAnswers{}
	for _, id := range []string{"req-lookup", "req-masked", "req-refused", "req-refused.noconfig", "req-upstream-404", "req-upstream-down", "req-rate-limited", "req-banned", "req-banned.noconfig"} {
		f, err := os.Open(filepath.Join("..", "..", "cmd", "warden", "testdata", "explain", id+".json"))
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(f)
		dec.DisallowUnknownFields()
		x := &explain.Explanation{}
		if err := dec.Decode(x); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		f.Close()
		answers[id] = x
	}
	e := newEnvLedger(t, t.TempDir(), false, nil, answers)
	c := e.client(t)
	e.signIn(t, c)
	for _, tt := range []struct {
		id   string
		code int
	}{{"req-lookup", http.StatusOK}, {"req-masked", http.StatusOK}, {"req-refused", http.StatusOK}, {"req-refused.noconfig", http.StatusOK},
		{"req-upstream-404", http.StatusOK}, {"req-upstream-down", http.StatusOK}, {"req-rate-limited", http.StatusOK}, {"req-banned", http.StatusOK}, {"req-banned.noconfig", http.StatusOK}, {"nope", http.StatusNotFound}} {
		t.Run(tt.id, func(t *testing.T) {
			r, err := c.Get(e.srv.URL + "/explain?id=" + tt.id)
			if err != nil {
				t.Fatal(err)
			}
			page := body(t, r)
			if r.StatusCode != tt.code {
				t.Fatalf("status %d, want %d:\n%s", r.StatusCode, tt.code, page)
			}
			// The page's own part: the layout is every page's.
			got := page[strings.Index(page, "<main>"):strings.Index(page, "</main>")]
			golden := filepath.Join("testdata", "explain", tt.id+".html")
			if os.Getenv("UPDATE_GOLDEN") != "" {
				os.WriteFile(golden, []byte(got), 0o644)
			}
			if want, err := os.ReadFile(golden); err != nil || got != string(want) {
				t.Errorf("page:\n%s\nwant (%s, %v):\n%s", got, golden, err, want)
			}
		})
	}
}

// TestPageErrorsSayWhatWasWrong: a page's error starts with what was wrong,
// as the command line's does, without the admin API's category ("bad
// request: ", "not found: ") or its "invalid JSON body: " (the user filled
// in a form; the dashboard wrote the JSON).
func TestPageErrorsSayWhatWasWrong(t *testing.T) {
	e := newEnvLedger(t, t.TempDir(), false, nil, explainAnswers{})
	c := e.client(t)
	csrf := e.signIn(t, c)
	for _, tt := range []struct {
		method, path string
		form         url.Values
		code         int
		want         string
	}{
		{"GET", "/explain?id=nope", nil, http.StatusNotFound, "no request nope in the ledger"},
		{"POST", "/bans/add", url.Values{"facet": {"ip"}, "value": {"192.0.2.1"}, "reason": {"r"}, "ttl": {"forever"}}, http.StatusBadRequest,
			`ttl &#34;forever&#34;: want a duration like &#34;24h&#34; or a number of seconds`},
		{"POST", "/bans/add", url.Values{"facet": {"asn"}, "value": {"1"}, "reason": {"r"}, "ttl": {"1h"}}, http.StatusBadRequest, `unknown facet &#34;asn&#34;`},
	} {
		var r *http.Response
		var err error
		if tt.method == "GET" {
			r, err = c.Get(e.srv.URL + tt.path)
		} else {
			tt.form.Set("csrf", csrf)
			r, err = c.PostForm(e.srv.URL+tt.path, tt.form)
		}
		if err != nil {
			t.Fatal(err)
		}
		page := body(t, r)
		if want := `role="alert">` + tt.want; r.StatusCode != tt.code || !strings.Contains(page, want) {
			i := strings.Index(page, `role="alert">`)
			t.Errorf("%s %s: %d, alert %.120q; want %d, %q", tt.method, tt.path, r.StatusCode, page[max(i, 0):], tt.code, want)
		}
	}
}
