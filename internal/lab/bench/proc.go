package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/warden-gw/warden/internal/lab/proc"
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

// listening is how every server the benchmark starts says where it
// serves ("lab-platform listening on ADDR ...", "listening on ADDR").
var listening = regexp.MustCompile(`^(?:[\w-]+ )?listening on (\S+)`)

// startChild runs bin with args and waits for its "listening on ADDR"
// line, returning ADDR.
func startChild(ctx context.Context, name string, env []string, bin string, args ...string) (*proc.Process, string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	// The last 64 KiB of output are enough for an error message; a
	// benchmark's children log little (warden at warn).
	c, err := proc.Start(ctx, cmd, proc.Options{Name: name, Ready: listening, Timeout: 60 * time.Second, Keep: 64 << 10})
	if err != nil {
		return nil, "", fmt.Errorf("bench: %w", err)
	}
	return c, c.Ready()[1], nil
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
