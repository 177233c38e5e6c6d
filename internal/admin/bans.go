package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/store"
)

// Bounds on what one ban may carry. The TTL bound also keeps Until within
// what a Unix-nanosecond clock can hold.
const (
	maxValueBytes    = 256
	maxReasonBytes   = 512
	maxOperatorBytes = 64
	maxTTL           = 10 * 365 * 24 * time.Hour
	defaultListLimit = 1000
	maxListLimit     = 100_000
	defaultOperator  = "admin"
	operatorHeader   = "X-Warden-Operator"
)

// banRequest is the body of POST /v1/bans: exactly one of TTL and Until.
type banRequest struct {
	Facet  string     `json:"facet"`
	Value  string     `json:"value"`
	Reason string     `json:"reason"`
	TTL    *ttl       `json:"ttl"`
	Until  *time.Time `json:"until"`
}

// ttl is a positive duration written as a Go duration string ("24h") or a
// number of seconds.
type ttl time.Duration

func (t *ttl) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("ttl %q: want a duration like \"24h\" or a number of seconds", s)
		}
		*t = ttl(d)
		return nil
	}
	secs, err := strconv.ParseFloat(string(bytes.TrimSpace(b)), 64)
	if err != nil || secs > maxTTL.Seconds()*2 || secs < -maxTTL.Seconds()*2 {
		return fmt.Errorf("ttl %s: want a duration like \"24h\" or a number of seconds", b)
	}
	*t = ttl(time.Duration(secs * float64(time.Second)))
	return nil
}

// BanView is a ban as the API shows it; a ban without expiry has no
// until. Its clients (warden ban, the dashboard) read it as this type.
type BanView struct {
	Facet   string    `json:"facet"`
	Value   string    `json:"value"`
	Reason  string    `json:"reason"`
	By      string    `json:"by"`
	Created time.Time `json:"created,omitzero"`
	Until   time.Time `json:"until,omitzero"`
	// Anonymous: the ban refuses only requests without a verified account
	// (the detector's ban of an address for its anonymous traffic).
	Anonymous bool `json:"anonymous"`
}

func viewOf(b store.Ban) BanView {
	return BanView{Facet: b.Facet, Value: b.Value, Reason: b.Reason, By: b.By, Created: b.Created, Until: b.Until, Anonymous: b.Anonymous}
}

// BanListing is the answer to GET /v1/bans: at most limit bans, the first
// ones in (facet, value) order, and how many matched in all.
type BanListing struct {
	Bans      []BanView `json:"bans"`
	Total     int       `json:"total"`
	Truncated bool      `json:"truncated"`
}

