package main

import (
	"context"
	"errors"
	"io"
)

// runBan is being written; see the open issues.
func runBan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("not implemented yet")
}
