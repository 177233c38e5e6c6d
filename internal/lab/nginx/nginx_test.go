package nginx

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
)

// clientFrom returns a client whose connections come from src.
func clientFrom(src string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

func get(t *testing.T, c *http.Client, url string) int {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestStartLimitsAndDenies(t *testing.T) {
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	defer up.Close()

	s, err := Start(context.Background(), Config{
		Upstream:      up.URL,
		RatePerSecond: 1,
		Burst:         3,
		Deny:          []string{"127.0.0.66", "127.0.9.0/24"},
		Dir:           t.TempDir(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()

	cases := []struct {
		name string
		src  string
		// statuses of consecutive requests from src
		want []int
	}{
		// burst 3 nodelay: first 1+3 pass within a second, the fifth is limited.
		{"limited after burst", "127.0.0.77", []int{200, 200, 200, 200, 429, 429}},
		{"other address has its own limit", "127.0.0.78", []int{200, 200}},
		{"denied address", "127.0.0.66", []int{403, 403}},
		{"denied network", "127.0.9.5", []int{403}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := clientFrom(tc.src)
			for i, w := range tc.want {
				if got := get(t, c, s.URL()+"/v1/users/1"); got != w {
					t.Fatalf("request %d from %s: status %d, want %d", i, tc.src, got, w)
				}
			}
		})
	}
	if h := hits.Load(); h != 6 {
		t.Errorf("upstream saw %d requests, want 6 (refused ones never reach it)", h)
	}
}

func TestStartNoLimit(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "x") }))
	defer up.Close()
	s, err := Start(context.Background(), Config{Upstream: up.URL})
	if err != nil {
		t.Fatal(err)
	}
	c := clientFrom("127.0.0.1")
	for i := 0; i < 50; i++ {
		if got := get(t, c, s.URL()+"/"); got != 200 {
			t.Fatalf("request %d: %d", i, got)
		}
	}
	dir := s.Dir()
	s.Stop()
	if _, err := net.Dial("tcp", s.Addr()); err == nil {
		t.Errorf("still accepting on %s after Stop", s.Addr())
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("temporary dir %s not removed by Stop: %v", dir, err)
	}
}

func TestRenderRejectsBadInput(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no upstream", Config{}, "no upstream"},
		{"https upstream", Config{Upstream: "https://127.0.0.1:1"}, "only http"},
		{"bad deny", Config{Upstream: "127.0.0.1:1", Deny: []string{"nope; evil"}}, "not an address"},
		{"negative burst", Config{Upstream: "127.0.0.1:1", Burst: -1}, "negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Start(context.Background(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestRate(t *testing.T) {
	cases := map[string]struct {
		in   float64
		want string
	}{
		"whole":      {10, "10r/s"},
		"fractional": {0.5, "30r/m"},
		"tiny":       {0.001, "1r/m"},
	}
	for name, tc := range cases {
		if got := rate(tc.in); got != tc.want {
			t.Errorf("%s: rate(%v) = %q, want %q", name, tc.in, got, tc.want)
		}
	}
}
