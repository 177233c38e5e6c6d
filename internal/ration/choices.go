package ration

import (
	"fmt"
	"strings"
)

// Mode is a rule's mode: enforce applies it; shadow decides and counts
// (warden_shadow_total{rule,action}) and logs what it would have done, and
// changes nothing. Rate limits, budgets, the unreferenced rule and the
// detector's rules take it.
type Mode string

// Rule modes.
const (
	Enforce Mode = "enforce"
	Shadow  Mode = "shadow"
)

// Validate reports a value that is none of the choices.
func (m Mode) Validate() error { return oneOf(m, Enforce, Shadow) }

// Identified says how a rule on an address facet (ip, net) or on the
// fingerprint counts requests that carry a verified account.
type Identified string

const (
	// Own counts an identified request on the composite [value, account]:
	// each account behind an address or network has its own allowance
	// there, so no account is refused or masked for what its neighbours
	// did. Requests without a verified account share the value's own
	// allowance. The default for ip and net.
	Own Identified = "own"
	// Shared counts every request on the value alone: everyone behind it
	// shares one allowance (a harvester behind a NAT spends its users'
	// share). The default for fingerprint, whose budgets exist to tie
	// accounts together.
	Shared Identified = "shared"
)

// Validate reports a value that is none of the choices.
func (v Identified) Validate() error { return oneOf(v, Own, Shared) }

// DefaultIdentified is the default of a rule counting by facet.
func DefaultIdentified(facet string) Identified {
	if facet == "ip" || facet == "net" {
		return Own
	}
	return Shared
}

// CheckIdentified reports identified set on a facet it cannot apply to.
func CheckIdentified(facet string, v Identified) error {
	if err := v.Validate(); err != nil {
		return err
	}
	if v == Own && (facet == "account" || facet == "app") {
		return fmt.Errorf("%q applies to ip, net and fingerprint, not %s", v, facet)
	}
	return nil
}

// oneOf returns nil when v is one of choices, else `"v" is not a or b`.
func oneOf[T ~string](v T, choices ...T) error {
	names := make([]string, len(choices))
	for i, c := range choices {
		if v == c {
			return nil
		}
		names[i] = string(c)
	}
	last := len(names) - 1
	return fmt.Errorf("%q is not %s or %s", string(v), strings.Join(names[:last], ", "), names[last])
}
