package e2e

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestLedgerQueryInputs: odd but legitimate inputs to the ledger's
// queries, on a ledger the real gateway wrote. An @FILE saved by an
// editor that starts it with a UTF-8 byte order mark (Notepad, Excel's
// "CSV UTF-8") names the same authors as without it; before, the mark
// stuck to the first id, which then matched nobody, and reach answered
// without that author, silently. A file in UTF-16 is refused, not read
// as ids with NUL bytes.
//
// The admin API refuses a parameter its query does not read, or one
// given twice, 400 naming it; before, authors=200&authors=201 answered
// for 200 alone, and a misspelt overlaps=, clas= or form= was dropped
// and the answer given to another question, 200.
func TestLedgerQueryInputs(t *testing.T) {
	_, dir, g, tl := writtenLedger(t)
	if t.Failed() {
		return
	}
	tmp := t.TempDir()
	bom := filepath.Join(tmp, "bom.txt")
	os.WriteFile(bom, []byte("\xef\xbb\xbf200\r\n201\r\n"), 0o600)
	var plain, marked map[string]any
	query(t, &plain, "reach", "--authors", "200,201", "--dose", "--ledger", dir)
	query(t, &marked, "reach", "--authors", "@"+bom, "--dose", "--ledger", dir)
	if !reflect.DeepEqual(plain, marked) || plain["reach"] == 0.0 {
		t.Errorf("reach of an @FILE with a byte order mark: %v; of the same ids given inline: %v", marked, plain)
	}
	bomComment := filepath.Join(tmp, "bom-comment.txt")
	os.WriteFile(bomComment, []byte("\xef\xbb\xbf# the set\n200\n201\n"), 0o600)
	query(t, &marked, "reach", "--authors", "@"+bomComment, "--dose", "--ledger", dir)
	if !reflect.DeepEqual(plain, marked) {
		t.Errorf("reach of an @FILE opening with a byte order mark and a comment: %v; inline: %v", marked, plain)
	}

	utf16 := filepath.Join(tmp, "utf16.txt")
	os.WriteFile(utf16, []byte("\xff\xfe2\x000\x000\x00\n\x00"), 0o600)
	code, out, errOut := runWarden(t, "", nil, "reach", "--authors", "@"+utf16, "--ledger", dir)
	if code != 1 || !strings.Contains(errOut, "UTF-16") {
		t.Errorf("reach of an @FILE in UTF-16: exit %d, want 1 naming UTF-16\n%s%s", code, out, errOut)
	}

	// RFC 3339 (5.6) allows a lower case t and z: the same window.
	from := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	var upper, lower map[string]any
	query(t, &upper, "reach", "--authors", "200,201", "--from", from, "--ledger", dir)
	query(t, &lower, "reach", "--authors", "200,201", "--from", strings.ToLower(from), "--ledger", dir)
	if !reflect.DeepEqual(upper, lower) || upper["reach"] == 0.0 {
		t.Errorf("reach --from %s: %v; --from %s: %v", strings.ToLower(from), lower, from, upper)
	}

	for _, c := range []struct{ path, msg string }{
		{"reach?authors=200&authors=201", `authors: given 2 times`},
		{"reach?authors=200&overlaps=201", `reach: no parameter \"overlaps\"`},
		{"reach?authors=200&form=1h", `reach: no parameter \"form\"`},
		{"who-took?subject=25&clas=contact", `who-took: no parameter \"clas\"`},
		{"took-by?facet=account&value=1&value=2", `value: given 2 times`},
		{"explain?id=" + tl.refused[0] + "&verbose=1", `explain: no parameter \"verbose\"`},
		{"audience?accounts=200&dp_epsilon=0.5", `audience: no parameter \"dp_epsilon\"`},
	} {
		resp := adminDo(t, g, "GET", "/v1/ledger/"+c.path, "")
		if resp.status != 400 || !strings.Contains(resp.body, c.msg) {
			t.Errorf("admin %s: %d %s, want 400 with %q", c.path, resp.status, resp.body, c.msg)
		}
	}
	for _, p := range []string{"reach?authors=200,201&by=account&dose=true&overlap=202&after=1h&from=24h&to=0s", "who-took?subject=25&class=contact&by=ip&from=1h",
		"took-by?facet=account&value=1&from=1h&to=0s", "explain?id=" + tl.refused[0] + "&from=24h", "verify?from=1h"} {
		if resp := adminDo(t, g, "GET", "/v1/ledger/"+p, ""); resp.status != 200 {
			t.Errorf("admin %s: %d %s, want 200", p, resp.status, resp.body)
		}
	}
	if resp := adminDo(t, g, "POST", "/v1/ledger/replay?from=24h&window=1h", ledgerConfig(dir, 5)); resp.status != 400 || !strings.Contains(resp.body, `replay: no parameter \"window\"`) {
		t.Errorf("admin replay?window=1h: %d %s, want 400", resp.status, resp.body)
	}
}
