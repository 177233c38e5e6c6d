package canary

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/inspect"
)

// Config is the canary section. Canaries are on when KeyEnv is set.
type Config struct {
	// KeyEnv names the environment variable holding the keys, separated
	// by commas, at least 16 bytes each: the first signs new canaries, the
	// others (older keys) keep recognising the canaries they made.
	KeyEnv string `yaml:"key_env"`
	// IDs is the range canary ids are drawn from: one the upstream never
	// issues. The lab platform's ids are 1..N and sign-ups above N, all
	// below 2^24; the default, 1000000000..9999999999, is above them.
	IDs IDRange `yaml:"ids"`
	// Domains are the e-mail domains of canaries: real-looking ones.
	Domains []string `yaml:"domains"`
	// Phones are number ranges: a "+", digits, then "x" for each digit
	// drawn ("+121259xxxxx"). Every range must give numbers libphonenumber
	// judges valid (checked on load).
	Phones []string `yaml:"phones"`
	// Density is the share of list records that are anchors of a canary
	// slot; about half the slots are shown to any one identity, so
	// canaries are about Density/2 of the records of pages with room, and
	// none of a page the upstream filled (Room) (default 0.025: about
	// 1% of the followers pages of a lab walked at limit 50, most of them
	// shorter than a page; 0.015 before pages were kept to their limit,
	// which seeded every page).
	Density float64 `yaml:"density"`
	// MaxPerPage caps the canaries inserted into one answer (default 2).
	MaxPerPage int `yaml:"max_per_page"`
	// Bucket is how long an identity's canaries stay the same for a list
	// (default 24h): re-reading a page within a bucket changes nothing.
	Bucket time.Duration `yaml:"bucket"`
	// Cutoff bounds slot biases to [Cutoff, 1-Cutoff] (default 0.02).
	Cutoff float64 `yaml:"cutoff"`
	// Facets: the code is keyed by the first of these the request has,
	// the most specific first (default account, app, net).
	Facets []string `yaml:"facets"`
	// Routes are the route patterns canaries are answered on and seeded
	// into (defaults: the lab platform's).
	Routes Routes `yaml:"routes"`
	// Anonymous is who answers a request about a canary that carries no
	// verified account (default upstream).
	Anonymous Anonymous `yaml:"anonymous"`
	// Page is how the upstream pages its lists: canaries go only into the
	// room a page has below the size the caller asked (Room).
	Page Page `yaml:"page"`
}

// Page describes the upstream's list pages (shared/lab-platform.md: a
// limit from 1 to 50, default 20).
type Page struct {
	// Limit names the query parameter that asks a page's size (default
	// "limit"), unescaped, as the platform reads a query's keys.
	Limit string `yaml:"limit"`
	// Default is the size of a page asked without it (default 20).
	Default int `yaml:"default"`
	// Max is the largest size the upstream serves (default 50): a larger
	// one asked is never seeded (the upstream refuses it).
	Max int `yaml:"max"`
}

// Anonymous is canary.anonymous: who answers a request about a canary
// without a verified account. A canary must be answered as a real
// profile would be: where the upstream refuses such a request for every
// id (the lab platform answers 401), warden answering the canary with 200
// would tell it apart in one request.
type Anonymous string

const (
	// AnonymousUpstream sends it to the upstream, which answers it as it
	// answers any id without an account (the default).
	AnonymousUpstream Anonymous = "upstream"
	// AnonymousAnswer answers it from the key, for an upstream that
	// serves profiles and lists without an account.
	AnonymousAnswer Anonymous = "answer"
)

// IDRange is an inclusive range of decimal ids.
type IDRange struct {
	Min int64 `yaml:"min"`
	Max int64 `yaml:"max"`
}

// Routes name the route map's patterns by what they are. A profile
// pattern's parameter is {id}, by-username's {username}; Seed lists the
// list routes canaries are inserted into (followers, following, search).
type Routes struct {
	Profile    string `yaml:"profile"`
	ByUsername string `yaml:"by_username"`
	Followers  string `yaml:"followers"`
	Following  string `yaml:"following"`
	Posts      string `yaml:"posts"`
	Post       string `yaml:"post"`
	// Search is the search route: its answers get canaries that match
	// the query (SearchQuery names its parameter, default "q"), and it
	// answers a search for a canary's whole username with that canary.
	Search      string   `yaml:"search"`
	SearchQuery string   `yaml:"search_query"`
	Seed        []string `yaml:"seed"`
}

// Enabled reports whether canaries are configured.
func (c *Config) Enabled() bool { return c.KeyEnv != "" }

