package dashboard_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/warden-gw/warden/internal/admin"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// explainAnswers answers the admin API's explain from fixed answers by
// request id.
type explainAnswers map[string]any

func (a explainAnswers) Query(_ context.Context, name string, v url.Values) (any, error) {
	x, ok := a[v.Get("id")]
	if name != "explain" || !ok {
		return nil, fmt.Errorf("%w: no request %s in the ledger", admin.ErrNotFound, v.Get("id"))
	}
	return x, nil
}

// TestExplainPage: the explain page of a served, a masked and a refused
// request, and of an id the ledger does not hold, is the golden file's to
// the byte (the session's CSRF token left out).
func TestExplainPage(t *testing.T) {
	answers := explainAnswers{}
	for _, id := range []string{"req-lookup", "req-masked", "req-refused", "req-refused.noconfig"} {
		b, err := os.ReadFile("../../cmd/warden/testdata/explain/" + id + ".json")
		if err != nil {
			t.Fatal(err)
		}
		answers[id] = json.RawMessage(b)
	}
	e := newEnvLedger(t, t.TempDir(), false, nil, answers)
	c := e.client(t)
	csrf := e.signIn(t, c)
	for _, tt := range []struct {
		id   string
		code int
	}{{"req-lookup", http.StatusOK}, {"req-masked", http.StatusOK}, {"req-refused", http.StatusOK}, {"req-refused.noconfig", http.StatusOK}, {"nope", http.StatusNotFound}} {
		t.Run(tt.id, func(t *testing.T) {
			r, err := c.Get(e.srv.URL + "/explain?id=" + tt.id)
			if err != nil {
				t.Fatal(err)
			}
			page := body(t, r)
			if r.StatusCode != tt.code {
				t.Fatalf("status %d, want %d:\n%s", r.StatusCode, tt.code, page)
			}
			got := []byte(csrfRE.ReplaceAllString(page, `name="csrf" value="CSRF"`))
			if csrf == "" {
				t.Fatal("no csrf")
			}
			golden := filepath.Join("testdata", "explain", tt.id+".html")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("page:\n%s\nwant (%s):\n%s", got, golden, want)
			}
		})
	}
}
