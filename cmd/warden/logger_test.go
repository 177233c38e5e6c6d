package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/config"
)

// A duration in a JSON log line is milliseconds, a number, under its name
// with _ms appended ("took_ms": 1.5), not slog's nanosecond integer
// ("took": 1500000); in a group too. A text line keeps Go's duration
// string under the bare name.
func TestLoggerDurations(t *testing.T) {
	var buf bytes.Buffer
	log, err := newLogger(config.Log{Format: config.LogJSON, Level: "info"}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("state saved", slog.String("dir", "/d"), slog.Duration("took", 1500*time.Microsecond),
		slog.Group("ledger", slog.Any("fsync_interval", 2*time.Second)), slog.Int("n", 3))
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("%v: %s", err, buf.Bytes())
	}
	if got, ok := line["took_ms"].(float64); !ok || got != 1.5 {
		t.Errorf("took_ms %v in %s, want 1.5", line["took_ms"], buf.Bytes())
	}
	if _, ok := line["took"]; ok {
		t.Errorf("took still in %s", buf.Bytes())
	}
	if g, _ := line["ledger"].(map[string]any); g["fsync_interval_ms"] != 2000.0 {
		t.Errorf("ledger.fsync_interval_ms in %s, want 2000", buf.Bytes())
	}
	if line["n"] != 3.0 || line["dir"] != "/d" || line["msg"] != "state saved" {
		t.Errorf("other attributes changed: %s", buf.Bytes())
	}

	buf.Reset()
	if log, err = newLogger(config.Log{Format: config.LogText, Level: "info"}, &buf); err != nil {
		t.Fatal(err)
	}
	log.Info("state saved", slog.Duration("took", 1500*time.Microsecond))
	if !strings.Contains(buf.String(), " took=1.5ms") {
		t.Errorf("text line %q, want took=1.5ms", buf.String())
	}
}
