package gateway

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/warden-gw/warden/internal/config"
)

// Masked answers leave the fast front whole and alone, whether the rewrite
// fits the upstream's buffer (copied into it) or not (buffers traded), and
// in any order: a buffer reused for the next answer never shows a previous
// one's bytes, and Content-Length is the rewritten body's.
func TestFastRewriteBuffers(t *testing.T) {
	cfg, err := config.Parse("rewrite.yaml", []byte(`inspect:
  routes:
    - route: "GET /v1/users/{id}"
      records: ["$"]
      id: id
      classes: {contact: [email, phone]}
ration:
  scopes:
    - {class: contact, scope: partner}
`))
	if err != nil {
		t.Fatal(err)
	}
	f := benchFront(t, cfg)
	ctx := new(fasthttp.RequestCtx)
	// Small answers fit the upstream's buffer; 3000 and 20000 bytes of bio
	// make a rewrite larger than the buffer the front holds from before.
	pads := []int{0, 3000, 0, 0, 20000, 10, 3000, 0, 20000, 20000, 0}
	for n := range 3 {
		for i, pad := range pads {
			id := fmt.Sprintf("%d", 100*n+i+1)
			req := new(fasthttp.Request)
			req.SetRequestURI(fmt.Sprintf("/v1/users/%s?pad=%d", id, pad))
			req.Header.SetHost("127.0.0.1:8080")
			var wire bytes.Buffer
			if err := serveOnce(f, ctx, req, bufio.NewWriter(&wire)); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(&wire), nil)
			if err != nil {
				t.Fatalf("answer %s: %v", id, err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("answer %s: body: %v", id, err)
			}
			if resp.StatusCode != 200 || resp.ContentLength != int64(len(body)) || wire.Len() != 0 {
				t.Fatalf("answer %s: status %d, Content-Length %d for %d bytes, %d bytes left over", id, resp.StatusCode, resp.ContentLength, len(body), wire.Len())
			}
			var p map[string]any
			if err := json.Unmarshal(body, &p); err != nil {
				t.Fatalf("answer %s (pad %d) is not JSON: %v\n%.300s", id, pad, err, body)
			}
			bio, _ := p["bio"].(string)
			if p["id"] != id || p["email"] != nil || p["phone"] != nil || p["city"] != "Vancouver" ||
				len(bio) != len("Collecting old cameras and older stories. Grew up by the sea, live in the city now. Museums, markets and long walks. Mountains in summer, books in winter.")+pad ||
				strings.Trim(bio[len(bio)-pad:], "x") != "" {
				t.Fatalf("answer %s (pad %d) not the platform's with contact masked: id %v email %v phone %v city %v, bio of %d bytes",
					id, pad, p["id"], p["email"], p["phone"], p["city"], len(bio))
			}
			if !strings.Contains(string(body), `"rules":["scope-contact"]`) || resp.Header.Get("Warden-Masked") != "1; rules=scope-contact" {
				t.Fatalf("answer %s: no mask note or header: %q\n%.200s", id, resp.Header.Get("Warden-Masked"), body)
			}
		}
	}
}
