package detect

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/ration"
)

// Config is the detect section.
type Config struct {
	// Enabled turns the detector on (default off).
	Enabled bool `yaml:"enabled"`
	// Class is the data class whose serving the rules count (default
	// contact).
	Class string `yaml:"class"`
	// BanDurations are the lengths of a value's first, second, ... ban;
	// the last repeats (default 10m, 1h, 24h, 168h).
	BanDurations []time.Duration `yaml:"ban_durations"`
	// MaxTracked bounds the identities (facet values) the detector keeps
	// state for; past it the least recently seen is dropped (by last
	// move to the front of the recency list, see doc.go) (default
	// 100000).
	MaxTracked int `yaml:"max_tracked"`
	// AddressAfter, when positive, bans an address once at least that many
	// accounts were seen on it within an hour and the detector banned every
	// one of them (default 0: off; addresses are banned only for anonymous
	// traffic). Its cost: real users who arrive on the address after a
	// fleet's accounts are refused with it.
	AddressAfter int `yaml:"address_after"`
	// Exempt identities are never banned (allow lists apply too).
	Exempt ration.Exempt `yaml:"exempt"`
	Rules  []Rule        `yaml:"rules"`
}

// Kind is what a rule watches.
type Kind string

// Rule kinds.
const (
	// Velocity: Class of more than Limit distinct people served to one
	// value of Facet within Window.
	Velocity Kind = "velocity"
	// Fanout: more than Limit distinct people's Class opened, within
	// Window, from the ids one list answer (search results, another
	// profile's followers) showed: a person opens one or two of a list, a
	// harvester all of them.
	Fanout Kind = "fanout"
	// Enumeration: more than Limit look-ups of ids never shown within
	// Window, when they are at least Ratio of the identity's look-ups.
	Enumeration Kind = "enumeration"
	// Persistence: more than Limit requests refused (429 or 403) within
	// Window: a client that keeps going at full speed after a refusal.
	Persistence Kind = "persistence"
	// Cohort: more than Limit accounts younger than Young served Class
	// from one value of Facet (net or fingerprint) within Window: sign-ups
	// made together that go straight for contact data.
	Cohort Kind = "cohort"
)

// Validate reports a value that is none of the choices.
func (k Kind) Validate() error {
	switch k {
	case Velocity, Fanout, Enumeration, Persistence, Cohort:
		return nil
	}
	return fmt.Errorf("%q is not velocity, fanout, enumeration, persistence or cohort", string(k))
}

// Rule is one detector rule.
type Rule struct {
	Name   string        `yaml:"name"`
	Kind   Kind          `yaml:"kind"`
	Facet  string        `yaml:"facet"` // velocity, persistence: whose (default account); cohort: net or fingerprint
	Limit  int           `yaml:"limit"`
	Window time.Duration `yaml:"window"`
	Ratio  float64       `yaml:"ratio"` // enumeration
	Young  time.Duration `yaml:"young"` // cohort: default 24h
	Mode   ration.Mode   `yaml:"mode"`  // enforce (default) or shadow: would have banned
	// Provenance (cohort only): the look-ups that count, by where the
	// account was shown the id (social, search, list, unreferenced).
	// Unset: every answer that served the class but a look-up of the
	// account's own feed and network (social). Set, only look-ups of these
	// provenances: [list, unreferenced] leaves out new users who search
	// for the people they know, many behind one carrier NAT's /24.
	Provenance []inspect.Provenance `yaml:"provenance"`
}

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.Class == "" {
		c.Class = "contact"
	}
	if len(c.BanDurations) == 0 {
		c.BanDurations = []time.Duration{10 * time.Minute, time.Hour, 24 * time.Hour, 7 * 24 * time.Hour}
	}
	if c.MaxTracked == 0 {
		c.MaxTracked = 100_000
	}
	for i := range c.Rules {
		r := &c.Rules[i]
		if r.Mode == "" {
			r.Mode = ration.Enforce
		}
		if r.Facet == "" {
			r.Facet = "account"
			if r.Kind == Cohort {
				r.Facet = "net"
			}
		}
		if r.Kind == Cohort && r.Young == 0 {
			r.Young = 24 * time.Hour
		}
	}
}

// Validate checks the section; each error starts with its YAML path
// relative to it.
func (c *Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	for i, d := range c.BanDurations {
		if d <= 0 {
			bad(fmt.Sprintf("ban_durations[%d]", i), "must be positive, got %v", d)
		}
	}
	if c.AddressAfter < 0 {
		bad("address_after", "must not be negative, got %d", c.AddressAfter)
	}
	if c.MaxTracked < 0 {
		bad("max_tracked", "must not be negative, got %d", c.MaxTracked)
	}
	for i, s := range c.Exempt.CIDRs {
		if _, err := parseCIDR(s); err != nil {
			bad(fmt.Sprintf("exempt.cidrs[%d]", i), "%v", err)
		}
	}
	names := map[string]bool{}
	for i := range c.Rules {
		r := &c.Rules[i]
		at := fmt.Sprintf("rules[%d]", i)
		switch {
		case r.Name == "":
			bad(at+".name", "a name is required")
		case names[r.Name]:
			bad(at+".name", "duplicate rule name %q", r.Name)
		}
		names[r.Name] = true
		if err := r.Kind.Validate(); err != nil {
			bad(at+".kind", "%v", err)
		}
		f, ok := identify.ParseFacet(r.Facet)
		switch {
		case !ok:
			bad(at+".facet", "must be account, app, ip, net or fingerprint, got %q", r.Facet)
		case r.Kind == Cohort && f != identify.FacetNet && f != identify.FacetFingerprint && f != identify.FacetIP:
			bad(at+".facet", "a cohort is of ip, net or fingerprint, got %q", r.Facet)
		}
		if r.Limit < 1 {
			bad(at+".limit", "must be at least 1, got %d", r.Limit)
		}
		if r.Window <= 0 {
			bad(at+".window", "must be positive, got %v", r.Window)
		}
		if r.Ratio < 0 || r.Ratio > 1 {
			bad(at+".ratio", "must be between 0 and 1, got %v", r.Ratio)
		}
		if r.Young < 0 {
			bad(at+".young", "must not be negative, got %v", r.Young)
		}
		if err := r.Mode.Validate(); err != nil {
			bad(at+".mode", "%v", err)
		}
		switch {
		case r.Provenance != nil && r.Kind != Cohort:
			bad(at+".provenance", "only a cohort rule counts by provenance, not %s", r.Kind)
		case r.Provenance != nil && len(r.Provenance) == 0:
			// Read as "unset", an empty list would silently count every look-up.
			bad(at+".provenance", "must name at least one of social, search, list, unreferenced (left out, every look-up but social counts)")
		}
		inspect.CheckCounted(r.Provenance, func(j int, err error) { bad(fmt.Sprintf("%s.provenance[%d]", at, j), "%v", err) })
	}
	return errors.Join(errs...)
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
