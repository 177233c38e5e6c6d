package sim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
)

// readTake parses a take, one record a line.
func readTake(t *testing.T, b []byte) []takeRecord {
	t.Helper()
	var out []takeRecord
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var r takeRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("take line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// The take holds what the harvesters received, record by record, and
// nothing the legitimate users did; Taken says which accounts took it.
func TestTakeKeepsWhatHarvestersReceived(t *testing.T) {
	srv, tr := realPlatform(t, 1000, 5, "lab-secret")
	t.Run("naive", func(t *testing.T) {
		var b bytes.Buffer
		rep := run(t, Options{Target: srv.URL, Scenarios: []string{"naive", "users"}, MaxRequests: 37, Truth: tr,
			JWTSecret: "lab-secret", Take: &b, Params: map[string]string{"naive.workers": "1", "users.think": "1ms", "users.session-gap": "1ms"}})
		recs := readTake(t, b.Bytes())
		if len(recs) != 37 || rep.Taken == nil || rep.Taken.Records != 37 {
			t.Fatalf("%d records written, Taken %+v; want 37 (one per profile the harvester opened)", len(recs), rep.Taken)
		}
		for i, r := range recs {
			if r.ID != strconv.Itoa(i+1) {
				t.Fatalf("record %d is id %s, want %d (naive opens ids in order with one worker)", i, r.ID, i+1)
			}
			if _, ok := tr.matches(r.ID, r.Email, r.Phone); !ok || r.Username == "" {
				t.Fatalf("record %+v: not the profile's true contact details", r)
			}
		}
		if len(rep.Taken.Accounts) != 1 || rep.Taken.Accounts[0].Scenario != "naive" || rep.Taken.Accounts[0].Account == "" {
			t.Fatalf("takers %+v, want the naive harvester's one account", rep.Taken.Accounts)
		}
	})
	t.Run("fleet", func(t *testing.T) {
		var b bytes.Buffer
		rep := run(t, Options{Target: srv.URL, Scenarios: []string{"fleet", "users"}, MaxRequests: 200, Truth: tr,
			JWTSecret: "lab-secret", Take: &b, Params: map[string]string{"fleet.bots": "5", "users.think": "1ms", "users.session-gap": "1ms"}})
		recs := readTake(t, b.Bytes())
		var sum, contact int64
		for _, a := range rep.Taken.Accounts {
			if a.Scenario != "fleet" {
				t.Errorf("taker %+v: only harvesters keep a take", a)
			}
			sum += a.Records
		}
		for _, r := range recs {
			if r.Email != "" {
				contact++
			}
		}
		if int64(len(recs)) != rep.Taken.Records || sum != rep.Taken.Records {
			t.Fatalf("%d lines, Taken.Records %d, accounts' sum %d", len(recs), rep.Taken.Records, sum)
		}
		p := pop1(t, rep, "fleet")
		// Lists add records beyond the profiles opened: a 50-record page
		// per walk.
		if contact == 0 || int64(len(recs)) <= p.OK || len(rep.Taken.Accounts) == 0 || len(rep.Taken.Accounts) > 5 {
			t.Fatalf("%d records (%d with an e-mail) from %d answers by %d accounts", len(recs), contact, p.OK, len(rep.Taken.Accounts))
		}
	})
}
