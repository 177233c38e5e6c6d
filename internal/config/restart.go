package config

import (
	"reflect"
	"strings"
)

// restartOnly are the sections a running gateway keeps from its start: its
// listeners and their TLS, the admin API, the store it opened (and the
// guard around it), and the upstream client, server bounds and logger its
// front was built with. A reload builds only a new pipeline (identity,
// limits, inspection, rationing), so a change here would be ignored.
var restartOnly = map[string]bool{
	"listen": true, "tls": true, "upstream": true, "server": true,
	"admin": true, "dashboard": true, "log": true, "store": true, "ledger": true, "detect": true, "canary": true,
}

// NeedsRestart returns the YAML paths of the keys that differ between old
// and next and that a reload cannot apply (nil when a reload can apply
// next). front counts as changed only when the front it resolves to does.
func NeedsRestart(old, next *Config) []string {
	var keys []string
	a, b := reflect.ValueOf(old).Elem(), reflect.ValueOf(next).Elem()
	for i := 0; i < a.NumField(); i++ {
		key := yamlKey(a.Type().Field(i))
		switch {
		case key == "front":
			if old.ResolveFront() != next.ResolveFront() {
				keys = append(keys, key)
			}
		case restartOnly[key]:
			keys = changed(keys, key, a.Field(i), b.Field(i))
		}
	}
	return keys
}

// ResolveFront returns the front in use: Front itself, or for auto the
// std front under TLS (HTTP/2), fast for an https upstream, else loop.
func (c *Config) ResolveFront() string {
	switch {
	case c.Front != FrontAuto:
		return c.Front
	case c.TLS.Enabled():
		return FrontStd
	case strings.HasPrefix(c.Upstream.URL, "https:"):
		return FrontFast
	}
	return FrontLoop
}

// changed appends to keys the path of every leaf under path where a and b
// differ: a struct by its fields, anything else (a list too) as a whole.
func changed(keys []string, path string, a, b reflect.Value) []string {
	if a.Kind() != reflect.Struct {
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			keys = append(keys, path)
		}
		return keys
	}
	for i := 0; i < a.NumField(); i++ {
		f := a.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		if key := yamlKey(f); key != "-" {
			keys = changed(keys, path+"."+key, a.Field(i), b.Field(i))
		}
	}
	return keys
}

// yamlKey is the key the YAML decoder reads field f from.
func yamlKey(f reflect.StructField) string {
	if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name != "" {
		return name
	}
	return strings.ToLower(f.Name)
}
