package dashboard_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/canary"
	"github.com/warden-gw/warden/internal/config"
	"github.com/warden-gw/warden/internal/dashboard"
	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/ledger"
	"github.com/warden-gw/warden/internal/trace"
)

const canaryKeyEnv = "DASHBOARD_TEST_CANARY_KEY"

var canaryKey = strings.Repeat("k3y-", 8)

func lookupKey(name string) (string, bool) {
	if name == canaryKeyEnv {
		return canaryKey, true
	}
	return "", false
}

// leak is a ledger where acct-h harvested 60 followers lists and acct-u
// read 20 others, and the copy acct-h's take makes: every record it was
// served, and the canaries it was shown (found by trace.Served, the
// replay `warden trace --served` prints).
type leak struct {
	dir      string
	canaries int // distinct canaries in the copy
	records  int
	csv      []byte
}

func makeLeak(t *testing.T) leak {
	t.Helper()
	dir := t.TempDir()
	c, err := canary.New(canary.Config{KeyEnv: canaryKeyEnv}, lookupKey)
	if err != nil {
		t.Fatal(err)
	}
	route := c.Config().Routes.Seed[0]
	l, err := ledger.Open(ledger.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Add(-time.Minute)
	serve := func(account string, list, page int) {
		e := ledger.Entry{Time: now, RequestID: fmt.Sprintf("r-%s-%d-%d", account, list, page), Route: route,
			List: strconv.Itoa(list), Page: strconv.Itoa(page), Status: 200, Classes: []string{"contact", "profile"}}
		e.Identity[identify.FacetAccount-1] = account
		e.Identity[identify.FacetIP-1] = "10.1.2." + strconv.Itoa(len(account))
		for i := range 40 { // below canary.page.max (50): a full page shows no canary
			e.Records = append(e.Records, ledger.Record{ID: strconv.Itoa(list*1000 + page*50 + i), Classes: 0b11})
		}
		l.Add(&e)
	}
	for list := 1; list <= 60; list++ {
		for page := range 4 {
			serve("acct-h", list, page)
		}
	}
	for list := 100; list < 120; list++ {
		serve("acct-u", list, 0)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rd, err := ledger.OpenReader(dir, ledger.Window{})
	if err != nil {
		t.Fatal(err)
	}
	shown := trace.Served(c, rd, identify.FacetAccount, "acct-h")
	rd.Close()
	var b bytes.Buffer
	b.WriteString("id,username,email,phone\n")
	lk := leak{dir: dir}
	for list := 1; list <= 60; list++ {
		for i := range 200 {
			id := list*1000 + i
			fmt.Fprintf(&b, "%d,user%d,user%d@mail.example,\n", id, id, id)
			lk.records++
		}
	}
	seen := map[string]bool{}
	for _, s := range shown {
		if !seen[s.ID] {
			seen[s.ID] = true
			fmt.Fprintf(&b, "%s,%s,%s,%s\n", s.ID, s.Username, s.Email, s.Phone)
			lk.records++
		}
	}
	lk.canaries, lk.csv = len(seen), b.Bytes()
	if lk.canaries < 10 {
		t.Fatalf("acct-h was shown %d canaries: too few to test with", lk.canaries)
	}
	return lk
}

// part is one multipart field; file names a file part.
type part struct{ name, file, value string }

// upload posts parts as a multipart form, streamed through a pipe as a
// browser sends it.
func upload(t *testing.T, c *http.Client, url string, parts []part) (int, string) {
	t.Helper()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		for _, p := range parts {
			var w io.Writer
			var err error
			if p.file != "" {
				w, err = mw.CreateFormFile(p.name, p.file)
			} else {
				w, err = mw.CreateFormField(p.name)
			}
			if err == nil {
				_, err = io.WriteString(w, p.value)
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
		}
		pw.CloseWithError(mw.Close())
	}()
	req, _ := http.NewRequest(http.MethodPost, url+"/trace", pr)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	r, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return r.StatusCode, body(t, r)
}

func gz(b []byte) string {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.String()
}

var (
	foundRE   = regexp.MustCompile(`id="canaries-found">(\d+) `)
	accusedRE = regexp.MustCompile(`(?s)<table id="accused">.*?</table>`)
)

func TestTraceUpload(t *testing.T) {
	lk := makeLeak(t)
	cfg := &config.Config{Canary: canary.Config{KeyEnv: canaryKeyEnv}}
	e := newEnvWith(t, lk.dir, false, func(o *dashboard.Options) {
		o.Config = func() *config.Config { return cfg }
		o.LookupEnv = lookupKey
		o.TraceMaxBytes = 1 << 20
	})
	c := e.client(t)
	tok := e.signIn(t, c)

	// What `warden trace` reports for the same copy, through the package.
	ca, _ := canary.New(cfg.Canary, lookupKey)
	tr := trace.New(ca, 2)
	if _, err := tr.Read(bytes.NewReader(lk.csv), nil); err != nil {
		t.Fatal(err)
	}
	rd, err := ledger.OpenReader(lk.dir, ledger.Window{})
	if err != nil {
		t.Fatal(err)
	}
	want := tr.Report(rd, 0)
	rd.Close()
	if len(want.Accused) != 1 || want.Accused[0].Value != "acct-h" || want.CanariesFound != lk.canaries {
		t.Fatalf("the package's own report: %d canaries, accused %+v", want.CanariesFound, want.Accused)
	}

	half := bytes.IndexByte(lk.csv[len(lk.csv)/2:], '\n') + len(lk.csv)/2 + 1
	cases := []struct {
		name    string
		parts   []part
		status  int
		canary  int  // canaries found the page states; -1: no report
		accused bool // acct-h named
	}{
		{"one csv", []part{{"csrf", "", tok}, {"copy", "take.csv", string(lk.csv)}}, 200, lk.canaries, true},
		{"two files, one gzip'd, header in the first only", []part{{"csrf", "", tok}, {"false-accusation", "", "1e-9"},
			{"copy", "a.csv", string(lk.csv[:half])}, {"copy", "b.csv.gz", gz(lk.csv[half:])}}, 200, lk.canaries, true},
		{"real records only", []part{{"csrf", "", tok}, {"copy", "real.csv", string(lk.csv[:bytes.Index(lk.csv, []byte("\n100000"))+1])}}, 200, 0, false},
		{"no file chosen", []part{{"csrf", "", tok}, {"copy", "", ""}}, 400, -1, false},
		{"csrf after the file", []part{{"copy", "take.csv", string(lk.csv)}, {"csrf", "", tok}}, 403, -1, false},
		{"wrong csrf", []part{{"csrf", "", tok + "x"}, {"copy", "take.csv", string(lk.csv)}}, 403, -1, false},
		{"bad probability", []part{{"csrf", "", tok}, {"false-accusation", "", "2"}, {"copy", "take.csv", string(lk.csv)}}, 400, -1, false},
		{"past the bound", []part{{"csrf", "", tok}, {"copy", "big.csv", strings.Repeat(string(lk.csv), 1+(1<<20)/len(lk.csv))}}, 413, -1, false},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			code, page := upload(t, c, e.srv.URL, tt.parts)
			if code != tt.status {
				t.Fatalf("status %d, want %d:\n%s", code, tt.status, page)
			}
			m := foundRE.FindStringSubmatch(page)
			switch {
			case tt.canary < 0 && m != nil:
				t.Fatal("a report was shown for a refused upload")
			case tt.canary < 0:
				return
			case m == nil:
				t.Fatalf("no report in the page:\n%s", page)
			case m[1] != strconv.Itoa(tt.canary):
				t.Fatalf("canaries found %s, want %d", m[1], tt.canary)
			}
			acc := accusedRE.FindString(page)
			if got := strings.Contains(acc, ">acct-h<"); got != tt.accused {
				t.Fatalf("acct-h accused: %v, want %v:\n%s", got, tt.accused, acc)
			}
			if strings.Contains(acc, "acct-u") {
				t.Fatal("acct-u, who read other lists, is accused")
			}
			if strings.Contains(page, "@mail.example") {
				t.Fatal("the page shows an e-mail address of the copy")
			}
		})
	}

	// Without a session, or with another site's Origin, the multipart form is refused.
	t.Run("no session", func(t *testing.T) {
		code, page := upload(t, e.client(t), e.srv.URL, []part{{"csrf", "", tok}, {"copy", "take.csv", string(lk.csv)}})
		if code != http.StatusForbidden || foundRE.MatchString(page) {
			t.Fatalf("status %d, want 403", code)
		}
	})
}

func TestTracePageWithoutCanaryKey(t *testing.T) {
	e := newEnvWith(t, "", false, func(o *dashboard.Options) {
		o.Config = func() *config.Config { return &config.Config{Canary: canary.Config{KeyEnv: canaryKeyEnv}} }
		o.LookupEnv = func(string) (string, bool) { return "", false }
	})
	c := e.client(t)
	e.signIn(t, c)
	r, err := c.Get(e.srv.URL + "/trace")
	if err != nil {
		t.Fatal(err)
	}
	page := body(t, r)
	for _, want := range []string{`enctype="multipart/form-data"`, `name="copy"`, "2 GiB", canaryKeyEnv + " is not set", "No ledger on this gateway"} {
		if !strings.Contains(page, want) {
			t.Errorf("the trace page lacks %q", want)
		}
	}
	if i, j := strings.Index(page, `name="csrf"`), strings.Index(page, `name="copy"`); i < 0 || i > j {
		t.Error("the CSRF field is not the upload form's first field")
	}
}
