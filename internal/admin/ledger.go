package admin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
)

// Errors a Ledger wraps to choose the answer's status: the asker's
// mistake (400) and nothing to show (404). Any other error is a 500 whose
// text is logged, not sent.
var (
	ErrBadRequest = errors.New("bad request")
	ErrNotFound   = errors.New("not found")
)

// Ledger answers the ledger's queries by name (who-took, took-by, reach,
// explain, verify) from the query string's values, as JSON-encodable
// values: the same function the commands call.
type Ledger interface {
	Query(ctx context.Context, name string, args url.Values) (any, error)
}

// maxLedgerBody bounds a POSTed ledger query's body: replay's new config.
const maxLedgerBody = 1 << 20

// LedgerBody is the key under which a POSTed query's body (replay's new
// config) reaches Ledger.Query; a GET's query string cannot set it.
const LedgerBody = "body"

// ledgerQuery serves GET /v1/ledger/{query} and POST /v1/ledger/replay:
// a POST's body (at most 1 MiB) goes to the query as args[LedgerBody].
func (s *Server) ledgerQuery(w http.ResponseWriter, r *http.Request) {
	if s.opts.Ledger == nil {
		writeError(w, http.StatusNotImplemented, "no ledger on this server (ledger.dir)")
		return
	}
	name := r.PathValue("query")
	if name == "" {
		name = "replay" // its own route, POST
	}
	args := r.URL.Query()
	args.Del(LedgerBody)
	if r.Method == http.MethodPost {
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxLedgerBody))
		if err != nil {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body: %v (at most %d bytes)", err, maxLedgerBody))
			return
		}
		args.Set(LedgerBody, string(b))
	}
	res, err := s.opts.Ledger.Query(r.Context(), name, args)
	switch {
	case errors.Is(err, ErrBadRequest), errors.Is(err, ErrNotFound):
		code := http.StatusBadRequest
		if errors.Is(err, ErrNotFound) {
			code = http.StatusNotFound
		}
		writeError(w, code, err.Error())
	case err != nil:
		s.opts.Logger.LogAttrs(r.Context(), slog.LevelError, "admin: ledger query", slog.String("query", name), slog.String("error", err.Error()))
		writeError(w, http.StatusInternalServerError, "ledger query failed (see the gateway's log)")
	default:
		writeJSON(w, http.StatusOK, res)
	}
}
