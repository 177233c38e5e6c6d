// Package config reads warden's YAML configuration: strictly (an unknown key
// is an error, named by its path, "upstream.retries: unknown key", not by the
// Go type yaml found no field in), with every default applied and every field validated, and
// each problem reported as file:line:column.
//
// Sections owned by other packages (identity, inspect, ration, store.redis,
// store.failure) are embedded as those packages' own types; they validate
// themselves and name the failing field by its YAML path, which this
// package maps back to a position. It must never log secrets: the file holds
// only paths or variable names for them.
package config
