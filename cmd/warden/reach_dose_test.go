package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/warden-gw/warden/internal/reach"
)

// A dose's rows past the last k anyone was reached by are 0: the table says
// so in one row, and says nothing else in its place.
func TestPrintDoseFoldsTrailingZeros(t *testing.T) {
	cases := []struct {
		name string
		dose []reach.Dose
		want []string // the table's rows after its header
	}{
		{"none zero", []reach.Dose{{K: 1, People: 4}, {K: 2, People: 2}}, []string{"1 4", "2 2"}},
		{"one zero", []reach.Dose{{K: 1, People: 4}, {K: 2, People: 0}}, []string{"1 4", "2 0"}},
		{"zeros folded", []reach.Dose{{K: 1, People: 4}, {K: 2, People: 1}, {K: 3, People: 0}, {K: 4, People: 0}, {K: 5, People: 0}},
			[]string{"1 4", "2 1", "3-5 0"}},
		{"nobody", []reach.Dose{{K: 1, People: 0}, {K: 2, People: 0}, {K: 3, People: 0}}, []string{"1-3 0"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			printDose(&b, reachDose, c.dose)
			var rows []string
			for _, l := range strings.Split(b.String(), "\n") {
				f := strings.Fields(l)
				if len(f) == 2 && f[0] != "K" {
					rows = append(rows, f[0]+" "+f[1])
				}
			}
			if strings.Join(rows, "|") != strings.Join(c.want, "|") {
				t.Errorf("rows %q, want %q; table:\n%s", rows, c.want, b.String())
			}
		})
	}
}
