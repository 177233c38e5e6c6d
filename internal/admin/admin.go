package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/warden-gw/warden/internal/store"
)

// BanStore is the part of the state store the admin API changes.
type BanStore interface {
	PutBan(ctx context.Context, b store.Ban) error
	RemoveBan(ctx context.Context, k store.BanKey) (bool, error)
	ListBans(ctx context.Context, now time.Time) ([]store.Ban, error)
}

// LimitViewer reports the limit state of one facet value (facet by its
// name, value canonical) as a JSON-encodable value. It returns an error for
// a facet no limit counts by; an error wrapping store.ErrUnavailable means
// the store failed.
type LimitViewer interface {
	FacetState(ctx context.Context, facet, value string) (any, error)
}

// Options configures a Server. Token, Gatherer and Bans are required.
type Options struct {
	Token    string              // the bearer token; see LoadToken
	Gatherer prometheus.Gatherer // served at /metrics
	Bans     BanStore
	Limits   LimitViewer                     // nil: /v1/facets answers 501
	Ledger   Ledger                          // nil: /v1/ledger/... answers 501
	Ready    func(ctx context.Context) error // nil: always ready
	Logger   *slog.Logger                    // nil: discard
	Now      func() time.Time                // nil: time.Now

	// NetBits returns the prefix lengths of the gateway's net facet (e.g.
	// 24 and 48). When set, a net ban at another length is refused: it
	// could never match. Read per request, so it may follow reloads.
	NetBits func() (v4, v6 int)

	// Matchable, when set, says why a ban on facet's value could never
	// match a request (an account off the config's subject_pattern, an app
	// no registered key names), or nil. Read per request, like NetBits.
	Matchable func(facet, value string) error

	// Dashboard, when set, mounts its pages on the admin listener beside
	// the API (internal/dashboard); it gets the API's handler without the
	// token check and guards its own pages with sessions.
	Dashboard Dashboard
}

// Dashboard is what the admin listener needs of the web dashboard.
type Dashboard interface {
	Mount(mux *http.ServeMux, api http.Handler)
	// Person is the per-person report as JSON (GET /v1/person?subject=),
	// served behind the token like every /v1 route.
	Person() http.Handler
}

// Server is the admin API. It holds no goroutines of its own; Serve runs
// one http.Server.
type Server struct {
	opts      Options
	tokenHash [sha256.Size]byte
	handler   http.Handler
}

// Limits on what a request may carry; the API is small and never streams.
const (
	maxBodyBytes   = 8 << 10
	minTokenLength = 16
)

// New checks opts and builds the routes.
func New(opts Options) (*Server, error) {
	switch {
	case opts.Token == "":
		return nil, errors.New("admin: a token is required; the admin API is never served without one")
	case len(opts.Token) < minTokenLength:
		return nil, fmt.Errorf("admin: token too short (%d bytes, at least %d)", len(opts.Token), minTokenLength)
	case opts.Gatherer == nil:
		return nil, errors.New("admin: a metrics gatherer is required")
	case opts.Bans == nil:
		return nil, errors.New("admin: a ban store is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, tokenHash: sha256.Sum256([]byte(opts.Token))}

	mux := http.NewServeMux()
	// Patterns carry no method so that a wrong method is a JSON 405 from
	// methods(), not the mux's plain-text one.
	metrics := promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(opts.Logger.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	})
	mux.Handle("/metrics", methods(map[string]http.Handler{http.MethodGet: metrics}))
	mux.Handle("/readyz", methods(map[string]http.Handler{http.MethodGet: http.HandlerFunc(s.readyz)}))
	mux.Handle("/v1/bans", methods(map[string]http.Handler{
		http.MethodGet:    http.HandlerFunc(s.listBans),
		http.MethodPost:   http.HandlerFunc(s.addBan),
		http.MethodDelete: http.HandlerFunc(s.removeBan), // ?facet=&value=
	}))
	mux.Handle("/v1/bans/{facet}/{value...}", methods(map[string]http.Handler{http.MethodDelete: http.HandlerFunc(s.removeBan)}))
	mux.Handle("/v1/facets/{facet}/{value...}", methods(map[string]http.Handler{http.MethodGet: http.HandlerFunc(s.facetState)}))
	// A facet without its value: a JSON 400 naming what is missing, not
	// the mux's HTML redirect to the path with a slash.
	mux.Handle("/v1/bans/{facet}", methods(map[string]http.Handler{http.MethodDelete: http.HandlerFunc(s.removeBan)}))
	mux.Handle("/v1/facets/{facet}", methods(map[string]http.Handler{http.MethodGet: http.HandlerFunc(s.facetState)}))
	// The queries are GETs; replay alone is POSTed (its body is the new
	// config): another method is a 405 naming the one allowed, as on
	// every route.
	mux.Handle("/v1/ledger/{query}", methods(map[string]http.Handler{http.MethodGet: http.HandlerFunc(s.ledgerQuery)}))
	mux.Handle("/v1/ledger/replay", methods(map[string]http.Handler{http.MethodPost: http.HandlerFunc(s.ledgerQuery)}))
	mux.Handle("/v1/facets", methods(map[string]http.Handler{http.MethodGet: http.HandlerFunc(s.facetState)}))
	// Profiles of the running gateway, behind the token like the rest:
	// a profile shows code paths and timing, never request data.
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such route")
	})

	open := http.NewServeMux()
	open.Handle("/healthz", methods(map[string]http.Handler{http.MethodGet: http.HandlerFunc(healthz)}))
	open.Handle("/", s.authenticate(mux))
	if opts.Dashboard != nil {
		// The dashboard's per-person report, for a platform's "download
		// your data" flow: its backend holds the token, not a session.
		mux.Handle("/v1/person", methods(map[string]http.Handler{http.MethodGet: opts.Dashboard.Person()}))
		opts.Dashboard.Mount(open, mux)
	}
	s.handler = open
	return s, nil
}

