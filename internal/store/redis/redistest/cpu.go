package redistest

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// CPU is the server's CPU time (user+system) so far, from INFO cpu.
func (s *Server) CPU() (time.Duration, error) {
	info, err := s.Do("INFO", "cpu")
	if err != nil {
		return 0, err
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("INFO cpu %s: %w", k, err)
			}
			total += f
		}
	}
	return time.Duration(total * float64(time.Second)), nil
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ReportCPU measures, until the returned func is called, the CPU time this
// process and the server spend per operation, and reports them as the
// benchmark metrics client-cpu-ns/op and redis-cpu-ns/op. On a shared,
// loaded machine these vary much less than ns/op (wall time). srv may be nil
// (no server to measure).
func ReportCPU(b *testing.B, srv *Server) (stop func()) {
	self := selfCPU()
	var server time.Duration
	if srv != nil {
		server, _ = srv.CPU()
	}
	return func() {
		b.StopTimer()
		if b.N == 0 {
			return
		}
		b.ReportMetric(float64(selfCPU()-self)/float64(b.N), "client-cpu-ns/op")
		if srv != nil {
			if after, err := srv.CPU(); err == nil {
				b.ReportMetric(float64(after-server)/float64(b.N), "redis-cpu-ns/op")
			}
		}
	}
}
