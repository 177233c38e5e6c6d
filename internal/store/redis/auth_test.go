package redis_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/store"
	"github.com/warden-gw/warden/internal/store/redis"
	"github.com/warden-gw/warden/internal/store/redis/redistest"
	"github.com/warden-gw/warden/internal/store/storetest"
)

// authPassword is distinctive, so a test can tell it never shows in an error.
const authPassword = "redistest-Pw-7f3a91c2"

// newTimeout bounds redis.New in these tests: a connection that cannot be
// made must be reported, not hang. The configs' timeouts are a second.
const newTimeout = 5 * time.Second

// authConfig is a Config for addr with a key prefix of its own and short
// timeouts, so a failing connection shows in about a second.
func authConfig(addr string) redis.Config {
	cfg := redis.Config{
		Addrs:        []string{addr},
		KeyPrefix:    fmt.Sprintf("auth%d:", prefixes.Add(1)),
		DialTimeout:  time.Second,
		ReadTimeout:  time.Second,
		WriteTimeout: time.Second,
	}
	cfg.SetDefaults()
	return cfg
}

// connect runs redis.New and fails the test if it takes over newTimeout.
// The caller closes the store.
func connect(t *testing.T, cfg redis.Config) (*redis.Store, error) {
	t.Helper()
	type result struct {
		s   *redis.Store
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := redis.New(context.Background(), cfg, redis.Options{})
		done <- result{s, err}
	}()
	select {
	case r := <-done:
		return r.s, r.err
	case <-time.After(newTimeout):
		t.Fatalf("redis.New did not return within %v", newTimeout)
		return nil, nil
	}
}

