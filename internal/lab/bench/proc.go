package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100
// on every Linux architecture Go supports.
const clockTicks = 100

// CPU is a process's CPU time in seconds, in user space and in the kernel.
type CPU struct{ User, System float64 }

// Total is user plus system time.
func (c CPU) Total() float64 { return c.User + c.System }

// Sub is c minus o.
func (c CPU) Sub(o CPU) CPU { return CPU{User: c.User - o.User, System: c.System - o.System} }

// CPUTime is the CPU time of pid and of its descendants still running
// (nginx's workers are the master's children).
func CPUTime(pid int) (CPU, error) {
	pids := append([]int{pid}, descendants(pid)...)
	var user, sys uint64
	for i, p := range pids {
		st, err := procStat(p)
		if err != nil {
			if i == 0 {
				return CPU{}, err
			}
			continue // a child gone between listing and reading
		}
		user += st.utime
		sys += st.stime
	}
	return CPU{User: float64(user) / clockTicks, System: float64(sys) / clockTicks}, nil
}

// stat is what the benchmark reads of /proc/PID/stat: CPU ticks and the
// parent pid.
type stat struct {
	utime, stime uint64
	ppid         int
}

// procStat reads one process's /proc/PID/stat.
func procStat(pid int) (stat, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return stat{}, fmt.Errorf("bench: cpu of %d: %w", pid, err)
	}
	return parseStat(b)
}

// parseStat parses /proc/PID/stat; the command name may hold spaces and
// parentheses, so fields are counted from the last ')'.
func parseStat(b []byte) (stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return stat{}, errors.New("bench: /proc stat: no ')'")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return stat{}, errors.New("bench: /proc stat: too few fields")
	}
	pp, err1 := strconv.Atoi(f[1])
	u, err2 := strconv.ParseUint(f[11], 10, 64)
	s, err3 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return stat{}, fmt.Errorf("bench: /proc stat: %w", err)
	}
	return stat{utime: u, stime: s, ppid: pp}, nil
}

func descendants(root int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	parent := map[int]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := procStat(pid); err == nil {
			parent[pid] = st.ppid
		}
	}
	var out []int
	frontier := []int{root}
	for len(frontier) > 0 {
		var next []int
		for pid, pp := range parent {
			for _, f := range frontier {
				if pp == f {
					next = append(next, pid)
				}
			}
		}
		out = append(out, next...)
		frontier = next
	}
	return out
}

// child is a process the benchmark started and must stop.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  *os.File
}

func (c *child) PID() int { return c.cmd.Process.Pid }

// startChild runs bin with args and waits for a stdout line containing
// "listening on ADDR", returning ADDR. stderr goes to logPath.
func startChild(ctx context.Context, name, logPath string, env []string, bin string, args ...string) (*child, string, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, "", fmt.Errorf("bench: %s log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		lf.Close()
		return nil, "", fmt.Errorf("bench: %s: %w", name, err)
	}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, "", fmt.Errorf("bench: start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{}), log: lf}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if _, rest, ok := strings.Cut(line, "listening on "); ok && !sent {
				addr, _, _ := strings.Cut(rest, " ")
				addrc <- addr
				sent = true
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	go func() { c.err = cmd.Wait(); close(c.done) }()
	t := time.NewTimer(60 * time.Second)
	defer t.Stop()
	select {
	case addr := <-addrc:
		return c, addr, nil
	case <-c.done:
		lf.Close()
		b, _ := os.ReadFile(logPath)
		return nil, "", fmt.Errorf("bench: %s exited at start (%v): %s", name, c.err, lastLines(b, 5))
	case <-t.C:
		c.Stop()
		return nil, "", fmt.Errorf("bench: %s not ready after 60s", name)
	case <-ctx.Done():
		c.Stop()
		return nil, "", ctx.Err()
	}
}

// Stop sends SIGTERM, then kills the process group after 10 s.
func (c *child) Stop() {
	select {
	case <-c.done:
	default:
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
			<-c.done
		}
	}
	c.log.Close()
}

// freeAddr finds a free loopback port for servers that cannot report the
// port they picked (redis-server).
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("bench: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}
