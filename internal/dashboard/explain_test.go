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
	// The explanations are warden explain --json's (cmd/warden's golden
	// files), read strictly into the type the command and the page share.
	answers := explainAnswers{}
	for _, id := range []string{"req-lookup", "req-masked", "req-refused", "req-refused.noconfig", "req-upstream-404", "req-upstream-down", "req-rate-limited"} {
		f, err := os.Open(filepath.Join("testdata", "explain", id+".json"))
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
		{"req-upstream-404", http.StatusOK}, {"req-upstream-down", http.StatusOK}, {"req-rate-limited", http.StatusOK}, {"nope", http.StatusNotFound}} {
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
