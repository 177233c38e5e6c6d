package sim

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"sync"
)

// Served is what the clients of a run were served, counted from the
// answers they received (never from a gateway's records): the figures a
// ledger's answers are checked against. A person is an account (the sub
// of the token a request carried); answers to requests without one are
// only counted (Anonymous).
type Served struct {
	// Authors are the named authors (Options.Authors).
	Authors []string `json:"authors,omitempty"`
	// Reach is the distinct accounts served a post by any named author
	// (feed, posts lists, single posts); Impressions the posts served.
	Reach       int            `json:"reach"`
	Impressions int64          `json:"impressions"`
	PerAuthor   map[string]int `json:"reach_per_author,omitempty"`
	// Top are the accounts that received contact details (email or phone
	// not null and not "") of the most distinct real profiles (ids 1..N;
	// a gateway's canaries are not counted), most first (at most 10).
	Top       []AccountCount `json:"contact_top"`
	Anonymous int64          `json:"anonymous_answers"`
	// CutOff are requests sent whose answer was never read: the run's
	// clock ended them in flight. A gateway may have answered (and
	// recorded) them; the clients counted nothing of them.
	CutOff int64 `json:"cut_off"`

	contact map[string]int
}

// AccountCount is an account and how many distinct profiles' contact
// details it received.
type AccountCount struct {
	Account string `json:"account"`
	Count   int    `json:"count"`
}

// Contact is how many distinct profiles' contact details account received.
func (s *Served) Contact(account string) int { return s.contact[account] }

// ContactAccounts are the accounts that received any contact details,
// sorted.
func (s *Served) ContactAccounts() []string {
	out := make([]string, 0, len(s.contact))
	for a := range s.contact {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// tally counts Served while a run goes.
type tally struct {
	authors map[string]bool
	real    func(id string) bool

	mu          sync.Mutex
	subs        map[string]string              // token -> account
	viewers     map[string]map[string]struct{} // author -> accounts
	impressions int64
	contact     map[string]map[string]struct{} // account -> subjects
	anonymous   int64
	cutOff      int64
}

func newTally(authors []string, real func(string) bool) *tally {
	t := &tally{authors: map[string]bool{}, real: real, subs: map[string]string{},
		viewers: map[string]map[string]struct{}{}, contact: map[string]map[string]struct{}{}}
	for _, a := range authors {
		t.authors[a] = true
	}
	return t
}

// note counts one successful answer to a GET of path as id.
func (t *tally) note(id *ident, path string, a *answer) {
	if a.status != 200 {
		return
	}
	path, _, _ = strings.Cut(path, "?")
	kind := answerKind(path)
	if kind == 0 || (kind == kindPosts && len(t.authors) == 0) {
		return
	}
	acct := t.account(id.token)
	if acct == "" {
		t.mu.Lock()
		t.anonymous++
		t.mu.Unlock()
		return
	}
	switch kind {
	case kindProfile:
		var p struct {
			ID    string  `json:"id"`
			Email *string `json:"email"`
			Phone *string `json:"phone"`
		}
		if json.Unmarshal(a.body, &p) != nil || !t.real(p.ID) {
			return
		}
		// inspect's rule: a class is present when a field of it is not
		// null and not "".
		if (p.Email == nil || *p.Email == "") && (p.Phone == nil || *p.Phone == "") {
			return
		}
		t.mu.Lock()
		m := t.contact[acct]
		if m == nil {
			m = map[string]struct{}{}
			t.contact[acct] = m
		}
		m[p.ID] = struct{}{}
		t.mu.Unlock()
	case kindPosts:
		var authors []string
		if strings.HasPrefix(path, "/v1/posts/") {
			var p post
			if json.Unmarshal(a.body, &p) != nil {
				return
			}
			authors = []string{p.Author.ID}
		} else {
			var pp postPage
			if json.Unmarshal(a.body, &pp) != nil {
				return
			}
			for _, p := range pp.Posts {
				authors = append(authors, p.Author.ID)
			}
		}
		t.mu.Lock()
		for _, au := range authors {
			if !t.authors[au] {
				continue
			}
			t.impressions++
			m := t.viewers[au]
			if m == nil {
				m = map[string]struct{}{}
				t.viewers[au] = m
			}
			m[acct] = struct{}{}
		}
		t.mu.Unlock()
	}
}

const (
	kindProfile = 1 + iota
	kindPosts
)

// answerKind sorts the lab platform's routes: full profiles, answers of
// posts, or neither (0).
func answerKind(path string) int {
	switch {
	case path == "/v1/me", strings.HasPrefix(path, "/v1/users/by-username/"):
		return kindProfile
	case path == "/v1/feed", strings.HasPrefix(path, "/v1/posts/"):
		return kindPosts
	case strings.HasPrefix(path, "/v1/users/"):
		rest := strings.TrimPrefix(path, "/v1/users/")
		if !strings.Contains(rest, "/") {
			return kindProfile
		}
		if strings.HasSuffix(rest, "/posts") {
			return kindPosts
		}
	}
	return 0
}

// cut counts a request whose answer the end of the run left unread.
func (t *tally) cut() {
	t.mu.Lock()
	t.cutOff++
	t.mu.Unlock()
}

// account is the sub claim of a bearer token ("" without one).
func (t *tally) account(token string) string {
	if token == "" {
		return ""
	}
	t.mu.Lock()
	sub, ok := t.subs[token]
	t.mu.Unlock()
	if ok {
		return sub
	}
	parts := strings.Split(token, ".")
	if len(parts) == 3 {
		if b, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
			var c struct {
				Sub string `json:"sub"`
			}
			if json.Unmarshal(b, &c) == nil {
				sub = c.Sub
			}
		}
	}
	t.mu.Lock()
	t.subs[token] = sub
	t.mu.Unlock()
	return sub
}

// served is the run's count.
func (t *tally) served(authors []string) *Served {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := &Served{Authors: authors, Impressions: t.impressions, Anonymous: t.anonymous, CutOff: t.cutOff,
		PerAuthor: map[string]int{}, contact: map[string]int{}}
	all := map[string]struct{}{}
	for au, m := range t.viewers {
		s.PerAuthor[au] = len(m)
		for a := range m {
			all[a] = struct{}{}
		}
	}
	s.Reach = len(all)
	for a, m := range t.contact {
		s.contact[a] = len(m)
		s.Top = append(s.Top, AccountCount{a, len(m)})
	}
	slices.SortFunc(s.Top, func(a, b AccountCount) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return strings.Compare(a.Account, b.Account)
	})
	if len(s.Top) > 10 {
		s.Top = s.Top[:10]
	}
	return s
}
