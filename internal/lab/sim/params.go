package sim

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// params are one scenario's NAME.KEY=VALUE settings; reading a key marks
// it used so that misspelt keys are reported.
type params struct {
	name string
	kv   map[string]string
	used map[string]bool
	errs []string
}

func newParams(name string, all map[string]string) *params {
	ps := &params{name: name, kv: map[string]string{}, used: map[string]bool{}}
	for k, v := range all {
		if n, key, ok := strings.Cut(k, "."); ok && n == name {
			ps.kv[key] = v
		}
	}
	return ps
}

func (ps *params) raw(key string) (string, bool) {
	ps.used[key] = true
	v, ok := ps.kv[key]
	return v, ok
}

func (ps *params) bad(key, v, want string) {
	ps.errs = append(ps.errs, fmt.Sprintf("%s.%s=%q: want %s", ps.name, key, v, want))
}

func (ps *params) int(key string, def, min, max int) int {
	v, ok := ps.raw(key)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		ps.bad(key, v, fmt.Sprintf("an integer from %d to %d", min, max))
		return def
	}
	return n
}

func (ps *params) float(key string, def, min, max float64) float64 {
	v, ok := ps.raw(key)
	if !ok {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < min || f > max {
		ps.bad(key, v, fmt.Sprintf("a number from %g to %g", min, max))
		return def
	}
	return f
}

func (ps *params) dur(key string, def time.Duration) time.Duration {
	v, ok := ps.raw(key)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > time.Hour {
		ps.bad(key, v, "a duration from 0 to 1h")
		return def
	}
	return d
}

func (ps *params) str(key, def string, allowed ...string) string {
	v, ok := ps.raw(key)
	if !ok {
		return def
	}
	if len(allowed) > 0 {
		for _, a := range allowed {
			if v == a {
				return v
			}
		}
		ps.bad(key, v, "one of "+strings.Join(allowed, ", "))
		return def
	}
	return v
}

// check reports bad values and keys no scenario read.
func (ps *params) check() error {
	var unknown []string
	for k := range ps.kv {
		if !ps.used[k] {
			unknown = append(unknown, ps.name+"."+k)
		}
	}
	sort.Strings(unknown)
	msgs := append([]string{}, ps.errs...)
	if len(unknown) > 0 {
		msgs = append(msgs, "unknown parameter "+strings.Join(unknown, ", "))
	}
	if len(msgs) > 0 {
		return fmt.Errorf("sim: %s", strings.Join(msgs, "; "))
	}
	return nil
}
