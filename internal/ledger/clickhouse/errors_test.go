package clickhouse

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/warden-gw/warden/internal/identify"
	"github.com/warden-gw/warden/internal/ledger"
)

// A query's error says which query (a short name) against which address
// and what failed: never the request's URL or SQL (the ids asked about),
// never a credential. Unreachable, and refused by a real server.
func TestErrorsNameQueryNotSQL(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	const secret = "s3cret-passw0rd"
	os.Setenv("WARDEN_TEST_CH_ERR_PASSWORD", secret)
	s := server(t)
	for _, c := range []struct {
		name, addr, want string
	}{
		{"unreachable", closed, "connection refused"},
		{"refused", s.Addr(), "Wrong password"}, // the password is wrong
	} {
		t.Run(c.name, func(t *testing.T) {
			cl, err := NewClient(Config{Addrs: []string{c.addr}, Database: "warden_errors", User: "warden", PasswordEnv: "WARDEN_TEST_CH_ERR_PASSWORD"})
			if err != nil {
				t.Fatal(err)
			}
			_, err = cl.WhoTook(context.Background(), ledger.Window{}, "subject-4711", "contact", identify.FacetAccount)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			for _, bad := range []string{"WHERE", "subject-4711", "query=", "http://", secret} {
				if strings.Contains(msg, bad) {
					t.Errorf("error %q holds %q", msg, bad)
				}
			}
			if !strings.Contains(msg, c.addr) || !strings.Contains(msg, "who-took") && !strings.Contains(msg, "FROM") || !strings.Contains(msg, c.want) {
				t.Errorf("error %q: want the query's name, %s and %q", msg, c.addr, c.want)
			}
			if !strings.Contains(SQLOf(err), "subject-4711") {
				t.Errorf("the SQL is not kept for a debug log: %q", SQLOf(err))
			}
		})
	}
}

func TestQueryName(t *testing.T) {
	for sql, want := range map[string]string{
		"SELECT ident, count() FROM takers WHERE subject = 'x' FORMAT TabSeparated":      "SELECT FROM takers",
		"INSERT INTO accesses FORMAT RowBinary":                                          "INSERT INTO accesses",
		"CREATE TABLE IF NOT EXISTS views (author String) ENGINE = MergeTree":            "CREATE TABLE views",
		"DROP DATABASE IF EXISTS w":                                                      "DROP DATABASE w",
		"CREATE DATABASE IF NOT EXISTS warden":                                           "CREATE DATABASE warden",
		"SELECT k, count() FROM (\n  SELECT account AS p FROM views WHERE 1) GROUP BY k": "SELECT FROM views",
		"SELECT a FROM (SELECT b FROM takes)":                                            "SELECT FROM takes",
		"SELECT 1 FROM":                                                                  "SELECT",
		"SELECT version()":                                                               "SELECT",
		"  ":                                                                             "empty query",
	} {
		if got := queryName(sql); got != want {
			t.Errorf("queryName(%q) = %q, want %q", sql, got, want)
		}
	}
}
