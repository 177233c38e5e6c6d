package inspect

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Config is the route map: per route, where records sit in the JSON answer
// and which fields carry which data class.
type Config struct {
	Routes []RouteConfig `yaml:"routes"`
	// MaxBody bounds the decoded size of an answer that is inspected.
	MaxBody int64 `yaml:"max_body"`
	// OnOversize and OnMalformed are "pass" (the answer goes out untouched,
	// uninspected, counted) or "refuse" (502 with a JSON error).
	OnOversize  string `yaml:"on_oversize"`
	OnMalformed string `yaml:"on_malformed"`
	// OnOtherType is the same choice for a successful answer with a body on
	// a mapped route that is not JSON (an upstream induced to answer in CSV,
	// XML or JSONP, say): inspection cannot read it.
	OnOtherType string `yaml:"on_other_type"`
}

// RouteConfig maps one route.
type RouteConfig struct {
	// Route is a pattern in net/http.ServeMux syntax: "GET /v1/users/{id}".
	Route string `yaml:"route"`
	// Records are paths to the records in the answer: "$", "$.users[*]",
	// "$.posts[*].author".
	Records []string `yaml:"records"`
	// ID, Author and the class fields are paths relative to a record:
	// "id", "author.id".
	ID      string              `yaml:"id"`
	Author  string              `yaml:"author"`
	Classes map[string][]string `yaml:"classes"`
	// Links are absolute paths to ids the answer shows the caller.
	Links []string `yaml:"links"`
	// Lookup names the path parameter that is a direct look-up of a subject
	// id (checked against the ids earlier answers linked to).
	Lookup string `yaml:"lookup"`
	// List names the path parameter that says whose list a list answer is;
	// Cursor the query parameter that says which page.
	List   string `yaml:"list"`
	Cursor string `yaml:"cursor"`
	// Provenance is how the ids in Links were shown to the caller: list
	// (another profile's lists; the default), search (search results) or
	// social (the caller's own feed, following, followers). A look-up of
	// one of them later carries it (see package ration).
	Provenance Provenance `yaml:"provenance"`
	// OwnProvenance is the provenance instead when the List parameter is
	// the caller's own account ("GET /v1/users/{id}/followers" with id the
	// caller: its own followers, social). Default: Provenance.
	OwnProvenance Provenance `yaml:"own_provenance"`
}

// Provenance is where an identity was shown an id: the kind of answer that
// linked to it. Routes name list, search or social; a budget may also name
// unreferenced (never shown).
type Provenance string

// Provenances, from the best to the worst.
const (
	Social       Provenance = "social"
	Search       Provenance = "search"
	List         Provenance = "list"
	Unreferenced Provenance = "unreferenced"
)

// Validate reports a value that is none of the provenances.
func (p Provenance) Validate() error {
	switch p {
	case Social, Search, List, Unreferenced:
		return nil
	}
	return fmt.Errorf("%q is not social, search, list or unreferenced", string(p))
}

// CheckCounted checks the provenances a rule counts (a budget's, a
// cohort's): each one of the four, none named twice; bad gets the index
// and the error of each that is not.
func CheckCounted(ps []Provenance, bad func(j int, err error)) {
	for j, p := range ps {
		if err := p.Validate(); err != nil {
			bad(j, err)
		} else if slices.Index(ps, p) < j {
			bad(j, fmt.Errorf("%q is named twice", p))
		}
	}
}

// validShown reports a value a route cannot show ids with.
func (p Provenance) validShown() error {
	switch p {
	case Social, Search, List:
		return nil
	}
	return fmt.Errorf("%q is not social, search or list", string(p))
}

// DefaultMaxBody is the inspected size bound when none is configured.
const DefaultMaxBody = 1 << 20

// Policies for oversize, malformed and other-type answers.
const (
	Pass   = "pass"
	Refuse = "refuse"
)

// ClassNames is every class the route map names, each once, sorted: what
// a rule's class, a query's --class or a page's ranking may name.
func (c *Config) ClassNames() []string {
	var names []string
	for _, r := range c.Routes {
		for name := range r.Classes {
			if !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
	}
	slices.Sort(names)
	return names
}

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.MaxBody == 0 {
		c.MaxBody = DefaultMaxBody
	}
	if c.OnOversize == "" {
		c.OnOversize = Pass
	}
	if c.OnMalformed == "" {
		c.OnMalformed = Pass
	}
	if c.OnOtherType == "" {
		c.OnOtherType = Pass
	}
}

