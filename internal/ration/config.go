package ration

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/refusal"
	"github.com/warden-gw/warden/internal/store"
)

// Config is the rationing section: budgets, scopes and unreferenced
// look-ups.
type Config struct {
	Budgets      []BudgetConfig `yaml:"budgets"`
	Scopes       []ScopeConfig  `yaml:"scopes"`
	Unreferenced *Unreferenced  `yaml:"unreferenced"`
	FanoutCap    *FanoutCap     `yaml:"fanout_cap"`
}

// BudgetConfig limits how many distinct subjects' Class one value of Facet
// may be served per Window.
type BudgetConfig struct {
	Name   string        `yaml:"name"`
	Facet  string        `yaml:"facet"` // account, app, ip, net, fingerprint
	Class  string        `yaml:"class"`
	Limit  int           `yaml:"limit"`
	Window time.Duration `yaml:"window"`
	Action string        `yaml:"action"` // mask (default) or block
	// AccountAge lowers the limit for young accounts: the first tier (in
	// order of younger_than) the account is younger than applies.
	AccountAge []AgeTier `yaml:"account_age"`
	Exempt     Exempt    `yaml:"exempt"`
	// Identified: on ip, net or fingerprint, how requests with a verified
	// account count (Own: on [value, account]; Shared: on the value).
	Identified Identified `yaml:"identified"`
	Mode       Mode       `yaml:"mode"` // enforce (default) or shadow
	// Provenance limits the budget to records whose ids were shown to the
	// identity this way (social, search, list, unreferenced; see
	// inspect.Provenance): "contact details of people found through
	// search". Empty: every record. Needs the unreferenced section, whose
	// facet and ttl the link memory uses.
	Provenance []inspect.Provenance `yaml:"provenance"`
}

// AgeTier is the limit for accounts younger than YoungerThan.
type AgeTier struct {
	YoungerThan time.Duration `yaml:"younger_than"`
	Limit       int           `yaml:"limit"`
}

// Exempt lists identities a rule does not apply to.
type Exempt struct {
	Apps     []string `yaml:"apps"`
	Accounts []string `yaml:"accounts"`
	CIDRs    []string `yaml:"cidrs"`
}

// ScopeConfig reserves Class for identities holding Scope; everyone else
// gets it masked.
type ScopeConfig struct {
	Name  string `yaml:"name"` // the rule named in masks; default "scope-<class>"
	Class string `yaml:"class"`
	Scope string `yaml:"scope"`
}

// Unreferenced counts direct look-ups (a route's lookup parameter) of ids
// that no earlier answer showed the identity.
type Unreferenced struct {
	Name  string `yaml:"name"`  // default "unreferenced"
	Facet string `yaml:"facet"` // whose filter: default account
	// TTL is how long a shown id stays referenced. Default 24h.
	TTL time.Duration `yaml:"ttl"`
	// Limit unreferenced distinct look-ups per Window are served; past it,
	// Action applies to the answer. Limit 0 with no window only counts.
	Limit  int           `yaml:"limit"`
	Window time.Duration `yaml:"window"`
	Action string        `yaml:"action"` // mask (default) or block
	// Classes are masked past the limit; default every class of the route.
	Classes []string `yaml:"classes"`
	Exempt  Exempt   `yaml:"exempt"`
	// Identified: on ip, net or fingerprint, how requests with a verified
	// account count, as a budget's: Own (the default on ip and net) keeps
	// the link memory and the allowance on [value, account], so no account
	// behind a shared address loses either to what its neighbours did;
	// Shared on the value.
	Identified Identified `yaml:"identified"`
	Mode       Mode       `yaml:"mode"` // enforce (default) or shadow
}

