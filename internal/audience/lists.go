package audience

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Lists pages through an account's follower list on the upstream.
type Lists struct {
	Upstream   string // base URL: http://127.0.0.1:8081
	Path       string // the list route's path: /v1/users/{id}/followers
	Param      string // its path parameter naming whose list: id
	Records    string // the answer's key holding the records: users
	ID         string // each record's id field (dotted): id
	Cursor     string // the query parameter naming a page: cursor
	NextCursor string // the answer's key holding the next page's cursor: next_cursor
	PageSize   int    // limit=N on each request (0: the upstream's default)
	Credential string // the Authorization header's value
	// Mint, when set, makes the credential at now and says when it
	// expires; it is asked again once three quarters of a credential's
	// life have passed, so that a run paging for longer than a minted
	// token lives never sends an expired one. Nil: Credential is used as
	// given (a token the caller holds).
	Mint     func(now time.Time) (credential string, expires time.Time, err error)
	Rate     float64
	MaxPages int // per account; past it the count is refused, not cut short
	Client   *http.Client
	// Retries is how many times a page is asked again after a failure
	// that may pass (a 5xx or 429, a timeout, a connection that failed),
	// each after Backoff, doubled every time (0: 500ms), and in its slot
	// of Rate; past them the count fails, naming the account and page.
	// Another failure (a 4xx, an answer that does not parse) is not retried.
	Retries int
	Backoff time.Duration

	next     time.Time // the earliest the next request may go
	renew    time.Time // when Mint is asked again
	Requests int
}

// FromRoute fills Path, Param, Records and ID from a route map entry
// ("GET /v1/users/{id}/followers", list: id, records: ["$.users[*]"],
// id: id, cursor: cursor).
func (l *Lists) FromRoute(route, list string, records []string, id, cursor string) error {
	method, path, ok := strings.Cut(route, " ")
	if !ok || method != http.MethodGet {
		return fmt.Errorf("audience: route %q is not GET PATH", route)
	}
	if list == "" || !strings.Contains(path, "{"+list+"}") {
		return fmt.Errorf("audience: route %q names no list parameter {%s}", route, list)
	}
	if len(records) != 1 || !strings.HasPrefix(records[0], "$.") || !strings.HasSuffix(records[0], "[*]") {
		return fmt.Errorf("audience: route %q: records %v are not one $.KEY[*]", route, records)
	}
	key := strings.TrimSuffix(strings.TrimPrefix(records[0], "$."), "[*]")
	if strings.ContainsAny(key, ".[]") || id == "" || cursor == "" {
		return fmt.Errorf("audience: route %q: records %q, id %q or cursor %q cannot be paged", route, records[0], id, cursor)
	}
	l.Path, l.Param, l.Records, l.ID, l.Cursor = path, list, key, id, cursor
	return nil
}

// Followers calls add with the id of each follower of account, page by
// page, and returns how many pages it read.
func (l *Lists) Followers(ctx context.Context, account string, add func(id string)) (int, error) {
	base, err := url.Parse(strings.TrimSuffix(l.Upstream, "/"))
	if err != nil {
		return 0, fmt.Errorf("audience: upstream %q: %w", l.Upstream, err)
	}
	path := strings.ReplaceAll(l.Path, "{"+l.Param+"}", url.PathEscape(account))
	cursor := ""
	for page := 0; page < l.MaxPages; page++ {
		u := *base
		u.Path += path
		q := url.Values{}
		if cursor != "" {
			q.Set(l.Cursor, cursor)
		}
		if l.PageSize > 0 {
			q.Set("limit", strconv.Itoa(l.PageSize))
		}
		u.RawQuery = q.Encode()
		body, err := l.page(ctx, u.String())
		if err != nil {
			return page, fmt.Errorf("audience: followers of %s, page %d: %w", account, page+1, err)
		}
		var ans map[string]json.RawMessage
		if err := json.Unmarshal(body, &ans); err != nil {
			return page, fmt.Errorf("audience: followers of %s, page %d: %w", account, page+1, err)
		}
		// Numbers as written: an id above 2^53 read as a float64 would be
		// rounded onto another's.
		var recs []map[string]any
		dec := json.NewDecoder(bytes.NewReader(ans[l.Records]))
		dec.UseNumber()
		if err := dec.Decode(&recs); err != nil {
			return page, fmt.Errorf("audience: followers of %s, page %d: %q: %w", account, page+1, l.Records, err)
		}
		for _, r := range recs {
			id, ok := field(r, l.ID)
			if !ok {
				return page, fmt.Errorf("audience: followers of %s, page %d: a record without %q", account, page+1, l.ID)
			}
			add(id)
		}
		var next *string
		if raw, ok := ans[l.NextCursor]; ok {
			if err := json.Unmarshal(raw, &next); err != nil {
				return page, fmt.Errorf("audience: followers of %s, page %d: %q: %w", account, page+1, l.NextCursor, err)
			}
		}
		if next == nil || *next == "" {
			return page + 1, nil
		}
		cursor = *next
	}
	return l.MaxPages, fmt.Errorf("audience: followers of %s: more than %d pages (raise --max-pages); no count given", account, l.MaxPages)
}

