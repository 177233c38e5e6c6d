package e2e

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestLedgerQueryInputs: odd but legitimate inputs to the ledger's
// queries, on a ledger the real gateway wrote. An @FILE saved by an
// editor that starts it with a UTF-8 byte order mark (Notepad, Excel's
// "CSV UTF-8") names the same authors as without it; before, the mark
// stuck to the first id, which then matched nobody, and reach answered
// without that author, silently. A file in UTF-16 is refused, not read
// as ids with NUL bytes.
func TestLedgerQueryInputs(t *testing.T) {
	_, dir, _, _ := writtenLedger(t)
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

}
