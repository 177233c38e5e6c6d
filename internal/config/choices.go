package config

import (
	"fmt"
	"strings"
)

// The settings that take one of a few words, each a type of its own so a
// misspelt choice is a compile error, not a comparison that is never true.
// The YAML holds the words as they are.

// EncodedSlashes is server.encoded_slashes.
type EncodedSlashes string

// What a path with an escaped "/" or "\" gets.
const (
	EncodedSlashesReject EncodedSlashes = "reject" // 400
	EncodedSlashesKeep   EncodedSlashes = "keep"   // matched and forwarded as one segment
)

// Validate reports a value that is none of the choices.
func (v EncodedSlashes) Validate() error {
	return oneOf(v, EncodedSlashesReject, EncodedSlashesKeep)
}

// UnderscoreHeaders is server.underscore_headers.
type UnderscoreHeaders string

// What a request header whose name holds "_" gets.
const (
	UnderscoreHeadersDrop UnderscoreHeaders = "drop" // removed before the upstream, as nginx does
	UnderscoreHeadersKeep UnderscoreHeaders = "keep" // forwarded
)

// Validate reports a value that is none of the choices.
func (v UnderscoreHeaders) Validate() error {
	return oneOf(v, UnderscoreHeadersDrop, UnderscoreHeadersKeep)
}

// LogFormat is log.format.
type LogFormat string

// Log line formats.
const (
	LogJSON LogFormat = "json"
	LogText LogFormat = "text"
)

// Validate reports a value that is none of the choices.
func (v LogFormat) Validate() error { return oneOf(v, LogJSON, LogText) }

// StoreBackend is store.backend.
type StoreBackend string

// State backends.
const (
	StoreMemory StoreBackend = "memory" // in this process (kept on disk with store.memory.dir)
	StoreRedis  StoreBackend = "redis"  // shared by a fleet of gateways
)

// Validate reports a value that is none of the choices.
func (v StoreBackend) Validate() error { return oneOf(v, StoreMemory, StoreRedis) }

// oneOf returns nil when v is one of choices, else `"v" is not a, b or c`.
func oneOf[T ~string](v T, choices ...T) error {
	names := make([]string, len(choices))
	for i, c := range choices {
		if v == c {
			return nil
		}
		names[i] = string(c)
	}
	last := len(names) - 1
	return fmt.Errorf("%q is not %s or %s", string(v), strings.Join(names[:last], ", "), names[last])
}