// FanoutCap caps how many people one identity opens from one list answer
// (a search page, another profile's followers): of the ids an answer
// showed with one of Provenance, the first Limit distinct people looked up
// within Window of the first are served; later look-ups from that answer
// get Classes masked. Each answer fetched is its own (a person who comes
// back to a list for one more is not capped; a harvester pays a request
// per Limit people). With Hold, an identity that went past the cap has
// every look-up of those provenances masked for Hold. Decided with the
// look-up's provenance in one store call (store.Fanout); needs the
// unreferenced section, whose link memory (facet, ttl) remembers which
// answer showed each id.
type FanoutCap struct {
	Name   string        `yaml:"name"` // default "fanout-cap"
	Limit  int           `yaml:"limit"`
	Window time.Duration `yaml:"window"`
	Hold   time.Duration `yaml:"hold"` // default 0: only the answer's later look-ups
	// Provenance: whose look-ups count; default [search, list]. Social
	// (the identity's own feed and network) is never capped.
	Provenance []inspect.Provenance `yaml:"provenance"`
	// Classes are masked past the cap; default every class of the route.
	Classes []string `yaml:"classes"`
	Exempt  Exempt   `yaml:"exempt"`
	Mode    Mode     `yaml:"mode"` // enforce (default) or shadow
}

// Actions past a budget.
const (
	Mask  = "mask"
	Block = "block"
)

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	for i := range c.Budgets {
		b := &c.Budgets[i]
		if b.Action == "" {
			b.Action = Mask
		}
		if b.Identified == "" {
			b.Identified = DefaultIdentified(b.Facet)
		}
		if b.Mode == "" {
			b.Mode = Enforce
		}
	}
	for i := range c.Scopes {
		if c.Scopes[i].Name == "" {
			c.Scopes[i].Name = "scope-" + c.Scopes[i].Class
		}
	}
	if u := c.Unreferenced; u != nil {
		if u.Name == "" {
			u.Name = "unreferenced"
		}
		if u.Facet == "" {
			u.Facet = "account"
		}
		if u.Identified == "" {
			u.Identified = DefaultIdentified(u.Facet)
		}
		if u.TTL == 0 {
			u.TTL = 24 * time.Hour
		}
		if u.Action == "" {
			u.Action = Mask
		}
		if u.Mode == "" {
			u.Mode = Enforce
		}
	}
	if f := c.FanoutCap; f != nil {
		if f.Name == "" {
			f.Name = "fanout-cap"
		}
		if f.Provenance == nil {
			f.Provenance = []inspect.Provenance{inspect.Search, inspect.List}
		}
		if f.Mode == "" {
			f.Mode = Enforce
		}
	}
}

