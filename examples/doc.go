// Package examples holds warden's reference config, examples/lab.yaml, and
// embeds it, so that `warden demo` and the lab run from any directory
// with the file as it is here: there is no other copy to keep in step.
//
// It must never hold anything but example files and their embedding: no
// parsing, no defaults of its own.
package examples
