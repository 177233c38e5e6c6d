package main

import (
	"context"
	"errors"
	"io"
)

// runBench is being written; see the open issues.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("not implemented yet")
}
