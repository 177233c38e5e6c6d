package inspect

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/warden-gw/warden/internal/refusal"
)

// maxClasses bounds the classes of one route (a ClassSet is a bit set).
const maxClasses = 64

// maxClassFields bounds one class's fields: spans name a field by a byte.
const maxClassFields = 256

// ClassSet is a set of a route's classes, bit i for Route.Classes()[i].
type ClassSet uint64

// Has reports whether class i is in the set.
func (s ClassSet) Has(i int) bool { return s&(1<<uint(i)) != 0 }

// Map is a compiled route map. It is safe for concurrent use.
type Map struct {
	cfg    Config
	routes []*Route // most specific first
	codec  codec
}

// Route is one compiled route of a Map.
type Route struct {
	Pattern string
	pat     pattern
	cfg     RouteConfig
	classes []string   // sorted
	fields  [][]string // per class, field paths as configured
	// fieldJSON holds each class field's name as a JSON string, for the
	// masking note; indexed like fields.
	fieldJSON [][]string
	root      *node
	lookup    int        // index of the lookup param, -1
	list      int        // index of the list param, -1
	shown     Provenance // of the ids in links (default list)
	ownShown  Provenance // the same when the list is the caller's
	nrec      int        // number of record paths
	recNodes  []*node    // per record path, the node its records open at
}

// Classes lists the route's class names; ClassSet bits index it.
func (r *Route) Classes() []string { return r.classes }

// Class returns the index of a class name, -1 when the route has none.
func (r *Route) Class(name string) int {
	i, ok := slices.BinarySearch(r.classes, name)
	if !ok {
		return -1
	}
	return i
}

// Config is the route's configuration.
func (r *Route) Config() *RouteConfig { return &r.cfg }

// node is one position in the answer's JSON tree that a path reaches.
type node struct {
	keys []string
	kids []*node
	elem *node
	rec  int // record path index opened here, -1
	acts []action
	// kw matches member names against the body without scanning them
	// first; built by prepare once the tree is complete. first[c] is the
	// first name starting with byte c, keyWord.next chains the others.
	kw    []keyWord
	first *[256]*keyWord
	// acts split by prepare: class spans, and the id-like actions that
	// share one copy of the value.
	cls []classAct
	ids []action
}

// classAct is an actClass action in the form a span records it.
type classAct struct {
	rec          int32
	class, field uint8
}

// keyWord is a member name plus its closing quote, as the scanner finds it
// in the body: the first sixteen bytes as two little-endian words under
// masks, the rest as a string.
type keyWord struct {
	val, mask   uint64
	val2, mask2 uint64
	rest        string
	n           int // len(name)
	next        *keyWord
	kid         *node
}

// prepare builds the key words of n and its descendants. Names with a byte
// a JSON string cannot hold raw (a control character) are left out: only
// an escaped name in a body can match them, and the scanner decodes such
// names and compares them with n.keys (scanner.kid).
func (n *node) prepare() {
	n.kw = n.kw[:0]
	for i, k := range n.keys {
		if n.kids[i] != nil {
			n.kids[i].prepare()
		}
		if strings.ContainsFunc(k, func(c rune) bool { return c < 0x20 || c == '"' || c == '\\' }) {
			continue
		}
		q := k + `"`
		var w keyWord
		for j := 0; j < len(q) && j < 16; j++ {
			if j < 8 {
				w.val |= uint64(q[j]) << (8 * j)
				w.mask |= 0xff << (8 * j)
			} else {
				w.val2 |= uint64(q[j]) << (8 * (j - 8))
				w.mask2 |= 0xff << (8 * (j - 8))
			}
		}
		if len(q) > 16 {
			w.rest = q[16:]
		}
		w.n, w.kid = len(k), n.kids[i]
		n.kw = append(n.kw, w)
	}
	n.cls, n.ids = n.cls[:0], n.ids[:0]
	for _, a := range n.acts {
		if a.kind == actClass {
			n.cls = append(n.cls, classAct{rec: int32(a.rec), class: uint8(a.class), field: uint8(a.field)})
		} else {
			n.ids = append(n.ids, a)
		}
	}
	n.first = &noKeys
	if len(n.kw) > 0 {
		n.first = new([256]*keyWord)
		for j := len(n.kw) - 1; j >= 0; j-- { // chains in key order
			c := byte(n.kw[j].val)
			n.kw[j].next = n.first[c]
			n.first[c] = &n.kw[j]
		}
	}
	if n.elem != nil {
		n.elem.prepare()
	}
}

type actKind uint8

const (
	actID actKind = iota
	actAuthor
	actClass
	actLink
)

// action is something to record about the value at a node. rec is the
// record path the action belongs to (for actLink, -1).
type action struct {
	kind  actKind
	rec   int
	class int
	field int
}

func newNode() *node { return &node{rec: -1} }

// noKeys is the name table of a node without names.
var noKeys [256]*keyWord

// noNode stands for a container no path reaches, so that the scanner's
// innermost container always has a node (read-only, shared).
var noNode = &node{rec: -1, first: &noKeys}

