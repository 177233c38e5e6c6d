package disk

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/warden-gw/warden/internal/store"
)

// BanHistory reads the ban log of the state directory dir and returns the
// bans put on k, oldest first. It only reads: a running gateway's log may
// be read while it appends (a record it is writing, torn at the end, is
// not read). A log compacted since (a rewrite keeps one put per unexpired
// ban) no longer holds bans that ended before it; a missing log holds none.
func BanHistory(dir string, k store.BanKey) ([]store.BanChange, error) {
	path := filepath.Join(dir, BanLogFile)
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ban log: open %s: %w", path, err)
	}
	defer f.Close()
	var out []store.BanChange
	_, err = eachRecord(bufio.NewReaderSize(f, 1<<16), func(op byte, b store.Ban) {
		if b.Key() != k {
			return
		}
		if n := len(out); n > 0 && !out[n-1].Lifted && !out[n-1].Replaced {
			out[n-1].Lifted, out[n-1].Replaced = op == opRemove, op == opPut
		}
		if op == opPut {
			out = append(out, store.BanChange{Ban: b})
		}
	})
	if err != nil && !errors.Is(err, errTorn) {
		return out, fmt.Errorf("ban log: read %s: %w", path, err)
	}
	return out, nil
}
