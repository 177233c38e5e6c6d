package gateway

import (
	"context"
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

// synthetic answers a profile with contact details and its followers
// list itself, as the canary responder does for a canary.
type synthetic struct{}

func (synthetic) Respond(_ context.Context, ex *Exchange) *Local {
	switch ex.Path {
	case "/v1/users/990000001":
		return &Local{Status: 200, Body: []byte(`{"id":"990000001","email":"c@mail.example","phone":"+12125900001"}`)}
	case "/v1/users/990000001/followers":
		return &Local{Status: 200, Body: []byte(`{"users":[{"id":"990000002"},{"id":"990000003"}],"next_cursor":null}`)}
	}
	return nil
}

// TestLocalAnswerRecorded: the Access of a request a responder answered
// on an inspected route is recorded (request id, route, identity, status,
// the rules that masked), so warden explain finds it, and names nothing
// the answer shows: no records, authors, links, list, page or look-up
// (a canary is never a real subject).
func TestLocalAnswerRecorded(t *testing.T) {
	col := &collector{}
	rec := NewRecording("test", col, 8, NewRecordingMetrics(nil))
	f := recordFrontWith(t, answerYAML, Deps{Recordings: []*Recording{rec}, Responders: []Responder{synthetic{}}})
	f.client.Dial = func(string) (net.Conn, error) { return &cannedConn{}, nil }
	ctx := new(fasthttp.RequestCtx)
	auth := labBearer(t, "81")
	var ids []string
	for _, path := range []string{"/v1/users/5", "/v1/users/990000001", "/v1/users/990000001/followers?cursor=abc"} {
		if code := getWith(t, f, ctx, path, auth); code != 200 {
			t.Fatalf("%s: %d %s", path, code, ctx.Response.Body())
		}
		ids = append(ids, string(ctx.Response.Header.Peek("X-Request-Id")))
	}
	if err := rec.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(col.accs) != 3 {
		t.Fatalf("%d Accesses, want 3", len(col.accs))
	}
	if a := col.accs[0]; len(a.Records) != 1 || a.Lookup != "5" {
		t.Fatalf("the upstream's answer's Access %+v", a)
	}
	for i, route := range []string{"GET /v1/users/{id}", "GET /v1/users/{id}/followers"} {
		a := col.accs[i+1]
		if a.RequestID != ids[i+1] || a.Route != route || a.Identity.Account != "81" || a.Status != 200 || a.Rule != "" {
			t.Fatalf("%s: Access %+v", route, a)
		}
		if a.Records != nil || a.Authors != nil || a.Links != nil || a.List != "" || a.Page != "" || a.Lookup != "" || a.Unreferenced || a.Provenance != "" {
			t.Fatalf("%s: the Access names what the answer showed: %+v", route, a)
		}
	}
	// The contact budget (1) was spent on profile 5: the synthetic
	// profile is masked as a real one would be, and the Access says by what.
	if got := col.accs[1].MaskRules; len(got) != 1 || got[0] != "contact-account" {
		t.Fatalf("mask rules %v, want [contact-account]", got)
	}
}