// Handler returns the admin API's handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve answers on ln until ctx ends, then shuts down, letting requests in
// flight finish for up to five seconds. It closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	done := make(chan error, 1)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		done <- srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin: serve on %s: %w", ln.Addr(), err)
	}
	if err := <-done; err != nil {
		return fmt.Errorf("admin: shut down: %w", err)
	}
	return nil
}

// authenticate passes requests bearing the token. Comparing hashes keeps the
// comparison constant-time in the token's length too.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := bearer(r.Header.Get("Authorization"))
		h := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(h[:], s.tokenHash[:]) != 1 {
			// The header itself is never logged: a wrong token may be a
			// near miss of the right one.
			s.opts.Logger.LogAttrs(r.Context(), slog.LevelWarn, "admin: unauthorized request",
				slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.String("remote", r.RemoteAddr), slog.Bool("had_token", ok))
			w.Header().Set("WWW-Authenticate", `Bearer realm="warden-admin"`)
			writeError(w, http.StatusUnauthorized, "missing or invalid bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bearer extracts the token from an Authorization header value.
func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// methods dispatches on the request method and answers any other with a
// JSON 405 and an Allow header. HEAD is served by the GET handler.
func methods(hs map[string]http.Handler) http.Handler {
	allow := make([]string, 0, len(hs)+1)
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodDelete} {
		if _, ok := hs[m]; ok || (m == http.MethodHead && hs[http.MethodGet] != nil) {
			allow = append(allow, m)
		}
	}
	allowed := strings.Join(allow, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := r.Method
		if m == http.MethodHead {
			m = http.MethodGet
		}
		h, ok := hs[m]
		if !ok {
			w.Header().Set("Allow", allowed)
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed; allowed: %s", r.Method, allowed))
			return
		}
		h.ServeHTTP(w, r)
	})
}

func healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.opts.Ready != nil {
		if err := s.opts.Ready(r.Context()); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "error": err.Error()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// facetState answers the limit state of one facet value.
func (s *Server) facetState(w http.ResponseWriter, r *http.Request) {
	k, err := keyOf(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if s.opts.Limits == nil {
		writeError(w, http.StatusNotImplemented, "limit state is not available on this server")
		return
	}
	st, err := s.opts.Limits.FacetState(r.Context(), k.Facet, k.Value)
	switch {
	case errors.Is(err, store.ErrUnavailable):
		s.opts.Logger.LogAttrs(r.Context(), slog.LevelError, "admin: facet state", slog.String("facet", k.Facet), slog.Any("error", err))
		writeError(w, http.StatusServiceUnavailable, "store unavailable")
		return
	case err != nil:
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"facet": k.Facet, "value": k.Value, "state": st})
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		b = []byte(`{"error":"encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// readJSON decodes one JSON object of at most maxBodyBytes into v, strictly.
// It writes the error answer itself and reports whether v was filled.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, "content type must be application/json")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		var tooBig *http.MaxBytesError
		if _, terr := dec.Token(); errors.As(terr, &tooBig) {
			err = terr
		} else if !errors.Is(terr, io.EOF) {
			err = errors.New("trailing data after the JSON object")
		}
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", maxBodyBytes))
			return false
		}
		writeError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error())
		return false
	}
	return true
}
