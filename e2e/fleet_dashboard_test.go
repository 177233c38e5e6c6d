package e2e

import (
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// checkFleetDashboard signs in on g's dashboard, on a fleet whose ledger
// is in ClickHouse: the identities page lists the harvester with the
// distinct subjects the fleet's ledger holds for it (ledgerSubjects,
// every gateway's Accesses, not only g's) and its contact budget's count,
// and a trace of its take (take: the subjects its answers held) covers
// the copy with the harvester.
func checkFleetDashboard(t *testing.T, g *gw, take map[string]bool, ledgerSubjects, contactSeen, contactLimit int) {
	t.Helper()
	op := clientFrom("127.0.5.200")
	op.Jar, _ = cookiejar.New(nil)
	r, err := op.PostForm(g.admin+"/login", url.Values{"token": {adminToken}, "csrf": {csrfOf(t, op, g, "/login")}})
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()

	harvester := regexp.MustCompile(`value=` + fleetHarvester + `">` + fleetHarvester + `</a></td><td>(\d+)</td>\s*<td>(\d+) / (\d+) `)
	// By default the page ranks by the class the budgets protect (the
	// one budget's, contact): the harvester's subjects are those whose
	// contact it was served, as many as the budget let through.
	a := do(t, op, "GET", g.admin+"/identities", nil)
	if row := harvester.FindStringSubmatch(a.body); a.status != 200 || row == nil || row[1] != strconv.Itoa(contactSeen) || !strings.Contains(a.body, "Ranked by <b>contact</b>") {
		t.Errorf("identities on gateway 2, by default: %d, the harvester's row %q, want %d subjects by contact:\n%s", a.status, row, contactSeen, a.body)
	}
	a = do(t, op, "GET", g.admin+"/identities?class=all", nil)
	row := harvester.FindStringSubmatch(a.body)
	if a.status != 200 || row == nil {
		t.Fatalf("identities on gateway 2: %d, no row for account %s:\n%s", a.status, fleetHarvester, a.body)
	}
	if row[1] != strconv.Itoa(ledgerSubjects) || row[1] != strconv.Itoa(len(take)) {
		t.Errorf("identities on gateway 2: account %s served %s subjects in 24 h; the fleet's ledger holds %d, its clients got %d", fleetHarvester, row[1], ledgerSubjects, len(take))
	}
	t.Logf("identities on gateway 2 (the fleet's ledger): %s", rendered.FindString(a.body))
	if row[2] != strconv.Itoa(contactSeen) || row[3] != strconv.Itoa(contactLimit) {
		t.Errorf("identities on gateway 2: contact budget %s / %s, want %d / %d", row[2], row[3], contactSeen, contactLimit)
	}

	// The harvester's take, as NDJSON, uploaded to the trace page.
	ids := make([]string, 0, len(take))
	for id := range take {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormField("csrf")
	io.WriteString(fw, csrfOf(t, op, g, "/trace"))
	fw, _ = mw.CreateFormFile("copy", "take.ndjson")
	for _, id := range ids {
		fmt.Fprintf(fw, `{"id":"%s","username":"u%s"}`+"\n", id, id)
	}
	mw.Close()
	req, _ := http.NewRequest("POST", g.admin+"/trace", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	r, err = op.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(r.Body)
	r.Body.Close()
	// The coverage table's first row: the harvester, served every
	// subject of the copy (the bystander's few are among them).
	cov := regexp.MustCompile(`(?s)<table id="coverage">.*?<tbody>\s*<tr><td>(\w+)</td><td>([^<]*)</td><td>(\d+)</td>`).FindSubmatch(page)
	if r.StatusCode != 200 || cov == nil {
		t.Fatalf("trace on gateway 2: %d, no coverage row:\n%s", r.StatusCode, page)
	}
	if got := fmt.Sprintf("%s %s %s", cov[1], cov[2], cov[3]); got != fmt.Sprintf("account %s %d", fleetHarvester, len(ids)) {
		t.Errorf("trace of the harvester's take on gateway 2: first covered by %s, want account %s with all %d subjects", got, fleetHarvester, len(ids))
	}
	t.Logf("trace on gateway 2 (the fleet's ledger): %s", rendered.FindSubmatch(page)[0])
	if !bytes.Contains(page, []byte("100.00% of the subjects were served through warden")) {
		t.Errorf("trace on gateway 2: the copy not wholly served through warden:\n%s", page)
	}
}

var rendered = regexp.MustCompile(`rendered in [^<]*`)
