package sim

import _ "embed"

// LabConfig is a copy of examples/lab.yaml, embedded so that `warden demo`
// runs from any directory. A test keeps the copy equal to the original.
//
//go:embed lab.yaml
var LabConfig []byte
