package canary

import (
	"strconv"

	"github.com/warden-gw/warden/internal/inspect"
	"github.com/warden-gw/warden/internal/refusal"
)

// Room is how many canaries a list page of n real records has room for:
// the page size the request asked (rawQuery's Page.Limit parameter, else
// Page.Default) less n, at most MaxPerPage. A full page has none, and so
// has a page asked with a size the upstream refuses (not a number, or
// outside 1..Page.Max): an answer warden changes is never longer than the
// size asked. The package doc's "Pages" says why room, and not a record
// displaced to make some.
func (c *Canaries) Room(rawQuery string, n int) int {
	size, ok := c.pageSize(rawQuery)
	if !ok {
		return 0
	}
	return max(0, min(size-n, c.cfg.MaxPerPage))
}

// pageSize reads the page size rawQuery asks, as the platform reads it
// (inspect.QueryValue: net/url's first value), a decimal in 1..Page.Max;
// the default without one or with an empty one. A value that is no such
// decimal is no size: nothing is seeded.
func (c *Canaries) pageSize(rawQuery string) (int, bool) {
	v := inspect.QueryValue(rawQuery, c.cfg.Page.Limit)
	if v == "" {
		return c.cfg.Page.Default, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > c.cfg.Page.Max {
		return 0, false
	}
	return n, true
}

// badSizeBody is the platform's refusal of a page size it does not serve,
// in the lab platform's words with pg's parameter and max: byte for byte
// the lab's (`{"error":"limit must be an integer from 1 to 50"}`) with the
// defaults. Its status is 400.
func badSizeBody(pg Page) []byte {
	b := refusal.AppendString([]byte(`{"error":`), pg.Limit+" must be an integer from 1 to "+strconv.Itoa(pg.Max))
	return append(b, '}')
}
