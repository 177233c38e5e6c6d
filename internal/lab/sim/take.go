package sim

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"
)

// Taken is what the harvesters kept (Options.Take): the records their
// clients received, written as they arrived, and who received them. The
// simulator knows which accounts are harvesters; a trace of the take does
// not, and is checked against this.
type Taken struct {
	// Records are the lines written: one per profile or list entry
	// received (a record received twice is written twice; canaries
	// included, as a harvester cannot tell them apart).
	Records int64 `json:"records"`
	// Accounts are the harvesting accounts, most records first.
	Accounts []TakenBy `json:"accounts"`
}

// TakenBy is one harvesting account and what it received.
type TakenBy struct {
	Account  string `json:"account"` // "" for requests without a token
	Scenario string `json:"scenario"`
	Records  int64  `json:"records"`
	// Distinct counts the distinct real profiles among them (canaries
	// and repeats left out): what "took N of the copy's records" means.
	Distinct int64 `json:"distinct"`
}

// take writes what harvesters receive, one NDJSON record a line, as they
// receive it: memory stays bounded by the accounts, not the records.
type take struct {
	tally *tally // for an account's id from its token

	mu      sync.Mutex
	w       *bufio.Writer
	err     error
	records int64
	by      map[[2]string]int64 // {account, scenario} -> records
	// distinct: {account, scenario} -> the real profile ids among them
	// (a bitmap: a few KiB an account, bounded by the platform's ids).
	distinct map[[2]string]*roaring.Bitmap
}

func newTake(w io.Writer, t *tally) *take {
	return &take{tally: t, w: bufio.NewWriterSize(w, 64<<10), by: map[[2]string]int64{}, distinct: map[[2]string]*roaring.Bitmap{}}
}

// takeRecord is a record as a harvester keeps it.
type takeRecord struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Email    string `json:"email,omitempty"`
	Phone    string `json:"phone,omitempty"`
}

// note writes the records of one answer a harvester of population p
// received: a full profile, or the people of a list (followers,
// following, search).
func (k *take) note(p *pop, id *ident, path string, a *answer) {
	if a.status != 200 {
		return
	}
	path, _, _ = strings.Cut(path, "?")
	var recs []takeRecord
	switch {
	case answerKind(path) == kindProfile:
		var pr profile
		if json.Unmarshal(a.body, &pr) != nil || pr.ID == "" {
			return
		}
		r := takeRecord{ID: pr.ID, Username: pr.Username}
		if pr.Email != nil {
			r.Email = *pr.Email
		}
		if pr.Phone != nil {
			r.Phone = *pr.Phone
		}
		recs = append(recs, r)
	case path == "/v1/search", strings.HasSuffix(path, "/followers"), strings.HasSuffix(path, "/following"):
		var up userPage
		if json.Unmarshal(a.body, &up) != nil {
			return
		}
		for _, u := range up.Users {
			recs = append(recs, takeRecord{ID: u.ID, Username: u.Username})
		}
	}
	if len(recs) == 0 {
		return
	}
	acct := k.tally.account(id.token)
	var line []byte
	for _, r := range recs {
		b, _ := json.Marshal(r) // strings only: cannot fail
		line = append(append(line, b...), '\n')
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.records += int64(len(recs))
	key := [2]string{acct, p.name}
	k.by[key] += int64(len(recs))
	d := k.distinct[key]
	if d == nil {
		d = roaring.New()
		k.distinct[key] = d
	}
	for _, r := range recs {
		if v, err := strconv.ParseUint(r.ID, 10, 32); err == nil && k.tally.real(r.ID) {
			d.Add(uint32(v))
		}
	}
	if k.err == nil {
		_, k.err = k.w.Write(line)
	}
}

// close flushes the writer and returns what was taken, or the first
// write error.
func (k *take) close() (*Taken, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.err == nil {
		k.err = k.w.Flush()
	}
	if k.err != nil {
		return nil, fmt.Errorf("sim: write the take: %w", k.err)
	}
	t := &Taken{Records: k.records}
	for key, n := range k.by {
		t.Accounts = append(t.Accounts, TakenBy{Account: key[0], Scenario: key[1], Records: n,
			Distinct: int64(k.distinct[key].GetCardinality())})
	}
	slices.SortFunc(t.Accounts, func(a, b TakenBy) int {
		if a.Records != b.Records {
			if a.Records > b.Records {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Account, b.Account)
	})
	return t, nil
}
