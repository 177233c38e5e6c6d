package disk

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/warden-gw/warden/internal/store"
	"github.com/warden-gw/warden/internal/store/memory"
	"github.com/warden-gw/warden/internal/store/storetest"
)

// The memory store journaling its bans to a Disk still passes the store
// conformance suite: the journal changes nothing a caller sees.
func TestConformanceWithBanLog(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		d, err := Open(Options{Dir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		st := memory.New(memory.Options{HashKey: d.HashKey(), Bans: d})
		t.Cleanup(func() {
			if err := d.Close(context.Background(), st); err != nil {
				t.Errorf("close disk: %v", err)
			}
		})
		return st
	})
}
