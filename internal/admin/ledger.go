package admin

import (
	"context"
	"errors"
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

// ledgerQuery serves GET /v1/ledger/{query}.
func (s *Server) ledgerQuery(w http.ResponseWriter, r *http.Request) {
	if s.opts.Ledger == nil {
		writeError(w, http.StatusNotImplemented, "no ledger on this server (ledger.dir)")
		return
	}
	name := r.PathValue("query")
	res, err := s.opts.Ledger.Query(r.Context(), name, r.URL.Query())
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
