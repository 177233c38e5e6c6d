package clickhouse

import (
	"github.com/warden-gw/warden/internal/backendauth"

	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Client speaks ClickHouse's HTTP interface, which every version answers
// alike (18.16 included): queries in the URL, inserts as RowBinary bodies,
// long id lists as external data (temporary tables sent with the query).
// It is safe for concurrent use.
type Client struct {
	addrs    []string
	scheme   string
	db       string
	user     string
	password string
	http     *http.Client
	next     atomic.Uint32 // the address that answered last
}

// NewClient connects nothing yet: requests go to cfg.Addrs in turn.
func NewClient(cfg Config) (*Client, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("clickhouse: config: %w", err)
	}
	pw, err := backendauth.Password(cfg.PasswordFile, cfg.PasswordEnv)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	tc, err := cfg.TLS.Config()
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	scheme := "http"
	if tc != nil {
		scheme = "https"
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tc,
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     60 * time.Second,
		DisableCompression:  true,
		// Batches are megabytes: write them in large pieces, not the
		// default 4 KiB (a write system call each).
		WriteBufferSize: 256 << 10,
	}
	return &Client{addrs: cfg.Addrs, scheme: scheme, db: cfg.Database, user: cfg.User, password: pw,
		http: &http.Client{Transport: tr, Timeout: cfg.Timeout}}, nil
}

// Table is external data: a temporary table named Name with one String
// column "id", sent with a query (WHERE author IN _a).
type Table struct {
	Name string
	IDs  []string
}

// Error is ClickHouse's answer to a query it refused (it was reached).
// It prints the query's short name (queryName), never its SQL: a query's
// SQL holds the ids asked about and is long; SQL keeps it for a debug
// log.
type Error struct {
	Status int
	Query  string // the query's short name: "SELECT FROM views"
	Addr   string // host:port that answered
	Msg    string
	SQL    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("clickhouse: %s at %s: %s", e.Query, e.Addr, e.Msg)
}

// UnreachableError is a query that reached no address: which query (its
// short name), the addresses tried and what failed at each, without the
// request's URL (net/http's errors print it whole, the SQL in its query
// string); SQL keeps the query for a debug log.
type UnreachableError struct {
	Query string
	Tried []string // "host:port: what failed"
	SQL   string
	err   error // the last address's
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("clickhouse: %s: %s", e.Query, strings.Join(e.Tried, "; "))
}

func (e *UnreachableError) Unwrap() error { return e.err }

// SQLOf is the SQL of the query err failed on, "" when err is not a
// query's (for a debug log: errors print the query's name only).
func SQLOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.SQL
	}
	var u *UnreachableError
	if errors.As(err, &u) {
		return u.SQL
	}
	return ""
}

// queryName is a query's short name for errors: its verb and the table
// it reads or writes ("SELECT FROM views", "INSERT INTO accesses",
// "CREATE TABLE budgets"), without ids, values or conditions.
func queryName(sql string) string {
	words := strings.Fields(sql)
	if len(words) == 0 {
		return "empty query"
	}
	verb := strings.ToUpper(words[0])
	for i := 1; i+1 < len(words); i++ {
		switch w := strings.ToUpper(words[i]); w {
		case "FROM", "INTO", "TABLE", "DATABASE":
			j := i + 1
			if strings.EqualFold(words[j], "IF") { // IF [NOT] EXISTS
				for j < len(words) && !strings.EqualFold(words[j], "EXISTS") {
					j++
				}
				j++
			}
			if j >= len(words) {
				return verb
			}
			// FROM (SELECT ... FROM views ...): the subquery's FROM
			// names the table.
			if name := strings.Trim(words[j], "()`;"); name != "" && !strings.HasPrefix(words[j], "(") {
				return verb + " " + w + " " + name
			}
		}
	}
	return verb
}

