package ledger

import (
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Reading an open log costs a reader most of its time: decoding every
// Access, translating the log's ids and building the hour's index (about
// 3 s for the 800,000 Accesses of a 10-minute lab run). The dashboard asks
// several queries a page, each through its own Reader, of logs that have
// not changed in between; openCache keeps the last translated, indexed
// logs of a directory and the dictionary they were translated with, for
// as long as no log and not the shared dictionary changed on disk.
//
// What it shares is never written after OpenReader: queries only read a
// log's partition, and the dictionary's look-up tables are built before
// it is shared (strtab.find would build them lazily).
var openCache = struct {
	sync.Mutex
	dirs map[string]*openState
}{dirs: map[string]*openState{}}

// openCacheDirs bounds the directories kept (tests open many).
const openCacheDirs = 4

// openState is a directory's logs as one reader loaded them.
type openState struct {
	ids  fileStamp // the shared dictionary's file
	logs map[string]logState
	d    *dictionary
}

type logState struct {
	stamp fileStamp
	p     *partition
}

// fileStamp says a file is as it was: logs and the dictionary are only
// appended to, so a size and a modification time that match are the same
// bytes.
type fileStamp struct {
	size  int64
	mtime time.Time
	ok    bool
}

func stampOf(path string) fileStamp {
	info, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{size: info.Size(), mtime: info.ModTime(), ok: true}
}

// cachedLogs returns the translated logs of dir kept for stems and the
// dictionary they use when every stem's log and the dictionary are as
// they were; ok false otherwise.
func cachedLogs(dir string, stems []string) (map[string]*partition, *dictionary, bool) {
	if len(stems) == 0 {
		return nil, nil, false
	}
	openCache.Lock()
	st := openCache.dirs[dir]
	openCache.Unlock()
	if st == nil || len(st.logs) != len(stems) {
		return nil, nil, false
	}
	ids := stampOf(filepath.Join(dir, idsFile))
	if ids != st.ids {
		return nil, nil, false
	}
	out := make(map[string]*partition, len(stems))
	for _, stem := range stems {
		ls, ok := st.logs[stem]
		if !ok || !ls.stamp.ok || stampOf(walPath(dir, stem)) != ls.stamp {
			return nil, nil, false
		}
		out[stem] = ls.p
	}
	// The dictionary's stamp is taken again: the sealer may have
	// appended while the logs were checked.
	if stampOf(filepath.Join(dir, idsFile)) != st.ids {
		return nil, nil, false
	}
	return out, st.d, true
}

// keepLogs keeps the logs of stems read by one reader (loaded, of
// loadedStems, translated and indexed with d; the others empty) for the
// next reader of dir. The stamps were taken before the logs and the
// dictionary were read, so a change after them makes the next reader
// miss, never read stale.
func keepLogs(dir string, ids fileStamp, stamps map[string]fileStamp, loaded []*partition, loadedStems, stems []string, d *dictionary) {
	st := &openState{ids: ids, logs: make(map[string]logState, len(stems)), d: d}
	for _, stem := range stems {
		s := stamps[stem]
		if !s.ok {
			return
		}
		st.logs[stem] = logState{stamp: s}
	}
	for i, p := range loaded {
		ls := st.logs[loadedStems[i]]
		ls.p = p
		st.logs[loadedStems[i]] = ls
	}
	for ns := range d.t {
		d.t[ns].index()
	}
	openCache.Lock()
	defer openCache.Unlock()
	if _, ok := openCache.dirs[dir]; !ok && len(openCache.dirs) >= openCacheDirs {
		for k := range openCache.dirs {
			delete(openCache.dirs, k)
			break
		}
	}
	openCache.dirs[dir] = st
}
