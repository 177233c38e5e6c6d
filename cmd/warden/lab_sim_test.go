package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-gw/warden/internal/lab/platform"
)

func TestLabSimScoresARun(t *testing.T) {
	p, err := platform.New(platform.Options{Profiles: 400, Seed: 5, JWTSecret: "lab-secret"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler())
	defer srv.Close()
	jsonPath := filepath.Join(t.TempDir(), "score.json")
	var stdout, stderr bytes.Buffer
	err = runLabSim(context.Background(), []string{"--target", srv.URL, "--scenario", "naive,partner",
		"--profiles", "400", "--seed", "5", "--duration", "20s", "--max-requests", "37",
		"-p", "partner.rate=1000", "--json", jsonPath}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("lab-sim: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "9.25% (37, 37.0 per account)") {
		t.Errorf("table lacks the naive harvester's exact score 37/400:\n%s", stdout.String())
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Populations []struct {
			Name      string `json:"name"`
			Requests  int64  `json:"requests"`
			Harvested int64  `json:"harvested"`
		} `json:"populations"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	got := map[string][2]int64{}
	for _, p := range rep.Populations {
		got[p.Name] = [2]int64{p.Requests, p.Harvested}
	}
	if got["naive"] != [2]int64{37, 37} || got["partner"][0] != 37 {
		t.Errorf("JSON score %v, want naive 37 requests 37 taken, partner 37 requests", got)
	}
}

func TestLabSimRejectsBadFlags(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown scenario", []string{"--scenario", "nave"}, "unknown scenario"},
		{"bad param", []string{"-p", "naive"}, "NAME.KEY=VALUE"},
		{"remote target", []string{"--target", "http://192.0.2.7/", "--profiles", "10"}, "loopback"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := runLabSim(context.Background(), tc.args, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error()+stderr.String(), tc.want) {
				t.Fatalf("err = %v, stderr %q; want %q", err, stderr.String(), tc.want)
			}
		})
	}
}
