package platform

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
)

// WriteTruth writes the ground truth of the network with profiles and
// seed: CSV with header id,username,email,phone and one row per profile,
// ids 1..profiles in order. It needs no follow graph, so it is fast. No
// value holds a comma, quote or newline, so no field is quoted.
func WriteTruth(w io.Writer, profiles int, seed int64) error {
	if profiles < 1 || profiles > MaxProfiles {
		return fmt.Errorf("platform: truth: profiles %d out of range 1..%d", profiles, MaxProfiles)
	}
	g := newGen(seed)
	bw := bufio.NewWriterSize(w, 1<<16)
	b := make([]byte, 0, 256)
	b = append(b, "id,username,email,phone\n"...)
	for id := 1; id <= profiles; id++ {
		b = strconv.AppendInt(b, int64(id), 10)
		b = append(b, ',')
		b = g.appendUsername(b, id)
		b = append(b, ',')
		b = g.appendEmail(b, id)
		b = append(b, ',')
		b = g.appendPhone(b, id)
		b = append(b, '\n')
		if _, err := bw.Write(b); err != nil {
			return fmt.Errorf("platform: write truth row %d: %w", id, err)
		}
		b = b[:0]
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("platform: write truth: %w", err)
	}
	return nil
}
