package demo

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// stateKeys are the config's directories that carry warden's state from
// one run to the next: bans, limits and budgets (the memory store's
// snapshot and ban log) and the ledger (with the DP budgets' spending).
var stateKeys = [][]string{{"store", "memory", "dir"}, {"ledger", "dir"}}

// freshState returns src, a config of the user's, with the state
// directories it sets (stateKeys) moved into dir, the demo's own, and the
// keys it moved. Each value is replaced where it is written, every other
// byte kept, so serve's file:line:column of an error in the copy are the
// file's. A relative dir (examples/lab.yaml's warden-state) would carry the
// bans and budgets of one demo into the next: the harvesters of the next
// run found themselves refused from the start.
func freshState(src []byte, dir string) ([]byte, []string, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil || len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return src, nil, nil // not a mapping: serve reports it, naming its position
	}
	type edit struct {
		start, end int
		with       string
	}
	var edits []edit
	var moved []string
	for _, path := range stateKeys {
		n := lookup(root.Content[0], path)
		if n == nil || n.Kind != yaml.ScalarNode || n.Value == "" {
			continue // unset or empty: no state on disk, nothing carried over
		}
		key := strings.Join(path, ".")
		start, end, ok := scalarSpan(src, n)
		if !ok {
			return nil, nil, fmt.Errorf("%s: cannot move with the demo's state (write it as a plain or quoted string on one line, or give --keep-state)", key)
		}
		edits = append(edits, edit{start, end, strconv.Quote(stateDir(dir, key))})
		moved = append(moved, key)
	}
	// Back to front, so that each edit's offsets still hold.
	slices.SortFunc(edits, func(a, b edit) int { return a.start - b.start })
	out := bytes.Clone(src)
	for i := len(edits) - 1; i >= 0; i-- {
		e := edits[i]
		out = append(out[:e.start:e.start], append([]byte(e.with), out[e.end:]...)...)
	}
	return out, moved, nil
}

// stateDir is where a demo run in dir keeps the directory of key, as
// with the embedded config (wardenConfig).
func stateDir(dir, key string) string {
	if key == "ledger.dir" {
		return LedgerDir(dir)
	}
	return filepath.Join(dir, "warden-state")
}

// lookup is the value at path under the mapping m, or nil.
func lookup(m *yaml.Node, path []string) *yaml.Node {
	for _, key := range path {
		if m == nil || m.Kind != yaml.MappingNode {
			return nil
		}
		m = valueOf(m, key)
	}
	return m
}

// valueOf is the value of key in the mapping m (its last, as YAML reads a
// key given twice), or nil.
func valueOf(m *yaml.Node, key string) *yaml.Node {
	var v *yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			v = m.Content[i+1]
		}
	}
	return v
}

// scalarSpan is the byte span of scalar n's text in src: a plain scalar on
// one line, or a single- or double-quoted one. Anything else (a block
// scalar, an alias, an anchored or tagged value, one folded over lines)
// is not found.
func scalarSpan(src []byte, n *yaml.Node) (start, end int, ok bool) {
	if n.Anchor != "" || n.Alias != nil || n.Style&yaml.TaggedStyle != 0 || n.Line < 1 || n.Column < 1 {
		return 0, 0, false
	}
	off := 0
	for l := 1; l < n.Line; l++ {
		i := bytes.IndexByte(src[off:], '\n')
		if i < 0 {
			return 0, 0, false
		}
		off += i + 1
	}
	// yaml's column counts characters, not bytes.
	for c := 1; c < n.Column; c++ {
		if off >= len(src) || src[off] == '\n' {
			return 0, 0, false
		}
		_, w := utf8.DecodeRune(src[off:])
		off += w
	}
	rest := src[off:]
	if eol := bytes.IndexByte(rest, '\n'); eol >= 0 {
		rest = rest[:eol]
	}
	switch n.Style {
	case 0:
		if !bytes.HasPrefix(rest, []byte(n.Value)) {
			return 0, 0, false
		}
		return off, off + len(n.Value), true
	case yaml.DoubleQuotedStyle:
		for i := 1; i < len(rest); i++ {
			switch rest[i] {
			case '\\':
				i++
			case '"':
				return off, off + i + 1, rest[0] == '"'
			}
		}
	case yaml.SingleQuotedStyle:
		for i := 1; i < len(rest); i++ {
			if rest[i] == '\'' {
				if i+1 < len(rest) && rest[i+1] == '\'' {
					i++
					continue
				}
				return off, off + i + 1, rest[0] == '\''
			}
		}
	}
	return 0, 0, false
}
