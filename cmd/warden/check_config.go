package main

import (
	"context"
	"errors"
	"io"
)

// runCheckConfig is being written; see the open issues.
func runCheckConfig(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("not implemented yet")
}
