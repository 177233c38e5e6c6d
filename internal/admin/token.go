package admin

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
)

// maxTokenFileBytes bounds how much of a token file is read.
const maxTokenFileBytes = 4 << 10

// LoadToken reads the admin token from file, or from the environment
// variable named env; exactly one of them must be given. Surrounding
// whitespace (a trailing newline) is trimmed. It refuses an empty token, one
// shorter than 16 bytes, one with inner whitespace or control characters,
// and a token file that other users may read, write or run (mode & 0o007):
// such a file hands the admin API to every local account. Errors name the
// file or variable, never the token.
func LoadToken(file, env string) (string, error) {
	switch {
	case file != "" && env != "":
		return "", errors.New("admin token: give a token file or an environment variable, not both")
	case file == "" && env == "":
		return "", errors.New("admin token: a token file or an environment variable is required")
	}
	var raw, from string
	if file != "" {
		from = "file " + file
		b, err := readTokenFile(file)
		if err != nil {
			return "", err
		}
		raw = string(b)
	} else {
		from = "environment variable " + env
		v, ok := os.LookupEnv(env)
		if !ok {
			return "", fmt.Errorf("admin token: environment variable %s is not set", env)
		}
		raw = v
	}
	tok := strings.TrimSpace(raw)
	switch {
	case tok == "":
		return "", fmt.Errorf("admin token: %s is empty", from)
	case len(tok) < minTokenLength:
		return "", fmt.Errorf("admin token: %s holds %d bytes, at least %d are required", from, len(tok), minTokenLength)
	case strings.IndexFunc(tok, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return "", fmt.Errorf("admin token: %s holds whitespace or control characters inside the token", from)
	}
	return tok, nil
}

func readTokenFile(file string) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("admin token: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("admin token: stat %s: %w", file, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("admin token: %s is not a regular file", file)
	}
	if perm := st.Mode().Perm(); perm&0o007 != 0 {
		return nil, fmt.Errorf("admin token: %s is accessible to other users (mode %04o); run chmod o-rwx %s", file, perm, file)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("admin token: read %s: %w", file, err)
	}
	if len(b) > maxTokenFileBytes {
		return nil, fmt.Errorf("admin token: %s is larger than %d bytes", file, maxTokenFileBytes)
	}
	return b, nil
}
