package dashboard

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

const (
	sessionCookie = "warden_session"
	loginCookie   = "warden_login" // binds the sign-in form's CSRF token
	maxSessions   = 256
	maxFormBytes  = 16 << 10
)

type session struct {
	id      string
	csrf    string
	expires time.Time
}

// sessions is the server side of the session cookies, bounded: past max
// the session closest to expiry is dropped.
type sessions struct {
	mu  sync.Mutex
	max int
	m   map[string]*session
}

func newSessions(max int) *sessions { return &sessions{max: max, m: map[string]*session{}} }

func (ss *sessions) start(now time.Time, ttl time.Duration) *session {
	s := &session{id: randomToken(), csrf: randomToken(), expires: now.Add(ttl)}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for id, o := range ss.m {
		if !now.Before(o.expires) {
			delete(ss.m, id)
		}
	}
	for len(ss.m) >= ss.max {
		var oldest *session
		for _, o := range ss.m {
			if oldest == nil || o.expires.Before(oldest.expires) {
				oldest = o
			}
		}
		delete(ss.m, oldest.id)
	}
	ss.m[s.id] = s
	return s
}

func (ss *sessions) get(id string, now time.Time) *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[id]
	if s == nil {
		return nil
	}
	if !now.Before(s.expires) {
		delete(ss.m, id)
		return nil
	}
	return s
}

func (ss *sessions) end(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, id)
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

type sessionKey struct{}

func sessionOf(r *http.Request) *session {
	s, _ := r.Context().Value(sessionKey{}).(*session)
	return s
}

func (d *Dashboard) session(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	return d.sessions.get(c.Value, d.opts.Now())
}

// requireSession serves pages to a valid session only; a browser without
// one is sent to the sign-in form, anything asking for JSON gets 401.
func (d *Dashboard) requireSession(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := d.session(r)
		if s == nil {
			if r.URL.Path == "/api/now" {
				http.Error(w, "sign in first", http.StatusUnauthorized)
				return
			}
			if wantsJSON(r) {
				// A program, not a browser: no redirect to a form.
				writeJSONError(w, http.StatusUnauthorized, "no session: sign in at /login, or ask the admin API (/v1/...) with its bearer token")
				return
			}
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, s)))
	})
}

// requireForm accepts a POST from a valid session whose form carries that
// session's CSRF token; anything else is 403 and changes nothing.
func (d *Dashboard) requireForm(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := d.session(r)
		if s == nil {
			http.Error(w, "no session: sign in at /login", http.StatusForbidden)
			return
		}
		if !d.sameOrigin(r) || !d.formOK(w, r) || !equal(r.PostForm.Get("csrf"), s.csrf) {
			http.Error(w, "form refused: missing or wrong CSRF token", http.StatusForbidden)
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), sessionKey{}, s)))
	})
}

// formOK parses a bounded urlencoded form.
func (d *Dashboard) formOK(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	return r.ParseForm() == nil
}

// sameOrigin refuses a POST whose Origin header names another origin: a
// second line behind the CSRF token and SameSite=Strict. A request
// without Origin (old browsers, curl) is left to the token.
func (d *Dashboard) sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func equal(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// loginToken is the sign-in form's CSRF token: a MAC of the pre-session
// cookie under a key only this process knows (the token's hash).
func (d *Dashboard) loginToken(cookie string) string {
	m := hmac.New(sha256.New, d.tokenHash[:])
	m.Write([]byte("login csrf\x00" + cookie))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (d *Dashboard) cookie(r *http.Request, name, value string, ttl time.Duration) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: int(ttl.Seconds()), HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil}
}

func (d *Dashboard) loginPage(w http.ResponseWriter, r *http.Request) {
	if d.session(r) != nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	d.showLogin(w, r, http.StatusOK, "")
}

func (d *Dashboard) showLogin(w http.ResponseWriter, r *http.Request, code int, msg string) {
	pre := randomToken()
	http.SetCookie(w, d.cookie(r, loginCookie, pre, 15*time.Minute))
	d.render(w, r, code, "login", view{Title: "Sign in", Nav: "login", Error: msg, Data: d.loginToken(pre)})
}

// login starts a session when the form's token is the admin token
// (constant time, over hashes so that its length does not show either).
func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	if !d.sameOrigin(r) || !d.formOK(w, r) {
		http.Error(w, "form refused", http.StatusForbidden)
		return
	}
	key, counted := clientKey(r)
	if counted {
		if wait := d.logins.blocked(key, d.opts.Now()); wait > 0 {
			secs := int((wait + time.Second - 1) / time.Second)
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			d.showLogin(w, r, http.StatusTooManyRequests, fmt.Sprintf("Too many failed sign-ins from your address: try again in %d s.", secs))
			return
		}
	}
	c, err := r.Cookie(loginCookie)
	if err != nil || !equal(r.PostForm.Get("csrf"), d.loginToken(c.Value)) {
		d.showLogin(w, r, http.StatusForbidden, "The form expired; sign in again.")
		return
	}
	h := sha256.Sum256([]byte(r.PostForm.Get("token")))
	if subtle.ConstantTimeCompare(h[:], d.tokenHash[:]) != 1 {
		if counted {
			d.logins.fail(key, d.opts.Now())
		}
		// The token given is never logged: it may be a near miss.
		d.opts.Logger.LogAttrs(r.Context(), slog.LevelWarn, "dashboard: sign-in refused", slog.String("remote", r.RemoteAddr))
		d.showLogin(w, r, http.StatusUnauthorized, "That is not the admin token.")
		return
	}
	if counted {
		d.logins.succeed(key)
	}
	s := d.sessions.start(d.opts.Now(), d.opts.SessionTTL)
	http.SetCookie(w, d.cookie(r, sessionCookie, s.id, d.opts.SessionTTL))
	http.SetCookie(w, d.cookie(r, loginCookie, "", -time.Second))
	d.opts.Logger.LogAttrs(r.Context(), slog.LevelInfo, "dashboard: signed in", slog.String("remote", r.RemoteAddr))
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request) {
	d.sessions.end(sessionOf(r).id)
	http.SetCookie(w, d.cookie(r, sessionCookie, "", -time.Second))
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
