package identify

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
)

const (
	maxJWKSBytes       = 1 << 20
	jwksFetchTimeout   = 10 * time.Second
	jwksMinKickSpacing = 30 * time.Second
)

// verifyKey is one public key usable for RS256 or ES256.
type verifyKey struct {
	kid string
	alg string // from the JWK; "" when it names none
	key any    // *rsa.PublicKey or *ecdsa.PublicKey (P-256)
}

// keySet is an immutable set of keys.
type keySet struct {
	byKID map[string]verifyKey
	all   []verifyKey
}

func (k *keySet) lookup(kid string) (verifyKey, bool) {
	if k == nil {
		return verifyKey{}, false
	}
	v, ok := k.byKID[kid]
	return v, ok
}

// parseJWKS reads a JWK Set, keeping the RSA and P-256 keys and dropping
// every other kind (a symmetric JWK could otherwise become an HS secret).
func parseJWKS(raw []byte) (*keySet, error) {
	var m jwkset.JWKSMarshal
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("decode JWK Set: %w", err)
	}
	ks := &keySet{byKID: make(map[string]verifyKey, len(m.Keys))}
	for i, km := range m.Keys {
		if km.KTY != jwkset.KtyRSA && km.KTY != jwkset.KtyEC || km.USE != "" && km.USE != jwkset.UseSig {
			continue
		}
		jwk, err := jwkset.NewJWKFromMarshal(km, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			return nil, fmt.Errorf("key %d (kid %q): %w", i, km.KID, err)
		}
		key := publicOf(jwk.Key())
		if key == nil {
			continue
		}
		v := verifyKey{kid: km.KID, alg: km.ALG.String(), key: key}
		ks.all = append(ks.all, v)
		if v.kid != "" {
			ks.byKID[v.kid] = v
		}
	}
	return ks, nil
}

// publicOf returns the public half of an RSA or P-256 key, nil otherwise.
func publicOf(k any) any {
	switch k := k.(type) {
	case *rsa.PublicKey:
		return k
	case *rsa.PrivateKey:
		return &k.PublicKey
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return k
		}
	case *ecdsa.PrivateKey:
		if k.Curve == elliptic.P256() {
			return &k.PublicKey
		}
	}
	return nil
}

// remoteKeys holds a JWK Set fetched from a URL, refreshed every interval
// and, when a token names an unknown kid, soon after (at most once per
// jwksMinKickSpacing). Requests never wait for a fetch: until the refresh
// lands, such a token is no account.
type remoteKeys struct {
	url      string
	client   *http.Client
	log      *slog.Logger
	now      func() time.Time
	interval time.Duration

	keys      atomic.Pointer[keySet]
	fetches   atomic.Uint64 // completed fetch attempts, for tests and metrics
	kick      chan struct{}
	mu        sync.Mutex
	lastFetch time.Time
}

func (r *remoteKeys) redacted() string {
	if u, err := url.Parse(r.url); err == nil {
		return u.Redacted()
	}
	return "(unparsable url)"
}

// refresh fetches the set once; on failure the old keys stay.
func (r *remoteKeys) refresh(ctx context.Context) error {
	r.mu.Lock()
	r.lastFetch = r.now()
	r.mu.Unlock()
	defer r.fetches.Add(1)
	ctx, cancel := context.WithTimeout(ctx, jwksFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return fmt.Errorf("identify: jwks %s: %w", r.redacted(), err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return fmt.Errorf("identify: jwks %s: %w", r.redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("identify: jwks %s: status %d", r.redacted(), resp.StatusCode)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return fmt.Errorf("identify: jwks %s: read: %w", r.redacted(), err)
	}
	if len(raw) > maxJWKSBytes {
		return fmt.Errorf("identify: jwks %s: larger than %d bytes", r.redacted(), maxJWKSBytes)
	}
	ks, err := parseJWKS(raw)
	if err != nil {
		return fmt.Errorf("identify: jwks %s: %w", r.redacted(), err)
	}
	r.keys.Store(ks)
	return nil
}

// unknownKID asks the refresh loop for an early fetch without waiting.
func (r *remoteKeys) unknownKID() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// run refreshes until ctx ends.
func (r *remoteKeys) run(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.kick:
			r.mu.Lock()
			soon := r.now().Sub(r.lastFetch) < jwksMinKickSpacing
			r.mu.Unlock()
			if soon {
				continue
			}
		}
		if err := r.refresh(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("identify: jwks refresh failed, keeping the previous keys", "error", err)
		}
	}
}

var errUnknownKID = errors.New("unknown kid")
