package sim

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"strconv"

	"github.com/warden-gw/warden/internal/lab/platform"
)

// Truth is the platform's ground truth: for each real profile id, a hash of
// its true email and phone, and one of its username. Only hashes are kept:
// sim holds no personal data values past reading them.
type Truth struct {
	contact []uint64 // index id-1
	// name hashes each username: a real id answered under another
	// username says the truth is another platform's (--profiles, --seed).
	name []uint64
}

func nameHash(username string) uint64 {
	h := fnv.New64a()
	io.WriteString(h, username)
	return h.Sum64()
}

func contactHash(email, phone string) uint64 {
	h := fnv.New64a()
	io.WriteString(h, email)
	h.Write([]byte{0})
	io.WriteString(h, phone)
	return h.Sum64()
}

// ReadTruth reads the CSV of `warden lab-platform truth`
// (id,username,email,phone with ids 1..N in any order).
func ReadTruth(r io.Reader) (*Truth, error) {
	cr := csv.NewReader(bufio.NewReaderSize(r, 1<<16))
	cr.ReuseRecord = true
	cr.FieldsPerRecord = 4
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("sim: truth header: %w", err)
	}
	if head[0] != "id" || head[1] != "username" || head[2] != "email" || head[3] != "phone" {
		return nil, fmt.Errorf("sim: truth header %q, want id,username,email,phone", head)
	}
	t := &Truth{}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("sim: truth line %d: %w", line, err)
		}
		id, err := strconv.Atoi(rec[0])
		if err != nil || id < 1 || id > 100_000_000 {
			return nil, fmt.Errorf("sim: truth line %d: bad id %q", line, rec[0])
		}
		for len(t.contact) < id {
			t.contact = append(t.contact, 0)
			t.name = append(t.name, 0)
		}
		t.contact[id-1] = contactHash(rec[2], rec[3])
		t.name[id-1] = nameHash(rec[1])
	}
	for i, c := range t.contact {
		if c == 0 {
			return nil, fmt.Errorf("sim: truth has no row for id %d", i+1)
		}
	}
	return t, nil
}

// TruthOf computes the ground truth as the lab platform does from its
// profile count and seed, in memory (only hashes are kept).
func TruthOf(profiles int, seed int64) (*Truth, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(platform.WriteTruth(pw, profiles, seed)) }()
	t, err := ReadTruth(pr)
	pr.Close()
	if err != nil {
		return nil, fmt.Errorf("truth for %d profiles, seed %d: %w", profiles, seed, err)
	}
	return t, nil
}

// Profiles is N, the number of real profiles.
func (t *Truth) Profiles() int { return len(t.contact) }

// real reports whether id is a real profile id and returns its index.
func (t *Truth) real(id string) (int, bool) {
	n, err := strconv.Atoi(id)
	if err != nil || n < 1 || n > len(t.contact) {
		return 0, false
	}
	return n - 1, true
}

// named reports whether username is the true username of the profile at
// index i.
func (t *Truth) named(i int, username string) bool { return t.name[i] == nameHash(username) }

// matches reports whether email and phone are the true values of id.
func (t *Truth) matches(id, email, phone string) (int, bool) {
	i, ok := t.real(id)
	if !ok || email == "" || phone == "" {
		return 0, false
	}
	return i, t.contact[i] == contactHash(email, phone)
}
