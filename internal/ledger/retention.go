package ledger

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// retired is one partition retention removed: its stem and hash, so the
// chain of what remains still starts from a known hash.
type retired struct {
	stem string
	hash [32]byte
}

const retiredFile = "retired"

func readRetired(dir string) ([]retired, error) {
	path := filepath.Join(dir, retiredFile)
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	var out []retired
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		stem, h, ok := strings.Cut(sc.Text(), " ")
		hb, err := hex.DecodeString(h)
		if !ok || err != nil || len(hb) != 32 {
			return nil, fmt.Errorf("ledger: %s:%d: want STEM HASH", path, n)
		}
		r := retired{stem: stem}
		copy(r.hash[:], hb)
		out = append(out, r)
	}
	return out, nil
}

// retain removes sealed partitions past MaxAge, then the oldest while the
// directory holds more than MaxBytes; torn tails kept aside go after
// MaxAge too. Each removal is noted in `retired` (synced) first.
func (l *Ledger) retain() {
	if l.opts.MaxAge <= 0 && l.opts.MaxBytes <= 0 {
		return
	}
	ls, err := list(l.opts.Dir)
	if err != nil {
		l.fail("retention", err)
		return
	}
	now := l.opts.Now()
	var total int64
	var size map[string]int64
	if l.opts.MaxBytes > 0 {
		size = ls.sizes()
		for _, s := range size {
			total += s
		}
	}
	for _, stem := range ls.stems {
		if !ls.seg[stem] {
			continue
		}
		key, _ := parseStem(stem)
		old := l.opts.MaxAge > 0 && time.Unix(hourOf(key)+3600, 0).Before(now.Add(-l.opts.MaxAge))
		big := l.opts.MaxBytes > 0 && total > l.opts.MaxBytes
		if !old && !big {
			break
		}
		if d := dayOf(key); ls.days[d] {
			// The day's rollup goes with its first hour removed, before
			// it: no rollup names an hour that is gone, and the day's
			// other hours are read one by one until they go too.
			if err := os.Remove(rollupPath(l.opts.Dir, d)); err != nil && !os.IsNotExist(err) {
				l.fail("retention", err)
				return
			}
			ls.days[d] = false
			total -= size[dayStem(d)+dayExt]
		}
		if ls.aut[stem] {
			// The hour's author index goes before it, as its day's rollup.
			if err := os.Remove(autPath(l.opts.Dir, stem)); err != nil && !os.IsNotExist(err) {
				l.fail("retention", err)
				return
			}
			total -= size[stem+autExt]
		}
		if err := l.retire(stem); err != nil {
			l.fail("retention", err)
			return
		}
		total -= size[stem+segExt]
		l.m.retired.Inc()
		l.log.Info("ledger: partition removed by retention", slog.String("partition", stem), slog.Bool("age", old), slog.Bool("size", big))
	}
	if l.opts.MaxAge > 0 {
		des, _ := os.ReadDir(l.opts.Dir)
		for _, de := range des {
			if !strings.Contains(de.Name(), tornMark) {
				continue
			}
			if info, err := de.Info(); err == nil && info.ModTime().Before(now.Add(-l.opts.MaxAge)) {
				os.Remove(filepath.Join(l.opts.Dir, de.Name()))
			}
		}
	}
}

func (l *Ledger) retire(stem string) error {
	path := segPath(l.opts.Dir, stem)
	h, err := segHash(path)
	if err != nil {
		return err
	}
	rf, err := openFile(filepath.Join(l.opts.Dir, retiredFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(rf, "%s %s\n", stem, hex.EncodeToString(h[:]))
	if err == nil {
		err = rf.Sync()
	}
	if cerr := rf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Remove(path)
}
