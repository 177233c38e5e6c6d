package proc

import (
	"context"
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var ready = regexp.MustCompile(`^listening on (\S+)`)

func sh(script string) *exec.Cmd { return exec.Command("/bin/sh", "-c", script) }

func TestStart(t *testing.T) {
	cases := []struct {
		name    string
		script  string
		opts    Options
		wantErr string // empty: ready
	}{
		{name: "ready line after others", script: `echo starting >&2; echo "listening on 127.0.0.1:1 (x)"; exec sleep 60`},
		{name: "ready line on stderr", script: `echo "listening on 127.0.0.1:1" >&2; exec sleep 60`},
		{name: "exits first", script: `echo "bad config" >&2; exit 3`, wantErr: "exited before it was ready (exit status 3):\nbad config"},
		{name: "never ready", script: `echo waiting; exec sleep 60`, opts: Options{Timeout: 200 * time.Millisecond},
			wantErr: "not ready after 200ms:\nwaiting"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Name, c.opts.Ready = "child", ready
			p, err := Start(context.Background(), sh(c.script), c.opts)
			if c.wantErr != "" {
				if err == nil {
					p.Stop()
					t.Fatal("started")
				}
				if !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %q, want %q in it", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer p.Stop()
			if got := p.Ready(); len(got) != 2 || got[1] != "127.0.0.1:1" {
				t.Fatalf("ready %q", got)
			}
		})
	}
}

func TestStartGivesUpWithTheContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := Start(ctx, sh(`exec sleep 60`), Options{Name: "sleeper", Ready: ready})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want the context's", err)
	}
}

func TestStopKillsWhatIgnoresSIGTERM(t *testing.T) {
	// The shell and its sleep both ignore SIGTERM; the group is killed.
	p, err := Start(context.Background(), sh(`trap '' TERM; echo "listening on x"; sleep 60; echo woke`),
		Options{Name: "stubborn", Ready: ready, Grace: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	p.Stop()
	if d := time.Since(t0); d < 200*time.Millisecond || d > 5*time.Second {
		t.Fatalf("stopped after %v, want the grace period", d)
	}
	var ee *exec.ExitError
	if !errors.As(p.Err(), &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("exit %v, want killed", p.Err())
	}
	p.Stop() // a second Stop does nothing
}

func TestStopEndsAChildThatHeedsSIGTERM(t *testing.T) {
	p, err := Start(context.Background(), sh(`trap 'echo bye; exit 0' TERM; echo "listening on x"; while :; do sleep 0.05; done`),
		Options{Name: "polite", Ready: ready})
	if err != nil {
		t.Fatal(err)
	}
	p.Stop()
	if p.Err() != nil {
		t.Fatalf("exit %v, want 0", p.Err())
	}
	if !strings.HasSuffix(p.Output(), "bye\n") {
		t.Fatalf("output %q lacks what it wrote last", p.Output())
	}
}

func TestOutputIsBounded(t *testing.T) {
	p, err := Start(context.Background(), sh(`i=0; while [ $i -lt 2000 ]; do echo "line $i"; i=$((i+1)); done`),
		Options{Name: "talker", Keep: 1000})
	if err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	out := p.Output()
	if len(out) > 1000 || !strings.HasPrefix(out, "line ") || !strings.HasSuffix(out, "line 1999\n") {
		t.Fatalf("kept %d bytes: %q", len(out), out)
	}
	if got := p.LastLines(2); got != "line 1998\nline 1999" {
		t.Fatalf("last lines %q", got)
	}
}

func TestStartRefusesACommandWithItsOwnOutput(t *testing.T) {
	cmd := sh("true")
	cmd.Stdout = &strings.Builder{}
	if _, err := Start(context.Background(), cmd, Options{Name: "x"}); err == nil {
		t.Fatal("started")
	}
}
