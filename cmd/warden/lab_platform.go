package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/warden-gw/warden/internal/lab/platform"
)

// runLabPlatform serves the stand-in platform (lab-platform.md) until ctx
// ends, or with "truth" prints its ground truth CSV.
func runLabPlatform(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "truth" {
		return runLabPlatformTruth(args[1:], stdout, stderr)
	}
	fs := newFlags("lab-platform", stderr)
	addr := fs.String("addr", "127.0.0.1:8081", "address to listen on (port 0 picks a free one)")
	profiles := fs.Int("profiles", 100_000, "number of generated profiles (ids 1..N)")
	seed := fs.Int64("seed", 1, "seed every datum is derived from")
	secret := fs.String("jwt-secret", "lab-secret", "HS256 secret of account tokens")
	if err := fs.Parse(args); err != nil {
		return errUsage // the flag package has said what was wrong
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "warden lab-platform: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	p, err := platform.New(platform.Options{Profiles: *profiles, Seed: *seed, JWTSecret: *secret})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	srv := &http.Server{
		Handler:           p.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "lab-platform listening on %s (%d profiles, seed %d)\n", ln.Addr(), *profiles, *seed)
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

func runLabPlatformTruth(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("lab-platform truth", stderr)
	profiles := fs.Int("profiles", 100_000, "number of generated profiles (ids 1..N)")
	seed := fs.Int64("seed", 1, "seed every datum is derived from")
	if err := fs.Parse(args); err != nil {
		return errUsage // the flag package has said what was wrong
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "warden lab-platform truth: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	return platform.WriteTruth(stdout, *profiles, *seed)
}
