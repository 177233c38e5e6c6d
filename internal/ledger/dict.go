package ledger

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// idsFile is the dictionary shared by every sealed partition: platform
// ids, facet values and names to dense integers, for the whole ledger, so
// that postings of different hours combine without going through strings.
// It is append-only, framed like a log (kindDict frames), written by the
// sealer alone and synced before a partition that uses it is renamed into
// place; a torn tail therefore holds only integers nothing refers to.
const idsFile = "ids"

// dictionary is the shared dictionary: names per namespace, and a look-up
// built per namespace on first use.
type dictionary struct {
	names  [nsCount][]string
	lookup [nsCount]map[string]uint32
	valid  int64 // bytes of the file that check
}

// loadDictionary reads dir's dictionary up to its last whole frame; a
// missing file is an empty dictionary.
func loadDictionary(dir string) (*dictionary, error) {
	d := &dictionary{}
	path := filepath.Join(dir, idsFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return d, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	// One string holds every name; names are slices of it.
	all := string(b)
	off := 0
	for off < len(b) {
		kind, body, n, err := nextFrame(b[off:])
		if err != nil || kind != kindDict || len(body) < 1 || int(body[0]) >= nsCount {
			break
		}
		start := off + frameHead + 2
		d.names[body[0]] = append(d.names[body[0]], all[start:start+len(body)-1])
		off += n
	}
	d.valid = int64(off)
	return d, nil
}

// sizes is how many integers each namespace holds.
func (d *dictionary) sizes() [nsCount]uint32 {
	var s [nsCount]uint32
	for ns := range s {
		s[ns] = uint32(len(d.names[ns]))
	}
	return s
}

// id looks s up in ns.
func (d *dictionary) id(ns int, s string) (uint32, bool) {
	if d.lookup[ns] == nil {
		m := make(map[string]uint32, len(d.names[ns]))
		for i, v := range d.names[ns] {
			m[v] = uint32(i)
		}
		d.lookup[ns] = m
	}
	v, ok := d.lookup[ns][s]
	return v, ok
}

// intern returns s's integer in ns, appending a frame to buf when s is
// new.
func (d *dictionary) intern(ns int, s string, buf *[]byte) uint32 {
	if v, ok := d.id(ns, s); ok {
		return v
	}
	v := uint32(len(d.names[ns]))
	d.names[ns] = append(d.names[ns], s)
	d.lookup[ns][s] = v
	body := make([]byte, 0, 1+len(s))
	body = append(append(body, byte(ns)), s...)
	*buf = appendFrame(*buf, kindDict, body)
	return v
}

// appendIDs appends frames to dir's dictionary and syncs it. A torn tail
// left by a crash is cut first (nothing refers to it).
func (d *dictionary) appendIDs(dir string, frames []byte) error {
	if len(frames) == 0 {
		return nil
	}
	path := filepath.Join(dir, idsFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(d.valid); err != nil {
		return err
	}
	if _, err := f.WriteAt(frames, d.valid); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	d.valid += int64(len(frames))
	return nil
}
