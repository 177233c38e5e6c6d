package main

import (
	"context"
	"errors"
	"io"
)

// runLabPlatform is being written; see the open issues.
func runLabPlatform(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("not implemented yet")
}
