package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/warden-gw/warden/internal/admin"
	"github.com/warden-gw/warden/internal/store/memory"
)

const banTestToken = "ban-cmd-test-token-0123456789"

// banServer starts a real admin API over a memory store and returns its URL
// and a token file for it.
func banServer(t *testing.T) (url, tokenFile string, st *memory.Store) {
	t.Helper()
	st = memory.New(memory.Options{SweepEvery: -1})
	t.Cleanup(func() { st.Close() })
	s, err := admin.New(admin.Options{Token: banTestToken, Gatherer: prometheus.NewRegistry(), Bans: st})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	tokenFile = filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(banTestToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv.URL, tokenFile, st
}

func runBanArgs(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := runBan(context.Background(), args, &out, &errb)
	return out.String() + errb.String(), err
}

func TestBanCommandRoundTrip(t *testing.T) {
	url, tok, _ := banServer(t)
	common := []string{"--admin", url, "--token-file", tok}
	steps := []struct {
		name    string
		args    []string
		wantOut []string // substrings of stdout+stderr
		wantErr string   // "" for success
	}{
		{"add net", []string{"add", "--facet", "net", "--value", "198.51.100.9/24", "--reason", "scraper fleet", "--ttl", "24h", "--by", "alice"},
			[]string{"banned net 198.51.100.0/24 until", "(by alice)"}, ""},
		{"add ip with until", []string{"add", "--facet", "ip", "--value", "192.0.2.7", "--reason", "enumeration", "--until", "2099-01-01T00:00:00Z"},
			nil, "at most"},
		{"add ip", []string{"add", "--facet", "ip", "--value", "192.0.2.7", "--reason", "enumeration", "--ttl", "2h"},
			[]string{"banned ip 192.0.2.7"}, ""},
		{"ls table", []string{"ls"},
			[]string{"FACET", "VALUE", "EXPIRES", "ip", "192.0.2.7", "enumeration", "net", "198.51.100.0/24", "scraper fleet", "alice"}, ""},
		{"ls by facet", []string{"ls", "--facet", "ip"}, []string{"192.0.2.7", "(in 2h)"}, ""},
		{"ls empty facet", []string{"ls", "--facet", "app"}, []string{"(no bans)"}, ""},
		{"ls truncated", []string{"ls", "--limit", "1"}, []string{"(1 of 2 bans shown"}, ""},
		{"bad ip", []string{"add", "--facet", "ip", "--value", "1.2.3.999", "--reason", "x", "--ttl", "1h"}, nil, "ip value \"1.2.3.999\""},
		{"unknown facet", []string{"add", "--facet", "asn", "--value", "1", "--reason", "x", "--ttl", "1h"}, nil, "unknown facet \"asn\""},
		{"negative ttl", []string{"add", "--facet", "ip", "--value", "1.2.3.4", "--reason", "x", "--ttl", "-1h"}, nil, "must be positive (HTTP 400)"},
		{"no ttl", []string{"add", "--facet", "ip", "--value", "1.2.3.4", "--reason", "x"}, nil, "--ttl or --until is required"},
		{"bad until", []string{"add", "--facet", "ip", "--value", "1.2.3.4", "--reason", "x", "--until", "tomorrow"}, nil, "--until \"tomorrow\": want an RFC 3339 time"},
		{"rm net", []string{"rm", "--facet", "net", "--value", "198.51.100.0/24"}, []string{"removed ban on net 198.51.100.0/24"}, ""},
		{"rm net again", []string{"rm", "--facet", "net", "--value", "198.51.100.0/24"}, nil, "no ban on net 198.51.100.0/24 (HTTP 404)"},
		{"rm without value", []string{"rm", "--facet", "ip"}, nil, "--facet and --value are required"},
	}
	for _, s := range steps {
		out, err := runBanArgs(t, append(append([]string{}, common...), s.args...)...)
		if s.wantErr == "" && err != nil {
			t.Fatalf("%s: %v\n%s", s.name, err, out)
		}
		if s.wantErr != "" && (err == nil || !strings.Contains(err.Error(), s.wantErr)) {
			t.Fatalf("%s: err %v, want %q\n%s", s.name, err, s.wantErr, out)
		}
		for _, w := range s.wantOut {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output lacks %q:\n%s", s.name, w, out)
			}
		}
	}

	// Flags after the subcommand and the token from the default variable.
	t.Setenv("WARDEN_ADMIN_TOKEN", banTestToken)
	out, err := runBanArgs(t, "ls", "--json", "--admin", url)
	if err != nil {
		t.Fatalf("ls --json: %v\n%s", err, out)
	}
	var l admin.BanListing
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("ls --json is not JSON: %v\n%s", err, out)
	}
	if len(l.Bans) != 1 || l.Bans[0].Value != "192.0.2.7" || l.Bans[0].Reason != "enumeration" || l.Total != 1 {
		t.Fatalf("ls --json: %+v", l)
	}

	// Without --reason, as issue 19 writes it: the ban is set, with a reason
	// saying it was set by hand.
	if out, err := runBanArgs(t, "add", "--admin", url, "--facet", "ip", "--value", "127.0.0.9", "--ttl", "24h"); err != nil || !strings.Contains(out, "banned ip 127.0.0.9") {
		t.Fatalf("add without --reason: %v\n%s", err, out)
	}
	if out, err := runBanArgs(t, "ls", "--admin", url, "--facet", "ip"); err != nil || !strings.Contains(out, "manual ban") {
		t.Fatalf("ls after add without --reason: %v\n%s", err, out)
	}
}

func TestBanCommandFailures(t *testing.T) {
	url, tok, _ := banServer(t)
	wrong := filepath.Join(t.TempDir(), "wrong")
	if err := os.WriteFile(wrong, []byte("wrong-token-0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(t.TempDir(), "open")
	if err := os.WriteFile(open, []byte(banTestToken), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	// A port that was just free: nothing listens there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()

	cases := []struct {
		name      string
		args      []string
		wantErr   string
		wantUsage bool
	}{
		{"wrong token", []string{"ls", "--admin", url, "--token-file", wrong}, "refused the token (401)", false},
		{"world-readable token file", []string{"ls", "--admin", url, "--token-file", open}, "accessible to other users", false},
		{"token from unset variable", []string{"ls", "--admin", url, "--token-env", "WARDEN_TEST_NO_SUCH_VARIABLE"}, "not set", false},
		{"file and env", []string{"ls", "--admin", url, "--token-file", tok, "--token-env", "X"}, "not both", false},
		{"connection refused", []string{"ls", "--admin", closed, "--token-file", tok}, "refused the connection", false},
		{"bad admin url", []string{"ls", "--admin", "127.0.0.1:9090", "--token-file", tok}, "want a URL", false},
		{"not the admin API", []string{"ls", "--admin", url + "/nowhere", "--token-file", tok}, "no such route (HTTP 404)", false},
		{"no subcommand", []string{"--admin", url}, "", true},
		{"unknown subcommand", []string{"ban", "--admin", url}, "", true},
		{"stray argument", []string{"rm", "--facet", "ip", "--value", "1.2.3.4", "extra"}, "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := runBanArgs(t, c.args...)
			if err == nil {
				t.Fatalf("succeeded:\n%s", out)
			}
			if c.wantUsage {
				if !errors.Is(err, errUsage) {
					t.Fatalf("err %v, want a usage error", err)
				}
				return
			}
			if !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("err %v, want %q", err, c.wantErr)
			}
			if strings.Contains(err.Error()+out, banTestToken) {
				t.Fatalf("the token reached the output: %v\n%s", err, out)
			}
		})
	}
}