func (n *node) child(s step) *node {
	if s.elem {
		if n.elem == nil {
			n.elem = newNode()
		}
		return n.elem
	}
	for i, k := range n.keys {
		if k == s.name {
			return n.kids[i]
		}
	}
	c := newNode()
	n.keys = append(n.keys, s.name)
	n.kids = append(n.kids, c)
	return c
}

func (n *node) walk(steps []step) *node {
	for _, s := range steps {
		n = n.child(s)
	}
	return n
}

// Compile validates cfg (after SetDefaults) and builds its Map.
func Compile(cfg Config) (*Map, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("inspect: %w", err)
	}
	m := &Map{cfg: cfg}
	for i := range cfg.Routes {
		r, err := compileRoute(cfg.Routes[i])
		if err != nil {
			return nil, fmt.Errorf("inspect: routes[%d]: %w", i, err)
		}
		m.routes = append(m.routes, r)
	}
	slices.SortStableFunc(m.routes, func(a, b *Route) int { return morePrecise(&a.pat, &b.pat) })
	return m, nil
}

func compileRoute(rc RouteConfig) (*Route, error) {
	pat, err := parsePattern(rc.Route)
	if err != nil {
		return nil, err
	}
	r := &Route{Pattern: rc.Route, pat: pat, cfg: rc, root: newNode(), lookup: -1, list: -1, nrec: len(rc.Records)}
	if rc.Lookup != "" {
		r.lookup = pat.param(rc.Lookup)
	}
	if rc.List != "" {
		r.list = pat.param(rc.List)
	}
	r.shown = cmp.Or(rc.Provenance, List)
	r.ownShown = cmp.Or(rc.OwnProvenance, r.shown)
	r.classes = sortedKeys(rc.Classes)
	for _, c := range r.classes {
		r.fields = append(r.fields, rc.Classes[c])
		var js []string
		for _, f := range rc.Classes[c] {
			js = append(js, jsonString(f))
		}
		r.fieldJSON = append(r.fieldJSON, js)
	}
	rel := func(p string) []step {
		if p == "" {
			return nil
		}
		s, _ := parsePath(p, false)
		return s
	}
	for ri, rp := range rc.Records {
		steps, _ := parsePath(rp, true)
		rn := r.root.walk(steps)
		if rn.rec >= 0 {
			return nil, fmt.Errorf("records[%d]: path %q given twice", ri, rp)
		}
		rn.rec = ri
		r.recNodes = append(r.recNodes, rn)
		if s := rel(rc.ID); s != nil {
			n := rn.walk(s)
			n.acts = append(n.acts, action{kind: actID, rec: ri})
		}
		if s := rel(rc.Author); s != nil {
			n := rn.walk(s)
			n.acts = append(n.acts, action{kind: actAuthor, rec: ri})
		}
		for ci := range r.classes {
			for fi, f := range r.fields[ci] {
				n := rn.walk(rel(f))
				n.acts = append(n.acts, action{kind: actClass, rec: ri, class: ci, field: fi})
			}
		}
	}
	for _, lp := range rc.Links {
		steps, _ := parsePath(lp, true)
		n := r.root.walk(steps)
		n.acts = append(n.acts, action{kind: actLink, rec: -1})
	}
	r.root.prepare()
	return r, nil
}

// Match is a route matched to one request, with its path parameters.
type Match struct {
	Route *Route
	vals  [maxParams]string
}

// Param returns a path parameter's value (not unescaped), "" when absent.
func (m *Match) Param(name string) string {
	if m.Route == nil {
		return ""
	}
	if i := m.Route.pat.param(name); i >= 0 {
		return m.vals[i]
	}
	return ""
}

// Lookup is the value of the route's lookup parameter, "" when none.
func (m *Match) Lookup() string {
	if m.Route == nil || m.Route.lookup < 0 {
		return ""
	}
	return m.vals[m.Route.lookup]
}

// Shown is the provenance of the ids this answer links to, for the caller
// with account (""; anonymous): the route's own_provenance when its list
// parameter is that account, else its provenance (default list).
func (m *Match) Shown(account string) Provenance {
	if m.Route == nil {
		return List
	}
	if account != "" && m.Route.list >= 0 && m.vals[m.Route.list] == account {
		return m.Route.ownShown
	}
	return m.Route.shown
}

// List is the value of the route's list parameter, "" when none.
func (m *Match) List() string {
	if m.Route == nil || m.Route.list < 0 {
		return ""
	}
	return m.vals[m.Route.list]
}

// Match finds the route for a request; path excludes the query. It does not
// allocate.
func (m *Map) Match(method, path string) (Match, bool) {
	var mt Match
	n := strings.Count(path, "/")
	for _, r := range m.routes {
		if r.pat.fits(n) && r.pat.match(method, path, &mt.vals) {
			mt.Route = r
			return mt, true
		}
	}
	return Match{}, false
}

// Config is the map's configuration with defaults applied.
func (m *Map) Config() *Config { return &m.cfg }

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// jsonString quotes s as a JSON string.
func jsonString(s string) string { return string(refusal.AppendString(nil, s)) }
