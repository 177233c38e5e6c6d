package main

import (
	"context"
	"errors"
	"io"
)

// runLabSim is being written; see the open issues.
func runLabSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("not implemented yet")
}