// transportError is what failed reaching an address, without the URL
// net/http's *url.Error prints (the query's SQL).
func transportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Do runs query with body as its input (an INSERT's rows) and returns
// its output. With db false the query names its database itself.
func (c *Client) Do(ctx context.Context, query string, body []byte, ext ...Table) ([]byte, error) {
	return c.do(ctx, query, body, true, nil, ext)
}

func (c *Client) do(ctx context.Context, query string, body []byte, useDB bool, settings url.Values, ext []Table) ([]byte, error) {
	v := url.Values{}
	for k, s := range settings {
		v[k] = s
	}
	if useDB {
		v.Set("database", c.db)
	}
	var ctype string
	if len(ext) > 0 {
		// The query goes in the URL, each table as a file part.
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		for _, t := range ext {
			v.Set(t.Name+"_structure", "id String")
			v.Set(t.Name+"_format", "TabSeparated")
			w, _ := mw.CreateFormFile(t.Name, t.Name)
			for _, id := range t.IDs {
				io.WriteString(w, tsvEscape(id))
				w.Write([]byte{'\n'})
			}
		}
		mw.Close()
		body, ctype = buf.Bytes(), mw.FormDataContentType()
	}
	v.Set("query", query)
	out, _, err := c.post(ctx, query, v, body, ctype)
	return out, err
}

// insert runs an INSERT with body as its rows in the client's database.
// free says the body is no longer read by the transport (every request
// that carried it closed it), so its buffer may be reused; it is false
// after a failure, when a cut connection may still be writing it.
func (c *Client) insert(ctx context.Context, query string, body []byte) (free bool, err error) {
	v := url.Values{}
	v.Set("database", c.db)
	v.Set("query", query)
	_, free, err = c.post(ctx, query, v, body, "")
	return free, err
}

// closeSignal is a request body that says when the transport closed it:
// net/http may still write a request's body after the response came
// (https://pkg.go.dev/net/http#RoundTripper), so a reused buffer waits
// for Close.
type closeSignal struct {
	*bytes.Reader
	once   sync.Once
	closed chan struct{}
}

func (b *closeSignal) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}

// post sends the request to each address in turn until one answers.
func (c *Client) post(ctx context.Context, query string, v url.Values, body []byte, ctype string) ([]byte, bool, error) {
	var last error
	var tried []string
	free := true
	n := len(c.addrs)
	start := int(c.next.Load())
	for i := range n {
		k := (start + i) % n
		rd := &closeSignal{Reader: bytes.NewReader(body), closed: make(chan struct{})}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.scheme+"://"+c.addrs[k]+"/?"+v.Encode(), rd)
		if err != nil {
			return nil, false, fmt.Errorf("clickhouse: %s at %s: %w", queryName(query), c.addrs[k], transportError(err))
		}
		req.ContentLength = int64(len(body))
		if len(body) == 0 {
			req.Body = http.NoBody
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		req.SetBasicAuth(c.user, c.password)
		resp, err := c.http.Do(req)
		if err != nil {
			last = transportError(err)
			tried = append(tried, fmt.Sprintf("%s: %v", c.addrs[k], last))
			free = false
			if ctx.Err() != nil {
				break
			}
			continue
		}
		out, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			last = transportError(err)
			tried = append(tried, fmt.Sprintf("%s: reading the answer: %v", c.addrs[k], last))
			free = false
			continue
		}
		c.next.Store(uint32(k))
		if len(body) > 0 && free {
			// The answer came after ClickHouse read the whole body; the
			// transport closes it right after its last write.
			select {
			case <-rd.closed:
			case <-time.After(5 * time.Second):
				free = false
			}
		}
		if resp.StatusCode != http.StatusOK {
			return nil, free, &Error{Status: resp.StatusCode, Query: queryName(query), Addr: c.addrs[k], Msg: strings.TrimSpace(string(out)), SQL: query}
		}
		return out, free, nil
	}
	return nil, false, &UnreachableError{Query: queryName(query), Tried: tried, SQL: query, err: last}
}

// refused reports whether err is ClickHouse's own answer (it was reached
// and said no), as opposed to not being reached.
func refused(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// tsvEscape escapes s for TabSeparated.
func tsvEscape(s string) string {
	if !strings.ContainsAny(s, "\\\t\n\r\x00'") {
		return s
	}
	r := strings.NewReplacer("\\", "\\\\", "\t", "\\t", "\n", "\\n", "\r", "\\r", "\x00", "\\0", "'", "\\'")
	return r.Replace(s)
}

// quote is s as a ClickHouse string literal.
func quote(s string) string {
	return "'" + strings.NewReplacer("\\", "\\\\", "'", "\\'").Replace(s) + "'"
}