// Validate checks the section. Each error starts with its YAML path relative
// to the section ("budgets[1].window: ...").
func (c *Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	names := map[string]string{}
	name := func(at, n string) {
		switch {
		case n == "":
			bad(at, "a name is required")
		case refusal.Own(n):
			bad(at, "name %q is one of warden's own rules: the ledger could not tell the two apart", n)
		case !validName(n):
			bad(at, "name %q: use letters, digits, '_', '-' and '.'", n)
		case names[n] != "":
			bad(at, "name %q is already used by %s", n, names[n])
		default:
			names[n] = at
		}
	}
	for i := range c.Budgets {
		b := &c.Budgets[i]
		at := fmt.Sprintf("budgets[%d]", i)
		name(at+".name", b.Name)
		if _, ok := identify.ParseFacet(b.Facet); !ok {
			bad(at+".facet", "must be account, app, ip, net or fingerprint, got %q", b.Facet)
		}
		if b.Class == "" {
			bad(at+".class", "a class is required")
		}
		if b.Limit < 0 {
			bad(at+".limit", "must not be negative, got %d", b.Limit)
		}
		if b.Window <= 0 {
			bad(at+".window", "must be positive, got %v", b.Window)
		}
		if b.Action != Mask && b.Action != Block {
			bad(at+".action", "must be %q or %q, got %q", Mask, Block, b.Action)
		}
		if err := CheckIdentified(b.Facet, b.Identified); err != nil {
			bad(at+".identified", "%v", err)
		}
		if err := b.Mode.Validate(); err != nil {
			bad(at+".mode", "%v", err)
		}
		for j, t := range b.AccountAge {
			if t.YoungerThan <= 0 {
				bad(fmt.Sprintf("%s.account_age[%d].younger_than", at, j), "must be positive, got %v", t.YoungerThan)
			}
			if t.Limit < 0 {
				bad(fmt.Sprintf("%s.account_age[%d].limit", at, j), "must not be negative, got %d", t.Limit)
			}
		}
		if b.Provenance != nil && len(b.Provenance) == 0 {
			// Read as "every record", an empty list would silently make a
			// budget meant for some provenances count them all.
			bad(at+".provenance", "must name at least one of social, search, list, unreferenced (left out, the budget counts every record)")
		}
		inspect.CheckCounted(b.Provenance, func(j int, err error) { bad(fmt.Sprintf("%s.provenance[%d]", at, j), "%v", err) })
		if len(b.Provenance) > 0 && c.Unreferenced == nil {
			bad(at+".provenance", "needs the unreferenced section: its facet and ttl say whose link memory is read and for how long")
		}
		errs = append(errs, validExempt(at+".exempt", &b.Exempt)...)
	}
	for i := range c.Scopes {
		s := &c.Scopes[i]
		at := fmt.Sprintf("scopes[%d]", i)
		name(at+".name", s.Name)
		if s.Class == "" {
			bad(at+".class", "a class is required")
		}
		if s.Scope == "" {
			bad(at+".scope", "a scope is required")
		}
	}
	if u := c.Unreferenced; u != nil {
		name("unreferenced.name", u.Name)
		if _, ok := identify.ParseFacet(u.Facet); !ok {
			bad("unreferenced.facet", "must be account, app, ip, net or fingerprint, got %q", u.Facet)
		}
		if err := CheckIdentified(u.Facet, u.Identified); err != nil {
			bad("unreferenced.identified", "%v", err)
		}
		if u.TTL <= 0 {
			bad("unreferenced.ttl", "must be positive, got %v", u.TTL)
		}
		if u.Limit < 0 {
			bad("unreferenced.limit", "must not be negative, got %d", u.Limit)
		}
		if u.Window < 0 || u.Window == 0 && u.Limit > 0 {
			bad("unreferenced.window", "must be positive when a limit is set, got %v", u.Window)
		}
		if u.Action != Mask && u.Action != Block {
			bad("unreferenced.action", "must be %q or %q, got %q", Mask, Block, u.Action)
		}
		if err := u.Mode.Validate(); err != nil {
			bad("unreferenced.mode", "%v", err)
		}
		errs = append(errs, validExempt("unreferenced.exempt", &u.Exempt)...)
	}
	if f := c.FanoutCap; f != nil {
		name("fanout_cap.name", f.Name)
		if c.Unreferenced == nil {
			bad("fanout_cap", "needs the unreferenced section: its link memory (facet, ttl) remembers which answer showed each id")
		}
		if f.Limit < 1 || f.Limit > store.MaxFanoutLimit {
			bad("fanout_cap.limit", "must be 1 to %d, got %d", store.MaxFanoutLimit, f.Limit)
		}
		if f.Window <= 0 {
			bad("fanout_cap.window", "must be positive, got %v", f.Window)
		}
		if f.Hold < 0 {
			bad("fanout_cap.hold", "must not be negative, got %v", f.Hold)
		}
		if len(f.Provenance) == 0 {
			bad("fanout_cap.provenance", "name at least one of search, list")
		}
		for j, p := range f.Provenance {
			if p != inspect.Search && p != inspect.List {
				bad(fmt.Sprintf("fanout_cap.provenance[%d]", j), "must be search or list, got %q (the identity's own network is never capped; unreferenced look-ups meet the unreferenced rule)", p)
			} else if slices.Index(f.Provenance, p) < j {
				bad(fmt.Sprintf("fanout_cap.provenance[%d]", j), "%q is named twice", p)
			}
		}
		if err := f.Mode.Validate(); err != nil {
			bad("fanout_cap.mode", "%v", err)
		}
		errs = append(errs, validExempt("fanout_cap.exempt", &f.Exempt)...)
	}
	return errors.Join(errs...)
}

func validExempt(at string, e *Exempt) []error {
	var errs []error
	for i, c := range e.CIDRs {
		if _, err := parseCIDR(c); err != nil {
			errs = append(errs, fmt.Errorf("%s.cidrs[%d]: %w", at, i, err))
		}
	}
	return errs
}

// parseCIDR accepts a prefix or a single address.
func parseCIDR(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither a CIDR prefix nor an address", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c == '-' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}