// SetDefaults fills what is unset.
func (c *Config) SetDefaults() {
	if c.IDs == (IDRange{}) {
		c.IDs = IDRange{Min: 1_000_000_000, Max: 9_999_999_999}
	}
	if len(c.Domains) == 0 {
		c.Domains = []string{"mail.example", "inbox.example", "post.example"}
	}
	if len(c.Phones) == 0 {
		c.Phones = []string{"+121259xxxxx", "+141559xxxxx", "+4474009xxxxx", "+49151239xxxxx", "+336129xxxxx", "+346129xxxxx"}
	}
	if c.Density == 0 {
		c.Density = 0.025
	}
	if c.MaxPerPage == 0 {
		c.MaxPerPage = 2
	}
	if c.Bucket == 0 {
		c.Bucket = 24 * time.Hour
	}
	if c.Cutoff == 0 {
		c.Cutoff = 0.02
	}
	if len(c.Facets) == 0 {
		c.Facets = []string{"account", "app", "net"}
	}
	if c.Anonymous == "" {
		c.Anonymous = AnonymousUpstream
	}
	if c.Page.Limit == "" {
		c.Page.Limit = "limit"
	}
	if c.Page.Max == 0 {
		c.Page.Max = 50
	}
	if c.Page.Default == 0 {
		c.Page.Default = min(20, c.Page.Max)
	}
	r := &c.Routes
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&r.Profile, "GET /v1/users/{id}")
	def(&r.ByUsername, "GET /v1/users/by-username/{username}")
	def(&r.Followers, "GET /v1/users/{id}/followers")
	def(&r.Following, "GET /v1/users/{id}/following")
	def(&r.Posts, "GET /v1/users/{id}/posts")
	def(&r.Post, "GET /v1/posts/{id}")
	def(&r.Search, "GET /v1/search")
	def(&r.SearchQuery, "q")
	if r.Seed == nil {
		r.Seed = []string{r.Followers, r.Following, r.Search}
	}
}

// maxPageMax bounds page.max: no API pages its lists by more.
const maxPageMax = 10000

// minSpacing is the fewest ids per canary index: an id of the range is a
// canary's with chance 1/spacing, and the id check rejects the others.
const minSpacing = 16

// Validate reports every problem, each starting with its key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...)))
	}
	if c.IDs.Min < 1 || c.IDs.Max <= c.IDs.Min {
		bad("ids", "min %d and max %d: need 1 <= min < max", c.IDs.Min, c.IDs.Max)
	} else if (c.IDs.Max-c.IDs.Min+1)/indexCount < minSpacing {
		bad("ids", "range of %d ids is too small: at least %d needed", c.IDs.Max-c.IDs.Min+1, int64(minSpacing)*indexCount)
	}
	for i, d := range c.Domains {
		if d == "" || strings.ContainsAny(d, "@ \t\"") || !strings.Contains(d, ".") {
			bad(fmt.Sprintf("domains[%d]", i), "%q is not a domain", d)
		}
	}
	for i, p := range c.Phones {
		if err := checkPhoneRange(p); err != nil {
			bad(fmt.Sprintf("phones[%d]", i), "%v", err)
		}
	}
	if !(c.Density > 0 && c.Density <= 0.1) {
		bad("density", "%v is not in (0, 0.1]", c.Density)
	}
	if c.MaxPerPage < 1 || c.MaxPerPage > 16 {
		bad("max_per_page", "%d is not between 1 and 16", c.MaxPerPage)
	}
	if c.Bucket < time.Minute {
		bad("bucket", "%v is below 1m", c.Bucket)
	}
	if !(c.Cutoff > 0 && c.Cutoff < 0.5) {
		bad("cutoff", "%v is not in (0, 0.5)", c.Cutoff)
	}
	for i, f := range c.Facets {
		if _, ok := identify.ParseFacet(f); !ok {
			bad(fmt.Sprintf("facets[%d]", i), "%q is not a facet", f)
		}
	}
	if c.Anonymous != AnonymousUpstream && c.Anonymous != AnonymousAnswer {
		bad("anonymous", "%q is not upstream or answer", c.Anonymous)
	}
	if c.Page.Max < 1 || c.Page.Max > maxPageMax {
		bad("page.max", "%d is not between 1 and %d", c.Page.Max, maxPageMax)
	} else if c.Page.Default < 1 || c.Page.Default > c.Page.Max {
		bad("page.default", "%d is not between 1 and page.max (%d)", c.Page.Default, c.Page.Max)
	}
	// A query's keys are compared unescaped (inspect.QueryValue, as the
	// platform reads them): an escaped name would never match, every page
	// would be taken at page.default, and one asked smaller would get
	// canaries past its size; a search query never read seeds no search.
	if err := inspect.CheckQueryName(c.Page.Limit); err != nil {
		bad("page.limit", "%v", err)
	}
	if err := inspect.CheckQueryName(c.Routes.SearchQuery); err != nil {
		bad("routes.search_query", "%v", err)
	}
	return errors.Join(errs...)
}

// checkPhoneRange checks a range's shape and that numbers across it are
// valid: the first, the last and a spread between.
func checkPhoneRange(p string) error {
	x := strings.IndexByte(p, 'x')
	if len(p) < 4 || p[0] != '+' || x < 2 || strings.Trim(p[x:], "x") != "" || strings.Trim(p[1:x], "0123456789") != "" {
		return fmt.Errorf("%q is not \"+\", digits, then x for each digit drawn", p)
	}
	n := len(p) - x
	if n < 3 || n > 9 {
		return fmt.Errorf("%q draws %d digits: between 3 and 9", p, n)
	}
	size := uint64(math.Pow10(n))
	for k := uint64(0); k <= 16; k++ {
		v := k * (size - 1) / 16
		s := fillPhone(p, x, v)
		num, err := phonenumbers.Parse(s, "")
		if err != nil || !phonenumbers.IsValidNumber(num) {
			return fmt.Errorf("%q gives %s, which libphonenumber does not judge valid", p, s)
		}
	}
	return nil
}

// fillPhone writes v's last digits over the x of pattern p (x is where
// they start).
func fillPhone(p string, x int, v uint64) string {
	b := []byte(p)
	for i := len(b) - 1; i >= x; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return string(b)
}
