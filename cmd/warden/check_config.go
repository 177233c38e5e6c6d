package main

import (
	"context"
	"fmt"
	"io"

	"github.com/warden-gw/warden/internal/config"
)

// runCheckConfig validates config files; any error exits non-zero.
func runCheckConfig(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check-config", stderr)
	fs.Usage = func() { // it has no flags: the default printed an empty list
		fmt.Fprintln(stderr, "usage: warden check-config FILE...\n\nValidates each file; errors as file:line:column: message, exit 1 on any.")
	}
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: warden check-config FILE...")
		return errUsage
	}
	bad := 0
	for _, path := range fs.Args() {
		if _, err := config.Load(path); err != nil {
			fmt.Fprintln(stderr, err)
			bad++
			continue
		}
		fmt.Fprintf(stdout, "%s: ok\n", path)
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d files invalid", bad, fs.NArg())
	}
	return nil
}
