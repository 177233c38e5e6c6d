package trace

import (
	"fmt"
	"strings"
	"testing"
)

// realSubjects is how many distinct real subjects the scene's take holds.
func (s *contactScene) realSubjects() int {
	seen := map[int]bool{}
	for _, id := range s.real {
		seen[id] = true
	}
	return len(seen)
}

// TestPaddedValues: a take whose JSON values carry the spaces a careless
// export leaves (" 17 ", "  lena.morgan_17 ", upper case, a tab) is read
// as the same take: every subject, every canary found, the harvester
// accused and nobody else. Before, a padded id was no id (no coverage,
// its canary passed over) and a padded username beside a canary's id
// counted that canary as a forgery; a CSV's values were trimmed already.
func TestPaddedValues(t *testing.T) {
	s := newContactScene(t)
	copyOf := func(line func(id int64, name string) string) string {
		var b strings.Builder
		for i, id := range s.real {
			if i%10 == 0 && i/10 < len(s.canaries) {
				p := s.canaries[i/10]
				b.WriteString(line(p.ID, p.Username))
			}
			b.WriteString(line(int64(id), fmt.Sprintf("lena.morgan_%d", id)))
		}
		return b.String()
	}
	for name, data := range map[string]string{
		"padded id": copyOf(func(id int64, n string) string {
			return fmt.Sprintf("{\"id\": \" %d \", \"username\": %q}\n", id, n)
		}),
		"padded username": copyOf(func(id int64, n string) string {
			return fmt.Sprintf("{\"id\": \"%d\", \"username\": \"  %s\\t\"}\n", id, n)
		}),
		"padded, upper case, no id": copyOf(func(_ int64, n string) string {
			return fmt.Sprintf("{\"username\": \" %s \"}\n", strings.ToUpper(n))
		}),
		"padded array": "[" + strings.TrimSuffix(copyOf(func(id int64, n string) string {
			return fmt.Sprintf("{\"user_id\": \"%d \", \"handle\": \" @%s\"},", id, n)
		}), ",") + "]",
	} {
		r := s.trace(t, data, s.led)
		t.Logf("%s: %d records, %d subjects, %d canaries found, %d rejected, accused %q", name, r.Records, r.Subjects, r.CanariesFound, r.CanariesForged, accusedOf(r))
		if r.CanariesFound != len(s.canaries) || r.CanariesForged != 0 {
			t.Errorf("%s: found %d of the take's %d canaries, %d rejected as forgeries", name, r.CanariesFound, len(s.canaries), r.CanariesForged)
		}
		if want := s.realSubjects(); !strings.Contains(name, "no id") && r.Subjects != want {
			t.Errorf("%s: %d subjects, want %d", name, r.Subjects, want)
		}
		if got := accusedOf(r); got != "harvester" {
			t.Errorf("%s: accused %q, want the harvester alone", name, got)
		}
	}
}

// TestHeaderlessCountBeforeID: a CSV without a header whose first number
// column is a count (follower_count, full_name, username, id) reads the
// id column as ids: of the digit columns the one whose values differ from
// row to row, as ids do and counts do not. Before, the count was taken
// for the id: no coverage, and every canary beside a count passed over.
func TestHeaderlessCountBeforeID(t *testing.T) {
	s := newContactScene(t)
	var b strings.Builder
	for i, id := range s.real {
		if i%10 == 0 && i/10 < len(s.canaries) {
			p := s.canaries[i/10]
			fmt.Fprintf(&b, "%d,Lena Morgan,%s,%d\n", i%37, p.Username, p.ID)
		}
		fmt.Fprintf(&b, "%d,Lena Morgan,lena.morgan_%d,%d\n", id%37, id, id)
	}
	r := s.trace(t, b.String(), s.led)
	t.Logf("%d records, %d subjects, %d canaries found, %d rejected, accused %q", r.Records, r.Subjects, r.CanariesFound, r.CanariesForged, accusedOf(r))
	if r.CanariesFound != len(s.canaries) || r.CanariesForged != 0 || r.Subjects != s.realSubjects() {
		t.Errorf("found %d of the take's %d canaries, %d rejected, %d subjects of %d", r.CanariesFound, len(s.canaries), r.CanariesForged, r.Subjects, s.realSubjects())
	}
	if got := accusedOf(r); got != "harvester" {
		t.Errorf("accused %q, want the harvester alone", got)
	}
}
