package identify

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

const partnerKey = "pk-0123456789abcdef0123"

func appIdentifier(t *testing.T, keys []AppKey, files map[string]string) (*Identifier, error) {
	t.Helper()
	cfg := Config{App: AppConfig{Keys: keys}, Account: AccountConfig{SecretEnv: "TEST_SECRET"}}
	return New(t.Context(), cfg, Options{
		LookupEnv: func(k string) (string, bool) {
			switch k {
			case "TEST_SECRET":
				return testSecret, true
			case "PARTNER_KEY":
				return partnerKey, true
			case "SHORT_KEY":
				return "short", true
			case "EMPTY_KEY":
				return "", true
			}
			return "", false
		},
		ReadFile: func(name string) ([]byte, error) {
			if b, ok := files[name]; ok {
				return []byte(b), nil
			}
			return nil, os.ErrNotExist
		},
	})
}

func identifyApp(x *Identifier, hdr ...string) Identity {
	var id Identity
	x.Identify(testNow, &Input{Peer: netip.MustParseAddr("198.51.100.7"), Header: testHeader(hdr)}, &id)
	return id
}

func TestAppKeys(t *testing.T) {
	sum := sha256.Sum256([]byte("reports-key-0123456789"))
	x, err := appIdentifier(t, []AppKey{
		{App: "partner-app", KeyEnv: "PARTNER_KEY", Scopes: []string{"contact:read"}},
		{App: "reports", KeySHA256: hex.EncodeToString(sum[:])},
		{App: "filed", KeyFile: "/keys/filed"},
	}, map[string]string{"/keys/filed": "filed-key-0123456789\n"})
	if err != nil {
		t.Fatal(err)
	}
	tok := sign(t, jwt.SigningMethodHS256, []byte(testSecret), "", claims())
	cases := []struct {
		name   string
		hdr    []string
		app    string
		scopes []string
	}{
		{"registered key is its app, with its scopes", []string{"X-App-Key", partnerKey}, "partner-app", []string{"contact:read"}},
		{"the app's name is not its key", []string{"X-App-Key", "partner-app"}, "", nil},
		{"unregistered key is no app", []string{"X-App-Key", "pk-guess"}, "", nil},
		{"a registered key with a no-break space is no app", []string{"X-App-Key", partnerKey + "\u00a0"}, "", nil},
		{"an empty key is no app", []string{"X-App-Key", ""}, "", nil},
		{"an oversized key is no app", []string{"X-App-Key", strings.Repeat("k", maxAppLen+1)}, "", nil},
		{"key given by digest", []string{"X-App-Key", "reports-key-0123456789"}, "reports", nil},
		{"key from a file, newline trimmed", []string{"X-App-Key", "filed-key-0123456789"}, "filed", nil},
		{"token scopes joined by the app's", []string{"X-App-Key", partnerKey, "Authorization", "Bearer " + tok}, "partner-app",
			[]string{"read:profile", "write:post", "contact:read"}},
		{"token alone keeps its scopes", []string{"Authorization", "Bearer " + tok}, "", []string{"read:profile", "write:post"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := identifyApp(x, c.hdr...)
			if id.App != c.app || !slices.Equal(id.Scopes, c.scopes) {
				t.Errorf("app %q scopes %q, want %q %q", id.App, id.Scopes, c.app, c.scopes)
			}
			// A key presented and not registered is an unverified
			// credential (the gateway refuses or strips it).
			presented := slices.Contains(c.hdr, "X-App-Key")
			if got := id.Unverified&CredentialApp != 0; got != (presented && c.app == "") {
				t.Errorf("Unverified app = %v", got)
			}
		})
	}
}

func TestAppKeysUnverified(t *testing.T) {
	x, err := appIdentifier(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if id := identifyApp(x, "X-App-Key", "anything"); id.App != "anything" || id.Unverified != 0 {
		t.Errorf("without registered keys the header is the app: got %q, Unverified %b", id.App, id.Unverified)
	}
}

func TestAppKeysLoad(t *testing.T) {
	cases := []struct {
		name string
		keys []AppKey
		want string
	}{
		{"env unset", []AppKey{{App: "a", KeyEnv: "NOPE"}}, "app.keys[0] (a).key_env: NOPE is not set"},
		{"env empty", []AppKey{{App: "a", KeyEnv: "EMPTY_KEY"}}, "the key is empty"},
		{"file missing", []AppKey{{App: "a", KeyFile: "/nope"}}, "app.keys[0] (a).key_file"},
		{"one key, two apps", []AppKey{{App: "a", KeyEnv: "PARTNER_KEY"}, {App: "b", KeyEnv: "PARTNER_KEY"}}, "same key is registered for another app"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := appIdentifier(t, c.keys, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			if strings.Contains(err.Error(), partnerKey) {
				t.Errorf("the error shows the key: %v", err)
			}
		})
	}
	// A short key loads, with a warning.
	if _, err := appIdentifier(t, []AppKey{{App: "a", KeyEnv: "SHORT_KEY"}}, nil); err != nil {
		t.Fatal(err)
	}
}
