package demo

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// A bad bound is refused before any child starts: the warden binary here
// does not exist, so an error about anything else means Run went on.
func TestRunChecksBoundsFirst(t *testing.T) {
	good := Options{Warden: "/nonexistent/warden", Duration: time.Second, Mix: "naive", Profiles: 100, Seed: 1,
		Compare: []string{"platform"}, NginxRate: 10, NginxBurst: 20, BanMin: 20, MaxRequests: 10, Exit: true,
		PlatformAddr: "127.0.0.1:0", Stdout: io.Discard, Stderr: io.Discard}
	cases := []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"duration 0", func(o *Options) { o.Duration = 0 }, "--duration 0s"},
		{"negative max requests", func(o *Options) { o.MaxRequests = -1 }, "--max-requests -1"},
		{"negative nginx rate", func(o *Options) { o.NginxRate = -1 }, "--nginx-rate -1"},
		{"negative nginx burst", func(o *Options) { o.NginxBurst = -1 }, "--nginx-burst -1"},
		{"ban-min 0", func(o *Options) { o.BanMin = 0 }, "--ban-min 0"},
		{"bad scenario parameter", func(o *Options) { o.Params = map[string]string{"naive.rate": "abc"} }, "naive.rate"},
		{"parameter of no scenario of the mix", func(o *Options) { o.Params = map[string]string{"users.count": "5"} }, "users.count"},
		{"nginx-ban first", func(o *Options) { o.Compare = []string{"nginx-ban", "nginx"} }, "nginx-ban needs an nginx run before it"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := good
			c.edit(&o)
			err := Run(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one naming %q", err, c.want)
			}
		})
	}
}