// mustConnect opens a store closed at the test's cleanup.
func mustConnect(t *testing.T, cfg redis.Config) *redis.Store {
	t.Helper()
	s, err := connect(t, cfg)
	if err != nil {
		t.Fatalf("redis.New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// mustFail checks redis.New fails promptly with an error that does not
// show the password and contains one of want (any error when none).
func mustFail(t *testing.T, cfg redis.Config, want ...string) {
	t.Helper()
	s, err := connect(t, cfg)
	if err == nil {
		s.Close()
		t.Fatalf("redis.New succeeded, want an error containing one of %q", want)
	}
	msg := err.Error()
	t.Logf("redis.New: %v", msg)
	if strings.Contains(msg, authPassword) {
		t.Errorf("the error shows the password: %q", msg)
	}
	if len(want) == 0 {
		return
	}
	for _, w := range want {
		if strings.Contains(msg, w) {
			return
		}
	}
	t.Errorf("error %q contains none of %q", msg, want)
}

// smoke checks the store decides and keeps state: a limit of burst 2
// admits twice then refuses, and a budget of one subject refuses a second.
func smoke(t *testing.T, s store.Store) {
	t.Helper()
	ctx := context.Background()
	req := &store.AdmitRequest{Limits: []store.LimitRequest{{Key: "smoke", Interval: time.Second, Burst: 2, Cost: 1}}}
	for i, want := range []bool{true, true, false} {
		res, err := s.Admit(ctx, t0, req)
		if err != nil {
			t.Fatalf("admit %d: %v", i, err)
		}
		if got := res.Limits[0].Allowed; got != want {
			t.Fatalf("admit %d: allowed %v, want %v", i, got, want)
		}
	}
	res, err := s.Spend(ctx, t0, []store.SpendRequest{{Key: "smoke", Window: time.Hour, Limit: 1, Subjects: []uint64{1, 2}}})
	if err != nil {
		t.Fatalf("spend: %v", err)
	}
	if a := res[0].Allowed; !a[0] || a[1] || res[0].Count != 1 {
		t.Fatalf("spend: allowed %v count %d, want [true false] 1", a, res[0].Count)
	}
}

// writePassword writes p to a file ending in a newline, as editors and
// secret mounts often leave it.
func writePassword(t *testing.T, p string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "redis-password")
	if err := os.WriteFile(f, []byte(p+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestAuthPassword runs against a server with requirepass, over plain TCP.
func TestAuthPassword(t *testing.T) {
	srv := redistest.StartWith(t, redistest.Options{Password: authPassword})
	// A second user besides "default", for username + password (ACL).
	const user, userPassword = "gateway", authPassword + "-acl"
	if _, err := srv.Do("ACL", "SETUSER", user, "on", ">"+userPassword, "~*", "+@all"); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}

	t.Run("password_file", func(t *testing.T) {
		cfg := authConfig(srv.Addr())
		cfg.PasswordFile = writePassword(t, authPassword)
		smoke(t, mustConnect(t, cfg))
	})
	t.Run("password_env", func(t *testing.T) {
		t.Setenv("WARDEN_TEST_REDIS_PASSWORD", authPassword)
		cfg := authConfig(srv.Addr())
		cfg.PasswordEnv = "WARDEN_TEST_REDIS_PASSWORD"
		smoke(t, mustConnect(t, cfg))
	})
	t.Run("username", func(t *testing.T) {
		cfg := authConfig(srv.Addr())
		cfg.Username = user
		cfg.PasswordFile = writePassword(t, userPassword)
		smoke(t, mustConnect(t, cfg))
	})
	t.Run("wrong password", func(t *testing.T) {
		cfg := authConfig(srv.Addr())
		cfg.PasswordFile = writePassword(t, authPassword+"-wrong")
		mustFail(t, cfg, "WRONGPASS")
	})
	t.Run("wrong username", func(t *testing.T) {
		cfg := authConfig(srv.Addr())
		cfg.Username = "nobody"
		cfg.PasswordFile = writePassword(t, authPassword)
		mustFail(t, cfg, "WRONGPASS")
	})
	t.Run("missing password", func(t *testing.T) {
		mustFail(t, authConfig(srv.Addr()), "NOAUTH")
	})
	t.Run("empty password_file", func(t *testing.T) {
		// Refused before connecting: an empty file is a mistake, not "no password".
		cfg := authConfig(srv.Addr())
		cfg.PasswordFile = writePassword(t, "\n")
		mustFail(t, cfg, "is empty")
	})
}

// TestAuthTLS runs against two TLS servers, each with a CA of its own: one
// that also requires a password, one that requires client certificates.
func TestAuthTLS(t *testing.T) {
	srv := redistest.StartWith(t, redistest.Options{Password: authPassword, TLS: true})
	mtls := redistest.StartWith(t, redistest.Options{TLS: true, RequireClientCert: true})
	password := writePassword(t, authPassword)
	// tlsConfig is a config for srv's TLS port trusting caFile.
	tlsConfig := func(caFile string) redis.Config {
		cfg := authConfig(srv.TLSAddr())
		cfg.PasswordFile = password
		cfg.TLS = redis.TLSConfig{Enabled: true, CAFile: caFile}
		return cfg
	}

	t.Run("conformance", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) store.Store {
			s, err := connect(t, tlsConfig(srv.CAFile()))
			if err != nil {
				t.Fatalf("redis.New: %v", err)
			}
			return s
		})
	})
	t.Run("server_name", func(t *testing.T) {
		cfg := tlsConfig(srv.CAFile())
		cfg.TLS.ServerName = "localhost"
		smoke(t, mustConnect(t, cfg))
	})
	t.Run("wrong server_name", func(t *testing.T) {
		cfg := tlsConfig(srv.CAFile())
		cfg.TLS.ServerName = "redis.example"
		mustFail(t, cfg, "certificate is valid for")
	})
	t.Run("system roots", func(t *testing.T) {
		mustFail(t, tlsConfig(""), "certificate signed by unknown authority")
	})
	t.Run("other CA", func(t *testing.T) {
		mustFail(t, tlsConfig(mtls.CAFile()), "certificate signed by unknown authority")
	})
	t.Run("wrong password", func(t *testing.T) {
		cfg := tlsConfig(srv.CAFile())
		cfg.PasswordFile = writePassword(t, authPassword+"-wrong")
		mustFail(t, cfg, "WRONGPASS")
	})
	t.Run("plain client to TLS port", func(t *testing.T) {
		cfg := authConfig(srv.TLSAddr())
		cfg.PasswordFile = password
		// The server drops a client that does not handshake (so far: read:
		// connection reset by peer); the text depends on timing.
		mustFail(t, cfg)
	})
	t.Run("TLS client to plain port", func(t *testing.T) {
		cfg := tlsConfig(srv.CAFile())
		cfg.Addrs = []string{srv.Addr()}
		// The server takes the TLS hello for an inline command and waits
		// for its newline, so the handshake usually times out (dial_timeout);
		// when the random bytes hold one, it answers with an error instead.
		mustFail(t, cfg, "no TLS handshake within dial_timeout", "does not look like a TLS handshake")
	})

	// mtlsConfig is a config for mtls's TLS port, trusting its CA.
	mtlsConfig := func() redis.Config {
		cfg := authConfig(mtls.TLSAddr())
		cfg.TLS = redis.TLSConfig{Enabled: true, CAFile: mtls.CAFile()}
		return cfg
	}
	t.Run("client certificate", func(t *testing.T) {
		cfg := mtlsConfig()
		cfg.TLS.CertFile, cfg.TLS.KeyFile = mtls.ClientCertFiles()
		smoke(t, mustConnect(t, cfg))
	})
	// In TLS 1.3 the server checks the client's certificate after the
	// client's handshake is done: the client learns of the refusal from the
	// server's alert ("tls: certificate required", "tls: unknown
	// certificate authority") or, when the server's close resets the
	// connection first, only that it was dropped.
	dropped := []string{"certificate", "connection reset by peer", "broken pipe", "EOF"}
	t.Run("no client certificate", func(t *testing.T) {
		mustFail(t, mtlsConfig(), dropped...)
	})
	t.Run("client certificate of another CA", func(t *testing.T) {
		cfg := mtlsConfig()
		cfg.TLS.CertFile, cfg.TLS.KeyFile = srv.ClientCertFiles()
		mustFail(t, cfg, dropped...)
	})
}