// listBans answers GET /v1/bans[?facet=F][&limit=N]; the answer is bounded
// so that a million detector bans do not make a million-entry body.
func (s *Server) listBans(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := defaultListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit %q: want 1 to %d", clip(v), maxListLimit))
			return
		}
		limit = n
	}
	facet := q.Get("facet")
	if facet != "" {
		if _, ok := identify.ParseFacet(facet); !ok {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown facet %q", clip(facet)))
			return
		}
	}
	bans, err := s.opts.Bans.ListBans(r.Context(), s.opts.Now())
	if err != nil {
		s.storeError(w, r, "list bans", err)
		return
	}
	out := BanListing{Bans: make([]BanView, 0, min(len(bans), limit))}
	for _, b := range bans {
		if facet != "" && b.Facet != facet {
			continue
		}
		out.Total++
		if len(out.Bans) < limit {
			out.Bans = append(out.Bans, viewOf(b))
		}
	}
	out.Truncated = out.Total > len(out.Bans)
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) addBan(w http.ResponseWriter, r *http.Request) {
	var req banRequest
	if !readJSON(w, r, &req) {
		return
	}
	now := s.opts.Now()
	b, err := req.ban(now)
	if err == nil {
		err = s.checkNetBits(b)
	}
	if err == nil && s.opts.Matchable != nil {
		err = s.opts.Matchable(b.Facet, b.Value)
	}
	if err == nil {
		b.By, err = operator(r)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.opts.Bans.PutBan(r.Context(), b); err != nil {
		s.storeError(w, r, "put ban", err)
		return
	}
	s.opts.Logger.LogAttrs(r.Context(), slog.LevelInfo, "admin: ban added",
		slog.String("facet", b.Facet), slog.String("by", b.By), slog.Time("until", b.Until))
	writeJSON(w, http.StatusCreated, viewOf(b))
}

func (s *Server) removeBan(w http.ResponseWriter, r *http.Request) {
	k, err := keyOf(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	by, err := operator(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	found, err := s.opts.Bans.RemoveBan(r.Context(), k)
	if err != nil {
		s.storeError(w, r, "remove ban", err)
		return
	}
	if !found {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no ban on %s %s", k.Facet, k.Value))
		return
	}
	s.opts.Logger.LogAttrs(r.Context(), slog.LevelInfo, "admin: ban removed",
		slog.String("facet", k.Facet), slog.String("by", by))
	w.WriteHeader(http.StatusNoContent)
}

// checkNetBits refuses a net ban that the gateway's net facet never
// produces (a /16 when requests carry their /24).
func (s *Server) checkNetBits(b store.Ban) error {
	if b.Facet != identify.FacetNet.String() || s.opts.NetBits == nil {
		return nil
	}
	p, err := netip.ParsePrefix(b.Value)
	if err != nil {
		return fmt.Errorf("net value %q: %w", clip(b.Value), err)
	}
	v4, v6 := s.opts.NetBits()
	want, family := v6, "IPv6"
	if p.Addr().Is4() {
		want, family = v4, "IPv4"
	}
	if p.Bits() != want {
		return fmt.Errorf("net ban %s would never match: the gateway's net facet is a /%d for %s", b.Value, want, family)
	}
	return nil
}

// storeError answers a failed store call: 503 when the store is down,
// 500 otherwise. The error is logged, never a ban's value.
func (s *Server) storeError(w http.ResponseWriter, r *http.Request, op string, err error) {
	s.opts.Logger.LogAttrs(r.Context(), slog.LevelError, "admin: "+op, slog.Any("error", err))
	if errors.Is(err, store.ErrUnavailable) {
		writeError(w, http.StatusServiceUnavailable, op+": store unavailable")
		return
	}
	writeError(w, http.StatusInternalServerError, op+": "+err.Error())
}

// ban validates the request into a ban created at now; By is left empty.
func (req *banRequest) ban(now time.Time) (store.Ban, error) {
	k, err := parseKey(req.Facet, req.Value)
	if err != nil {
		return store.Ban{}, err
	}
	if err := checkText("reason", req.Reason, maxReasonBytes); err != nil {
		return store.Ban{}, err
	}
	var until time.Time
	switch {
	case req.TTL != nil && req.Until != nil:
		return store.Ban{}, errors.New("give ttl or until, not both")
	case req.TTL != nil:
		d := time.Duration(*req.TTL)
		if d <= 0 {
			return store.Ban{}, fmt.Errorf("ttl %s: must be positive", d)
		}
		if d > maxTTL {
			return store.Ban{}, fmt.Errorf("ttl %s: at most %s", d, maxTTL)
		}
		until = now.Add(d)
	case req.Until != nil:
		until = *req.Until
		if !until.After(now) {
			return store.Ban{}, fmt.Errorf("until %s: already past", until.Format(time.RFC3339))
		}
		if until.Sub(now) > maxTTL {
			return store.Ban{}, fmt.Errorf("until %s: at most %s ahead", until.Format(time.RFC3339), maxTTL)
		}
	default:
		// Every admin ban expires; standing denials belong in the config.
		return store.Ban{}, errors.New("ttl or until is required")
	}
	return store.Ban{
		Facet: k.Facet, Value: k.Value, Reason: req.Reason,
		Created: now.UTC(), Until: until.UTC(),
	}, nil
}

// keyOf reads the facet value a request names: from the path
// (/v1/bans/{facet}/{value...}) or, on the collection, from the query
// (?facet=net&value=10.1.2.0/24), which carries any value the path cannot
// (one holding "//" or "/../" would be cleaned and redirected by the mux).
func keyOf(r *http.Request) (store.BanKey, error) {
	if f := r.PathValue("facet"); f != "" {
		return parseKey(f, r.PathValue("value"))
	}
	q := r.URL.Query()
	if !q.Has("facet") || !q.Has("value") {
		return store.BanKey{}, errors.New("name the facet value in the path (/{facet}/{value}) or the query (?facet=&value=)")
	}
	return parseKey(q.Get("facet"), q.Get("value"))
}

// parseKey checks the facet name and the value's shape for that facet and
// returns the canonical key, the form the gateway matches bans on.
func parseKey(facet, value string) (store.BanKey, error) {
	f, ok := identify.ParseFacet(facet)
	if !ok {
		names := make([]string, len(identify.Facets))
		for i, f := range identify.Facets {
			names[i] = f.String()
		}
		return store.BanKey{}, fmt.Errorf("unknown facet %q (one of %s)", facet, strings.Join(names, ", "))
	}
	v, err := canonical(f, value)
	if err != nil {
		return store.BanKey{}, err
	}
	return store.BanKey{Facet: f.String(), Value: v}, nil
}

func canonical(f identify.Facet, v string) (string, error) {
	switch f {
	case identify.FacetIP:
		a, err := netip.ParseAddr(v)
		if err != nil || a.Zone() != "" {
			return "", fmt.Errorf("ip value %q: want an IPv4 or IPv6 address without zone", clip(v))
		}
		return a.Unmap().String(), nil
	case identify.FacetNet:
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return "", fmt.Errorf("net value %q: want a CIDR prefix like 10.1.2.0/24 or 2001:db8:1::/48", clip(v))
		}
		return p.Masked().String(), nil
	case identify.FacetFingerprint:
		// The facet is always 16 lower-case hex digits (identify's
		// Fingerprint): anything else is a ban that could never match.
		l := strings.ToLower(v)
		if len(l) != 16 || strings.Trim(l, "0123456789abcdef") != "" {
			return "", fmt.Errorf("fingerprint value %q: want the facet's 16 hex digits, as logs and the ledger show it", clip(v))
		}
		return l, nil
	}
	if err := checkText(f.String()+" value", v, maxValueBytes); err != nil {
		return "", err
	}
	return v, nil
}

// checkText refuses empty, oversized, non-UTF-8 or control-character text,
// which would break table output and log lines.
func checkText(what, s string, maxBytes int) error {
	switch {
	case strings.TrimSpace(s) == "":
		return fmt.Errorf("%s is required", what)
	case len(s) > maxBytes:
		return fmt.Errorf("%s longer than %d bytes", what, maxBytes)
	case !utf8.ValidString(s):
		return fmt.Errorf("%s is not valid UTF-8", what)
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return fmt.Errorf("%s contains control characters", what)
	}
	return nil
}

// operator is who asked, from the X-Warden-Operator header; it is recorded,
// not authenticated (the token is the authentication).
func operator(r *http.Request) (string, error) {
	by := strings.TrimSpace(r.Header.Get(operatorHeader))
	if by == "" {
		return defaultOperator, nil
	}
	if err := checkText(operatorHeader, by, maxOperatorBytes); err != nil {
		return "", err
	}
	return by, nil
}

// clip bounds user input echoed in an error.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