// Validate checks the route map. Each error starts with its YAML path
// relative to the section ("routes[2].records[0]: ...").
func (c *Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	if c.MaxBody < 0 {
		bad("max_body", "must not be negative, got %d", c.MaxBody)
	}
	for _, p := range [...]struct{ name, v string }{{"on_oversize", c.OnOversize}, {"on_malformed", c.OnMalformed}, {"on_other_type", c.OnOtherType}} {
		if p.v != "" && p.v != Pass && p.v != Refuse {
			bad(p.name, "must be %q or %q, got %q", Pass, Refuse, p.v)
		}
	}
	seen := map[string]int{}
	for i := range c.Routes {
		r := &c.Routes[i]
		at := fmt.Sprintf("routes[%d]", i)
		pat, err := parsePattern(r.Route)
		if err != nil {
			bad(at+".route", "%v", err)
		} else {
			key := pat.method + " " + pat.shape()
			if j, dup := seen[key]; dup {
				bad(at+".route", "%q matches the same requests as routes[%d]", r.Route, j)
			}
			seen[key] = i
			if r.Cursor != "" {
				if err := CheckQueryName(r.Cursor); err != nil {
					bad(at+".cursor", "%v", err) // never read: every page of the list recorded as its first
				}
			}
			for _, p := range [...]struct{ name, v string }{{"lookup", r.Lookup}, {"list", r.List}} {
				if p.v != "" && pat.param(p.v) < 0 {
					bad(at+"."+p.name, "%q is not a parameter of %q", p.v, r.Route)
				}
			}
		}
		for j, p := range r.Records {
			if _, err := parsePath(p, true); err != nil {
				bad(fmt.Sprintf("%s.records[%d]", at, j), "%v", err)
			}
		}
		if len(r.Records) == 0 && (r.ID != "" || r.Author != "" || len(r.Classes) > 0) {
			bad(at+".records", "id, author and classes need at least one record path")
		}
		if r.ID != "" {
			if _, err := parsePath(r.ID, false); err != nil {
				bad(at+".id", "%v", err)
			}
		}
		if r.Author != "" {
			if _, err := parsePath(r.Author, false); err != nil {
				bad(at+".author", "%v", err)
			}
		}
		if len(r.Classes) > maxClasses {
			bad(at+".classes", "at most %d classes, got %d", maxClasses, len(r.Classes))
		}
		for _, name := range sortedKeys(r.Classes) {
			if !validName(name) {
				bad(at+".classes", "class name %q: use letters, digits, '_' and '-'", name)
			}
			if len(r.Classes[name]) == 0 {
				bad(at+".classes."+name, "lists no fields")
			}
			if len(r.Classes[name]) > maxClassFields {
				bad(at+".classes."+name, "at most %d fields, got %d", maxClassFields, len(r.Classes[name]))
			}
			for j, f := range r.Classes[name] {
				if _, err := parsePath(f, false); err != nil {
					bad(fmt.Sprintf("%s.classes.%s[%d]", at, name, j), "%v", err)
				}
			}
		}
		for j, p := range r.Links {
			if _, err := parsePath(p, true); err != nil {
				bad(fmt.Sprintf("%s.links[%d]", at, j), "%v", err)
			}
		}
		if r.Provenance != "" {
			if err := r.Provenance.validShown(); err != nil {
				bad(at+".provenance", "%v", err)
			} else if len(r.Links) == 0 {
				bad(at+".provenance", "says how the ids in links were shown; the route has no links")
			}
		}
		if r.OwnProvenance != "" {
			if err := r.OwnProvenance.validShown(); err != nil {
				bad(at+".own_provenance", "%v", err)
			} else if r.List == "" {
				bad(at+".own_provenance", "applies when the list parameter is the caller's account; the route has no list")
			} else if len(r.Links) == 0 {
				bad(at+".own_provenance", "says how the ids in links were shown; the route has no links")
			}
		}
	}
	return errors.Join(errs...)
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// step is one step of a path: a member name, or "[*]" (every element).
type step struct {
	name string
	elem bool
}

// parsePath parses "$", "$.a[*].b" (absolute) or "a.b" (relative).
func parsePath(p string, absolute bool) ([]step, error) {
	s := p
	if absolute {
		if !strings.HasPrefix(s, "$") {
			return nil, fmt.Errorf("path %q must start with $", p)
		}
		s = s[1:]
	} else {
		if s == "" {
			return nil, errors.New("empty path")
		}
		if strings.HasPrefix(s, "$") {
			return nil, fmt.Errorf("path %q is relative to the record: leave out $", p)
		}
		s = "." + s
	}
	var steps []step
	for s != "" {
		switch {
		case strings.HasPrefix(s, "[*]"):
			steps = append(steps, step{elem: true})
			s = s[3:]
		case s[0] == '.':
			s = s[1:]
			n := strings.IndexAny(s, ".[")
			if n < 0 {
				n = len(s)
			}
			name := s[:n]
			if name == "" {
				return nil, fmt.Errorf("path %q has an empty member name", p)
			}
			if strings.ContainsAny(name, `"\*] `) {
				return nil, fmt.Errorf("path %q: member name %q has a character paths do not support", p, name)
			}
			steps = append(steps, step{name: name})
			s = s[n:]
		default:
			return nil, fmt.Errorf("path %q: expected .name or [*] at %q", p, s)
		}
	}
	if !absolute && len(steps) > 0 && steps[len(steps)-1].elem {
		return nil, fmt.Errorf("path %q must name a member", p)
	}
	return steps, nil
}
