package identify

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
)

// minAppKeyLen is the shortest app key that is not warned about: a key is a
// bearer secret, and a short one can be guessed.
const minAppKeyLen = 16

// registeredApp is an app whose key is registered.
type registeredApp struct {
	name   string
	scopes []string
}

// appKeys maps the SHA-256 of each registered key to its app. Looking a
// presented key up by its digest takes the same time whatever the key is
// close to, so timing tells a caller nothing of a registered key.
type appKeys map[[sha256.Size]byte]*registeredApp

func loadAppKeys(c AppConfig, opts Options) (appKeys, error) {
	if len(c.Keys) == 0 {
		return nil, nil
	}
	out := make(appKeys, len(c.Keys))
	for i, k := range c.Keys {
		at := fmt.Sprintf("identify: app.keys[%d] (%s)", i, k.App)
		var digest [sha256.Size]byte
		switch {
		case k.KeySHA256 != "":
			b, err := hex.DecodeString(k.KeySHA256)
			if err != nil || len(b) != sha256.Size {
				return nil, fmt.Errorf("%s.key_sha256: not 64 hex digits", at)
			}
			copy(digest[:], b)
		default:
			key, _, err := secretFrom(opts, k.KeyFile, k.KeyEnv, at+".key_file", at+".key_env")
			if err != nil {
				return nil, err
			}
			if key == "" {
				return nil, fmt.Errorf("%s: the key is empty", at)
			}
			if len(key) > maxAppLen {
				return nil, fmt.Errorf("%s: the key is longer than %d bytes, which is never an app", at, maxAppLen)
			}
			if len(key) < minAppKeyLen {
				opts.Logger.Warn("identify: app key shorter than 16 bytes: it can be guessed", slog.String("app", k.App), slog.Int("bytes", len(key)))
			}
			digest = sha256.Sum256([]byte(key))
		}
		if _, dup := out[digest]; dup {
			return nil, fmt.Errorf("%s: the same key is registered for another app", at)
		}
		out[digest] = &registeredApp{name: k.App, scopes: k.Scopes}
	}
	return out, nil
}

// lookup returns the app whose key was presented, nil when none is.
func (a appKeys) lookup(key string) *registeredApp {
	return a[sha256.Sum256([]byte(key))]
}

// withScopes returns the token's scopes joined by the app's; either alone is
// returned as is (both are shared and never modified).
func withScopes(token, app []string) []string {
	switch {
	case len(app) == 0:
		return token
	case len(token) == 0:
		return app
	}
	out := make([]string, 0, len(token)+len(app))
	out = append(out, token...)
	for _, s := range app {
		dup := false
		for _, t := range token {
			if t == s {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, s)
		}
	}
	return out
}
