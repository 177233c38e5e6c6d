package trace

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
)

// TestCSVQuotedNewlines: a CSV whose quoted fields hold newlines (a bio
// over several lines, as Python's csv, pandas and spreadsheets write it),
// with a header or without, is read a record per row: every row, its
// subject and canary, the harvester accused, nobody else; read in chunks
// of a few hundred bytes too, so cuts fall beside and inside such fields.
// Before, each line of a bio was a record (three times the records), and
// without a header no column had a majority of ids: no record at all.
func TestCSVQuotedNewlines(t *testing.T) {
	s := newContactScene(t)
	row := func(b *strings.Builder, id int64, name string) {
		fmt.Fprintf(b, "%d,%s,\"Lena Morgan\",\"Plants everywhere.\nFilm, \"\"35mm\"\" mostly.\n\",%d\n", id, name, id%37)
	}
	var body strings.Builder
	rows := 0
	for i, id := range s.real {
		if i%10 == 0 && i/10 < len(s.canaries) {
			p := s.canaries[i/10]
			row(&body, p.ID, p.Username)
			rows++
		}
		row(&body, int64(id), fmt.Sprintf("lena.morgan_%d", id))
		rows++
	}
	for name, data := range map[string]string{
		"header":    "id,username,full_name,bio,followers\n" + body.String(),
		"no header": body.String(),
	} {
		r := s.trace(t, data, s.led)
		t.Logf("%s: %d records, %d subjects, %d canaries found, %d rejected, accused %q", name, r.Records, r.Subjects, r.CanariesFound, r.CanariesForged, accusedOf(r))
		if r.Records != int64(rows) || r.Subjects != s.realSubjects() || r.CanariesFound != len(s.canaries) || r.CanariesForged != 0 {
			t.Errorf("%s: %d records of %d, %d subjects of %d, %d canaries of %d, %d rejected", name, r.Records, rows,
				r.Subjects, s.realSubjects(), r.CanariesFound, len(s.canaries), r.CanariesForged)
		}
		if got := accusedOf(r); got != "harvester" {
			t.Errorf("%s: accused %q, want the harvester alone", name, got)
		}
		// In chunks of 300 bytes, cut beside and inside the bios: the
		// same records as read whole.
		whole, small := chunkRecords(t, data, 1, chunkSize), chunkRecords(t, data, 3, 300)
		if strings.Join(whole, "\n") != strings.Join(small, "\n") {
			t.Errorf("%s: %d records read in chunks of 300 bytes, %d whole, or not the same", name, len(small), len(whole))
		}
	}
}

// chunkRecords reads data in chunks of size with workers, its records
// sorted.
func chunkRecords(t *testing.T, data string, workers, size int) []string {
	t.Helper()
	var mu sync.Mutex
	var got []string
	if _, err := read(strings.NewReader(data), workers, size, func(_ int, r *Record) {
		mu.Lock()
		got = append(got, fmt.Sprintf("%s|%s|%s|%s", r.ID, r.Username, r.Email, r.Phone))
		mu.Unlock()
	}, nil); err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	return got
}

// TestCSVStrayQuotes: a quote inside an unquoted field (5'10"), or one
// opening a field and never closed, leaves the other rows as they were:
// one record a line. (Both in one copy, the second's field would run to
// the first's quote, as Python's csv reads it.)
func TestCSVStrayQuotes(t *testing.T) {
	for _, stray := range []string{"5'10\"", "\"tall"} {
		var b strings.Builder
		b.WriteString("id,username,height\n")
		for i := 1; i <= 2000; i++ {
			h := "180"
			if i%500 == 7 {
				h = stray
			}
			fmt.Fprintf(&b, "%d,lena.morgan_%d,%s\n", i, i, h)
		}
		for _, size := range []int{chunkSize, 300} {
			if got := chunkRecords(t, b.String(), 3, size); len(got) != 2000 {
				t.Errorf("%s, chunks of %d: %d records, want 2000", stray, size, len(got))
			}
		}
	}
}
