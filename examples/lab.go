package examples

import _ "embed"

//go:embed lab.yaml
var lab string

// LabConfig is examples/lab.yaml, a fresh copy for each caller to change
// as it likes.
func LabConfig() []byte { return []byte(lab) }
