// Package backendauth is how warden presents itself to a backend it calls
// (Redis, ClickHouse): a password read from a file or an environment
// variable, and client TLS. Each backend's config embeds these and wraps
// the errors with its own name.
//
// It must never log or return a secret in an error, and never fall back
// to plaintext when TLS is enabled and its files cannot be read.
package backendauth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// TLS is a backend client's TLS configuration.
type TLS struct {
	Enabled    bool   `yaml:"enabled"`
	CAFile     string `yaml:"ca_file"`     // a private CA (default: the system's roots)
	CertFile   string `yaml:"cert_file"`   // a client certificate, with KeyFile
	KeyFile    string `yaml:"key_file"`    //
	ServerName string `yaml:"server_name"` // default: the address's host
}

// Check reports settings that cannot be what was meant, each starting
// with its key: a CA, certificate or server name while TLS is off (the
// connection, the password with it, would go in cleartext), a
// certificate without its key.
func (t TLS) Check() []error {
	var errs []error
	if !t.Enabled && (t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.ServerName != "") {
		errs = append(errs, errors.New("tls.enabled: is false but other tls settings are set"))
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		errs = append(errs, errors.New("tls.cert_file: cert_file and key_file go together"))
	}
	return errs
}

// CheckAddrs reports each address that is not host:port with a host and
// a port in 1..65535, as "addrs[i]: ...".
func CheckAddrs(addrs []string) []error {
	var errs []error
	for i, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil {
			errs = append(errs, fmt.Errorf("addrs[%d]: %q is not host:port: %v", i, a, err))
			continue
		}
		if host == "" {
			errs = append(errs, fmt.Errorf("addrs[%d]: %q has no host", i, a))
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			errs = append(errs, fmt.Errorf("addrs[%d]: port %q is not a number in 1..65535", i, port))
		}
	}
	return errs
}

// Config builds the client's tls.Config, nil when TLS is off. Errors name
// the setting that failed (tls.ca_file, tls.cert_file).
func (t TLS) Config() (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file: %s holds no PEM certificate", t.CAFile)
		}
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// Password reads a password from file (trailing newline trimmed; an empty
// file is an error) or, when no file is named, from the variable env; ""
// when neither is set. Errors name the setting (password_file,
// password_env), never the value.
func Password(file, env string) (string, error) {
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("password_file: %w", err)
		}
		p := strings.TrimRight(string(b), "\r\n")
		if p == "" {
			return "", fmt.Errorf("password_file: %s is empty", file)
		}
		return p, nil
	case env != "":
		p, ok := os.LookupEnv(env)
		if !ok {
			return "", fmt.Errorf("password_env: variable %s is not set", env)
		}
		return p, nil
	}
	return "", nil
}
