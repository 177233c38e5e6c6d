package proc

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options says how to watch and stop a child. Zero values mean the
// defaults named on each field.
type Options struct {
	// Name names the child in errors ("lab-platform").
	Name string
	// Ready matches the line of output (stdout or stderr) that says the
	// child serves; its submatches are the Process's Ready. Nil: the
	// child counts as ready once it has started.
	Ready *regexp.Regexp
	// Timeout bounds the wait for Ready; 0 means 30 s.
	Timeout time.Duration
	// Grace is how long Stop waits after SIGTERM before it kills the
	// process group; 0 means 10 s.
	Grace time.Duration
	// Keep is how many bytes of output (the last ones) are kept; 0 means
	// 1 MiB.
	Keep int
}

// errorLines is how many lines of output an error from Start carries.
const errorLines = 20

// Process is a running child.
type Process struct {
	cmd   *exec.Cmd
	grace time.Duration
	ready []string
	out   *tail

	done chan struct{}
	err  error // Wait's; written before done is closed

	stopOnce sync.Once
}

// Start starts cmd, built by the caller with its path, arguments,
// environment and directory, and returns once a line of its output matches
// o.Ready. Start owns cmd's output and process attributes: cmd.Stdout,
// cmd.Stderr and cmd.SysProcAttr must be unset. ctx bounds the wait for
// readiness only; stop the child with Stop.
func Start(ctx context.Context, cmd *exec.Cmd, o Options) (*Process, error) {
	if cmd.Stdout != nil || cmd.Stderr != nil || cmd.SysProcAttr != nil {
		return nil, fmt.Errorf("proc: start %s: output or process attributes already set", o.Name)
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Grace <= 0 {
		o.Grace = 10 * time.Second
	}
	if o.Keep <= 0 {
		o.Keep = 1 << 20
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("proc: start %s: pipe: %w", o.Name, err)
	}
	// One pipe for both streams keeps their lines in the order written.
	cmd.Stdout, cmd.Stderr = w, w
	// Its own process group, so that Stop reaches what it started; killed
	// with us, so that a crashed parent leaves nothing serving.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("proc: start %s: %w", o.Name, err)
	}
	w.Close() // the child holds its own copy; EOF comes when it exits
	p := &Process{cmd: cmd, grace: o.Grace, out: &tail{keep: o.Keep}, done: make(chan struct{})}

	readyc := make(chan []string, 1)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		p.read(r, o.Ready, readyc)
	}()
	go func() {
		p.err = cmd.Wait()
		// Let the reader take what the child wrote last, unless something
		// it started still holds the pipe.
		select {
		case <-readDone:
		case <-time.After(time.Second):
		}
		r.Close()
		close(p.done)
	}()

	if o.Ready == nil {
		return p, nil
	}
	t := time.NewTimer(o.Timeout)
	defer t.Stop()
	select {
	case m := <-readyc:
		p.ready = m
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited before it was ready (%v):\n%s", o.Name, p.err, p.LastLines(errorLines))
	case <-t.C:
		p.Stop()
		return nil, fmt.Errorf("%s not ready after %s:\n%s", o.Name, o.Timeout, p.LastLines(errorLines))
	case <-ctx.Done():
		p.Stop()
		return nil, fmt.Errorf("%s: waiting until ready: %w", o.Name, ctx.Err())
	}
}

// read keeps the child's output and sends the submatches of the first line
// matching ready. It reads to the end, so the child never blocks on a full
// pipe.
func (p *Process) read(r io.Reader, ready *regexp.Regexp, readyc chan<- []string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	found := ready == nil
	for sc.Scan() {
		line := sc.Bytes()
		p.out.write(line, true)
		if !found {
			if m := ready.FindStringSubmatch(string(line)); m != nil {
				found = true
				readyc <- m
			}
		}
	}
	// A line longer than the scanner takes ends the scanning, not the
	// reading.
	_, _ = io.Copy(p.out, r)
}

// Ready is the submatches of the line that matched Options.Ready: [0] the
// match, then its groups. Nil when Options.Ready was nil.
func (p *Process) Ready() []string { return p.ready }

// PID is the child's process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed once the child has exited and its output been read.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is how the child exited (exec.Cmd.Wait's error); valid once Done is
// closed.
func (p *Process) Err() error { return p.err }

// Output is the last of the child's output, up to Options.Keep bytes.
func (p *Process) Output() string { return p.out.String() }

// LastLines is the last n lines of the child's output.
func (p *Process) LastLines(n int) string {
	lines := strings.Split(strings.TrimRight(p.Output(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Stop asks the child to end (SIGTERM) and, if it has not after the grace
// period, kills its process group. It returns once the child has exited;
// calling it again, or after the child exited, does nothing.
func (p *Process) Stop() {
	p.stopOnce.Do(func() {
		select {
		case <-p.done:
			return
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		t := time.NewTimer(p.grace)
		defer t.Stop()
		select {
		case <-p.done:
		case <-t.C:
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	})
}

// tail keeps the last keep bytes written to it.
type tail struct {
	mu   sync.Mutex
	keep int
	buf  []byte
	cut  bool // bytes before buf were dropped
}

func (t *tail) Write(b []byte) (int, error) {
	t.write(b, false)
	return len(b), nil
}

func (t *tail) write(b []byte, line bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if line {
		t.buf = append(t.buf, '\n')
	}
	// Trimmed at twice the bound, so that a long run of lines copies
	// rarely.
	if len(t.buf) > 2*t.keep {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.keep:]...)
		t.cut = true
	}
}

// String is what is kept, from the first whole line when older output
// was dropped.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	b, cut := t.buf, t.cut
	if len(b) > t.keep {
		b, cut = b[len(b)-t.keep:], true
	}
	if cut {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}
