package main

import (
	"bytes"
	"testing"
)

// TestQueryErrorsOnTheCommandLine: a query's error is printed as what was
// wrong, exit status 1, without the admin API's status category ("bad
// request: ", "not found: ") that the same error carries there.
func TestQueryErrorsOnTheCommandLine(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"reach", "--authors", "1", "--by", "net", "--ledger", dir}, "warden reach: by: \"net\" is not account, ip\n"},
		{[]string{"ledger", "who-took", "1", "--from", "soon", "--ledger", dir}, "warden ledger who-took: from: \"soon\" is neither RFC 3339 nor a duration back from now\n"},
		{[]string{"explain", "nope", "--ledger", dir}, "warden explain: no request nope in the ledger " + dir + "\n"},
	} {
		var out, errb bytes.Buffer
		if code := run(c.args, &out, &errb); code != 1 || errb.String() != c.want {
			t.Errorf("warden %v: exit %d, stderr %q, want 1 and %q", c.args, code, errb.String(), c.want)
		}
	}
}
