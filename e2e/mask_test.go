package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// Masked answers through each front, over one keep-alive connection, plain
// and gzip-encoded in turn: past the budget the contact fields are nulled
// and noted, everything else in the record is the platform's, the encoding
// and Content-Length are right, and a re-view of a profile served earlier
// is free. The fast front rewrites into pooled memory it trades with the
// response's buffer, so answers of one connection must never bleed into
// each other.
func TestMaskedAnswers(t *testing.T) {
	platformURL := startPlatform(t, 500)
	const limit = 3
	for _, front := range fronts {
		t.Run(front, func(t *testing.T) {
			g := startGateway(t, contactBudgetConfig(front, limit), platformURL)
			tok := token(t, "77")
			c := &http.Client{Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 1}}
			direct := &http.Client{Transport: &http.Transport{DisableCompression: true}}
			served := 0
			for i, id := range []int{10, 11, 12, 13, 14, 15, 16, 10, 11, 17} {
				gz := i%2 == 1
				hdr := http.Header{"Authorization": {"Bearer " + tok}}
				if gz {
					hdr.Set("Accept-Encoding", "gzip")
				}
				got := fetchProfile(t, c, g.url, id, hdr, gz)
				want := fetchProfile(t, direct, platformURL, id, http.Header{"Authorization": {"Bearer " + tok}}, false)
				masked := got.header.Get("Warden-Masked") != ""
				if got.fields["email"] != nil {
					served++
				}
				switch {
				case i < limit || id == 10 || id == 11: // within the budget, or a re-view
					if masked || got.fields["email"] == nil || got.fields["phone"] == nil {
						t.Fatalf("answer %d (profile %d): contact masked within the budget: %v %s", i, id, got.header, got.raw)
					}
				default:
					if !masked || got.fields["email"] != nil || got.fields["phone"] != nil {
						t.Fatalf("answer %d (profile %d): contact served past the budget: %v %s", i, id, got.header, got.raw)
					}
					note, _ := got.fields["_warden"].(map[string]any)
					if note == nil || !strings.Contains(fmt.Sprint(note["rules"]), "contact-account") {
						t.Fatalf("answer %d (profile %d): no note naming the budget: %s", i, id, got.raw)
					}
				}
				for k, v := range want.fields {
					if k == "email" || k == "phone" {
						continue
					}
					if fmt.Sprint(got.fields[k]) != fmt.Sprint(v) {
						t.Fatalf("answer %d (profile %d): field %s = %v, platform says %v", i, id, k, got.fields[k], v)
					}
				}
			}
			if served != limit+2 {
				t.Fatalf("%d answers carried contact details, want %d (the budget and two re-views)", served, limit+2)
			}
		})
	}
}

type profileAnswer struct {
	header http.Header
	raw    string
	fields map[string]any
}

// fetchProfile gets one profile, checks its encoding and length, and
// decodes it.
func fetchProfile(t *testing.T, c *http.Client, base string, id int, hdr http.Header, gz bool) profileAnswer {
	t.Helper()
	req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/users/%d", base, id), nil)
	req.Header = hdr
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v %s", req.URL, resp.StatusCode, err, body)
	}
	if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(body)) {
		t.Fatalf("GET %s: Content-Length %q, body %d bytes", req.URL, cl, len(body))
	}
	if enc := resp.Header.Get("Content-Encoding"); (enc == "gzip") != gz {
		t.Fatalf("GET %s: Content-Encoding %q, asked gzip %v", req.URL, enc, gz)
	}
	if gz {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("GET %s: gzip: %v", req.URL, err)
		}
		if body, err = io.ReadAll(zr); err != nil {
			t.Fatalf("GET %s: gzip: %v", req.URL, err)
		}
	}
	a := profileAnswer{header: resp.Header, raw: string(body)}
	if err := json.Unmarshal(body, &a.fields); err != nil {
		t.Fatalf("GET %s: %v in %s", req.URL, err, body)
	}
	return a
}