// field reads a dotted path to a string or number (a json.Number: its
// digits as the upstream wrote them).
func field(r map[string]any, path string) (string, bool) {
	var v any = r
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return "", false
		}
		v = m[k]
	}
	switch x := v.(type) {
	case string:
		return x, x != ""
	case json.Number:
		return x.String(), true
	}
	return "", false
}

// page asks for one page, again after a failure that may pass, at most
// l.Retries times.
func (l *Lists) page(ctx context.Context, u string) ([]byte, error) {
	wait := cmp.Or(l.Backoff, 500*time.Millisecond)
	for try := 0; ; try++ {
		body, err := l.get(ctx, u)
		if err == nil || !transient(err) || ctx.Err() != nil {
			return body, err
		}
		if try == l.Retries {
			if try > 0 {
				return nil, fmt.Errorf("%w (asked %d times)", err, try+1)
			}
			return nil, err
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
		wait *= 2
	}
}

// sleep waits d, or until ctx is done (its error).
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// statusError is an answer other than 200.
type statusError struct {
	status int
	msg    string
}

func (e *statusError) Error() string { return e.msg }

// transient reports whether err may pass when asked again: a 5xx or 429,
// or no answer (a timeout, a connection refused or cut).
func transient(err error) bool {
	var se *statusError
	if errors.As(err, &se) {
		return se.status >= 500 || se.status == http.StatusTooManyRequests
	}
	// No answer, or one cut short: http.Client.Do's errors, reading the body.
	var ue *url.Error
	var ne net.Error
	return errors.As(err, &ue) || errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF)
}

// get waits for the rate's next slot, then asks.
func (l *Lists) get(ctx context.Context, u string) ([]byte, error) {
	if l.Rate > 0 {
		now := time.Now()
		if wait := l.next.Sub(now); wait > 0 {
			if err := sleep(ctx, wait); err != nil {
				return nil, err
			}
			now = l.next
		}
		l.next = now.Add(time.Duration(float64(time.Second) / l.Rate))
	}
	if err := l.credential(time.Now()); err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if l.Credential != "" {
		req.Header.Set("Authorization", l.Credential)
	}
	req.Header.Set("Accept", "application/json")
	c := l.Client
	if c == nil {
		c = http.DefaultClient
	}
	l.Requests++
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(string(body))
		if len(msg) > 200 {
			msg = msg[:200]
		}
		return nil, &statusError{status: resp.StatusCode, msg: resp.Status + ": " + msg}
	}
	return body, nil
}

// credential mints the credential when Mint is set and the one held is
// missing or three quarters through its life.
func (l *Lists) credential(now time.Time) error {
	if l.Mint == nil || (l.Credential != "" && now.Before(l.renew)) {
		return nil
	}
	c, exp, err := l.Mint(now)
	if err != nil {
		return fmt.Errorf("mint the service credential: %w", err)
	}
	l.Credential, l.renew = c, now.Add(exp.Sub(now)*3/4)
	return nil
}

var errNoAccounts = errors.New("audience: give the accounts")
