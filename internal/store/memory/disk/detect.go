package disk

import (
	"encoding/binary"
	"fmt"

	"github.com/warden-gw/warden/internal/store"
)

// The detector's frames (version 4): see doc.go, "Snapshot".
const (
	// Smallest encodings, for counts checked against the payload.
	minOffence = 28 // facet, value, n, until, seen, banned, flags
	minTrack   = 13 // kind, facet, value, accounts seen, 2 counts
	minAccount = 2
	minWindow  = 3
	tallyBytes = 16 + 2*4*store.TallyBuckets

	offenceEveryone = 1
)

// detect writes det's ban histories and tracks, in frames of about
// frameTarget bytes, each sealed by put.
func (f *frameBuf) detect(det *store.DetectState, put func()) {
	for rest := det.Offences; len(rest) > 0; {
		f.start(frameOffences)
		size, k := 0, 0
		for k < len(rest) && (k == 0 || size < frameTarget) {
			size += minOffence + len(rest[k].Facet) + len(rest[k].Value)
			k++
		}
		f.n(k)
		for _, o := range rest[:k] {
			f.b = appendStr(appendStr(f.b, o.Facet), o.Value)
			f.n(o.N)
			f.u64(uint64(o.Until))
			f.u64(uint64(o.Seen))
			f.u64(uint64(o.Banned))
			var flags byte
			if o.Everyone {
				flags |= offenceEveryone
			}
			f.b = append(f.b, flags)
		}
		rest = rest[k:]
		put()
	}
	for rest := det.Tracks; len(rest) > 0; {
		f.start(frameTracks)
		size, k := 0, 0
		for k < len(rest) && (k == 0 || size < frameTarget) {
			t := &rest[k]
			size += minTrack + len(t.Facet) + len(t.Value)
			for _, a := range t.Accounts {
				size += minAccount + len(a.Account)
			}
			for _, w := range t.Windows {
				size += minWindow + len(w.Rule) + 16*len(w.Keys) + tallyBytes
			}
			k++
		}
		f.n(k)
		for i := range rest[:k] {
			t := &rest[i]
			f.b = append(f.b, t.Kind)
			f.b = appendStr(appendStr(f.b, t.Facet), t.Value)
			f.u64(uint64(t.AccountsSeen))
			f.n(len(t.Accounts))
			for _, a := range t.Accounts {
				f.b = appendStr(f.b, a.Account)
				f.b = append(f.b, boolByte(a.Banned))
			}
			f.n(len(t.Windows))
			for j := range t.Windows {
				w := &t.Windows[j]
				f.b = appendStr(f.b, w.Rule)
				f.n(len(w.Keys))
				for x := range w.Keys {
					f.u64(w.Keys[x])
					f.u64(uint64(w.At[x]))
				}
				f.b = append(f.b, boolByte(w.Tally))
				if w.Tally {
					f.u64(uint64(w.Width))
					f.u64(uint64(w.Last))
					for _, c := range w.All {
						f.b = binary.LittleEndian.AppendUint32(f.b, c)
					}
					for _, c := range w.Unreferenced {
						f.b = binary.LittleEndian.AppendUint32(f.b, c)
					}
				}
			}
		}
		rest = rest[k:]
		put()
	}
}

func boolByte(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// flag reads a byte that must be 0 or 1.
func (d *dec) flag() bool {
	at := d.pos()
	switch v := d.u8(); v {
	case 0:
		return false
	case 1:
		return true
	default:
		d.fail(fmt.Errorf("flag byte %d, want 0 or 1 (byte %d)", v, at))
		return false
	}
}

// detect decodes a detector frame of kind into det (nil: checked only) and
// counts its entries in info. Every count is checked against the payload
// before anything is allocated for it.
func (d *dec) detect(kind byte, info *snapInfo, det *store.DetectState) {
	var scratch store.DetectState
	if det == nil {
		det = &scratch
	}
	switch kind {
	case frameOffences:
		n := d.count(minOffence)
		for range n {
			o := store.DetectOffence{Facet: d.str(), Value: d.str()}
			at := d.pos()
			if v := d.uv(); v > 1<<31 {
				d.fail(fmt.Errorf("ban history of %d bans (byte %d)", v, at))
			} else {
				o.N = int(v)
			}
			o.Until, o.Seen, o.Banned = d.i64(), d.i64(), d.i64()
			at = d.pos()
			if flags := d.u8(); flags&^offenceEveryone != 0 {
				d.fail(fmt.Errorf("ban history flags %#x (byte %d)", flags, at))
			} else {
				o.Everyone = flags&offenceEveryone != 0
			}
			if d.err != nil {
				return
			}
			det.Offences = append(det.Offences, o)
		}
		info.offences += n
	case frameTracks:
		n := d.count(minTrack)
		for range n {
			t := store.DetectTrack{Kind: d.u8(), Facet: d.str(), Value: d.str(), AccountsSeen: d.i64()}
			for range d.count(minAccount) {
				t.Accounts = append(t.Accounts, store.DetectAccount{Account: d.str(), Banned: d.flag()})
			}
			for range d.count(minWindow) {
				w := store.DetectWindow{Rule: d.str()}
				k := d.count(16)
				if k > 0 {
					w.Keys, w.At = make([]uint64, 0, k), make([]int64, 0, k)
				}
				for range k {
					w.Keys, w.At = append(w.Keys, d.u64()), append(w.At, d.i64())
				}
				if w.Tally = d.flag(); w.Tally {
					w.Width, w.Last = d.i64(), d.i64()
					for i := range w.All {
						w.All[i] = d.u32()
					}
					for i := range w.Unreferenced {
						w.Unreferenced[i] = d.u32()
					}
				}
				t.Windows = append(t.Windows, w)
			}
			if d.err != nil {
				return
			}
			det.Tracks = append(det.Tracks, t)
		}
		info.tracks += n
	}
	if det == &scratch {
		scratch.Reset()
	}
}
