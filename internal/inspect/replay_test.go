package inspect

import (
	"slices"
	"testing"
)

// A Result loaded from served records reads and masks like an inspected
// one, and says which rules masked each record.
func TestLoadAndMaskedBy(t *testing.T) {
	rt, err := compileRoute(RouteConfig{Route: "GET /v1/users/{id}", Records: []string{"$"}, ID: "id",
		Classes: map[string][]string{"contact": {"email"}, "profile": {"username"}}})
	if err != nil {
		t.Fatal(err)
	}
	contact, profile := rt.Class("contact"), rt.Class("profile")
	var r Result
	r.Load(rt, []Record{{ID: "7", Classes: 1<<contact | 1<<profile}, {Classes: 1 << profile}}, []string{"#01", "#02"})
	if r.Len() != 2 || string(r.ID(0)) != "7" || r.ID(1) != nil || r.NumLinks() != 2 || string(r.Link(1)) != "#02" {
		t.Fatalf("loaded: %d records, id %q %q, %d links", r.Len(), r.ID(0), r.ID(1), r.NumLinks())
	}
	if r.Mask(1, contact, "budget") {
		t.Error("masked a class the record does not carry")
	}
	if !r.Mask(0, contact, "budget") || !r.Mask(0, profile, "scope") || !r.Masked(0).Has(contact) {
		t.Fatal("mask did not take")
	}
	if got := r.MaskedBy(0, nil); !slices.Equal(got, []string{"budget", "scope"}) {
		t.Errorf("MaskedBy(0) = %v", got)
	}
	if got := r.MaskedBy(1, nil); len(got) != 0 {
		t.Errorf("MaskedBy(1) = %v", got)
	}
	r.Load(rt, nil, nil)
	if r.Len() != 0 || r.NumLinks() != 0 || len(r.Rules()) != 0 {
		t.Error("Load did not empty the Result")
	}
}
