package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is one configuration problem with its position in the file.
type Error struct {
	File   string
	Line   int // 0 when unknown
	Column int
	Msg    string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
}

// Load reads, decodes (strictly: unknown keys are errors), defaults and
// validates the file at path. Every error is an *Error, joined.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

var lineRE = regexp.MustCompile(`line (\d+): (.*)`)

// unknownRE is yaml's message for a key no field takes (KnownFields).
var unknownRE = regexp.MustCompile(`^field (\S+) not found in type \S+$`)

// Parse is Load on bytes already read; name is used in messages.
func Parse(name string, data []byte) (*Config, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: name, Msg: "empty config"}
		}
		return nil, yamlError(name, nil, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &Error{File: name, Line: extra.Line, Column: extra.Column, Msg: "more than one YAML document"}
	}
	var cfg Config
	if err := decodeStrict(data, &cfg); err != nil {
		return nil, yamlError(name, &root, err)
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		var out []error
		for _, e := range unjoin(err) {
			out = append(out, locate(name, &root, e.Error()))
		}
		return nil, errors.Join(out...)
	}
	return &cfg, nil
}

// decodeStrict decodes the original bytes with KnownFields (yaml.Node.Decode
// has no strict mode), so yaml's line numbers are the file's.
func decodeStrict(data []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	return dec.Decode(v)
}

func yamlError(name string, root *yaml.Node, err error) error {
	var out []error
	var te *yaml.TypeError
	msgs := []string{err.Error()}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	for _, m := range msgs {
		m = strings.TrimPrefix(m, "yaml: ")
		if g := lineRE.FindStringSubmatch(m); g != nil {
			line, _ := strconv.Atoi(g[1])
			msg := g[2]
			// yaml names the Go type ("field retries not found in type
			// config.Upstream"); the reader wrote keys, so say it in keys.
			if k := unknownRE.FindStringSubmatch(msg); k != nil {
				msg = "unknown key"
				if path := keyPath(root, line, k[1]); path != "" {
					msg = path + ": " + msg
				} else {
					msg = fmt.Sprintf("%q: %s", k[1], msg)
				}
			}
			out = append(out, &Error{File: name, Line: line, Column: columnOf(root, line), Msg: msg})
			continue
		}
		out = append(out, &Error{File: name, Msg: m})
	}
	return errors.Join(out...)
}

// keyPath is the dotted path ("upstream.retries", "rate_limits[1].x") of
// the mapping key named key on line, "" when no key there is.
func keyPath(n *yaml.Node, line int, key string) string {
	if n == nil {
		return ""
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return ""
		}
		return keyPath(n.Content[0], line, key)
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Line == line && k.Value == key {
				return k.Value
			}
			if p := keyPath(v, line, key); p != "" {
				if strings.HasPrefix(p, "[") {
					return k.Value + p
				}
				return k.Value + "." + p
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if p := keyPath(c, line, key); p != "" {
				if strings.HasPrefix(p, "[") {
					return fmt.Sprintf("[%d]%s", i, p)
				}
				return fmt.Sprintf("[%d].%s", i, p)
			}
		}
	}
	return ""
}

// columnOf finds the first node on line, for a column to go with yaml's line.
func columnOf(n *yaml.Node, line int) int {
	if n == nil {
		return 1
	}
	if n.Line == line && n.Kind == yaml.ScalarNode {
		return n.Column
	}
	for _, c := range n.Content {
		if col := columnOf(c, line); col > 0 && c.Line <= line {
			if c.Line == line || col != 1 {
				return col
			}
		}
	}
	if n.Line == line {
		return n.Column
	}
	return 1
}

// locate turns "a.b[2].c: message" into file:line:column of that key.
func locate(name string, root *yaml.Node, msg string) error {
	path, rest, ok := strings.Cut(msg, ": ")
	if !ok || strings.ContainsAny(path, " \"") {
		return &Error{File: name, Msg: msg}
	}
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	best := n
	for _, seg := range splitPath(path) {
		next := child(n, seg)
		if next == nil {
			break
		}
		n, best = next, next
	}
	return &Error{File: name, Line: best.Line, Column: best.Column, Msg: path + ": " + rest}
}

func splitPath(p string) []string {
	var segs []string
	for _, part := range strings.Split(p, ".") {
		for part != "" {
			i := strings.IndexByte(part, '[')
			if i < 0 {
				segs = append(segs, part)
				break
			}
			if i > 0 {
				segs = append(segs, part[:i])
			}
			j := strings.IndexByte(part, ']')
			if j < i {
				segs = append(segs, part[i:])
				break
			}
			segs = append(segs, part[i:j+1])
			part = part[j+1:]
		}
	}
	return segs
}

// child returns the value node for a map key, or the element for "[i]".
// For a key it returns the key node, whose position is where the eye goes;
// navigation continues from its value.
func child(n *yaml.Node, seg string) *yaml.Node {
	if strings.HasPrefix(seg, "[") {
		i, err := strconv.Atoi(strings.Trim(seg, "[]"))
		if err != nil || n.Kind != yaml.SequenceNode || i < 0 || i >= len(n.Content) {
			return nil
		}
		return n.Content[i]
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == seg {
			v := n.Content[i+1]
			if v.Kind == yaml.ScalarNode {
				return v
			}
			return v
		}
	}
	return nil
}

// ParseLevel maps a level name to slog's.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("%q is not debug, info, warn or error", s)
	}
	return l, nil
}
