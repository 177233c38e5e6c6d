package inspect

import (
	"time"

	"github.com/warden-gw/warden/internal/identify"
)

// Access is what one answer served: the ledger's input. It holds ids and
// class names, never personal data values.
type Access struct {
	RequestID string
	Route     string // the route pattern
	Identity  identify.Identity
	Time      time.Time
	// List is whose list a list answer is (the route's list parameter) and
	// Page which page (the cursor); both empty for other answers.
	List string
	Page string
	// Lookup is the id a direct look-up asked for; Unreferenced says it was
	// never shown to the identity before (enumeration).
	Lookup       string
	Unreferenced bool
	// Provenance is where a look-up's id was shown to the identity
	// (social, search, list, or unreferenced), when its link memory was
	// read; "" otherwise.
	Provenance string
	// Classes names the route's classes; Record.Classes bits index it.
	Classes []string
	Records []Record
	Authors []string // ids of the authors whose content was served
	Links   []string // ids the answer showed the caller
	// Status is the status the client was sent; Rule and Facet name the
	// refusal's rule and facet when warden refused the request (in place
	// of the upstream's answer, or before asking it), MaskRules the rules
	// that masked fields of records served.
	Status      int
	Rule, Facet string
	MaskRules   []string
	// AgeRank is where the account's age stood among the account_age
	// bounds of the config's budgets when the budgets decided (ration.AgeRank):
	// 1 + how many bounds it had reached, so that the tier each budget
	// applied can be told again (warden explain); 0 when not known (no
	// budget has tiers, or no budget was asked).
	AgeRank uint8
}

// Record is one record served. Classes are the classes present in the
// upstream's answer; Masked those warden nulled. What went out is
// Classes &^ Masked.
type Record struct {
	ID      string
	Classes ClassSet
	Masked  ClassSet
}

// Served is the set of classes the caller received for this record.
func (r Record) Served() ClassSet { return r.Classes &^ r.Masked }
