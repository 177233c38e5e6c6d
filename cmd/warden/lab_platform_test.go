package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestLabPlatformCommand starts the real command on a free loopback port,
// reads its ready line, asks it something, and stops it as SIGINT would.
func TestLabPlatformCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- runLabPlatform(ctx, []string{"--addr", "127.0.0.1:0", "--profiles", "500", "--seed", "3"}, pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no ready line: %v", err)
	}
	m := regexp.MustCompile(`^lab-platform listening on (127\.0\.0\.1:\d+) \(500 profiles, seed 3\)\n$`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("ready line %q", line)
	}
	go io.Copy(io.Discard, pr)
	resp, err := http.Get("http://" + m[1] + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("did not stop after its context ended")
	}
}

func TestLabPlatformTruthCommand(t *testing.T) {
	var out strings.Builder
	if err := runLabPlatform(context.Background(), []string{"truth", "--profiles", "3", "--seed", "1"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || lines[0] != "id,username,email,phone" || !strings.HasPrefix(lines[1], "1,") {
		t.Fatalf("truth output:\n%s", out.String())
	}
}
