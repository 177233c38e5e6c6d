package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// bloomProbes with 9.6 bits per id gives a 1% false-positive rate.
const bloomProbes = 7

// linkKeys are a link filter's meta hash and its two generations' bitmaps,
// sharing the hash tag {k:key}.
func (s *Store) linkKeys(key string) []string {
	base := s.prefix + "{k:" + key + "}:"
	return []string{base + "m", base + "0", base + "1"}
}

// mix64 is SplitMix64's finaliser, spreading sequential ids over all bits
// (the same as the memory store's).
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// probes appends id's bloom-filter bit positions (double hashing, mapped
// onto m bits by multiply-shift).
func probes(args []string, id, m uint64) []string {
	h := mix64(id)
	h1, h2 := uint32(h), uint32(h>>32)|1
	for i := range uint32(bloomProbes) {
		args = append(args, strconv.FormatUint((uint64(h1+i*h2)*m)>>32, 10))
	}
	return args
}

// Link remembers ids for key until now+ttl. See doc.go.
func (s *Store) Link(ctx context.Context, now time.Time, key string, ids []uint64, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("redis: link: %w", errTTL)
	}
	if len(ids) == 0 {
		return nil
	}
	us := micros(now)
	s.observe(us)
	t := min((int64(ttl)+999)/1000, maxSpan)
	args := make([]string, 0, 3+bloomProbes*len(ids))
	args = append(args, strconv.FormatInt(us, 10), strconv.FormatInt(t, 10), strconv.FormatInt(us+t, 10))
	for _, id := range ids {
		args = probes(args, id, s.bloomBits)
	}
	if _, err := s.run(ctx, []call{{sc: linkScript, keys: s.linkKeys(key), args: args}}); err != nil {
		return fmt.Errorf("redis: link: %w", err)
	}
	return nil
}

// Linked reports per id whether it was linked to key and is unexpired at now.
func (s *Store) Linked(ctx context.Context, now time.Time, key string, ids []uint64) ([]bool, error) {
	out := make([]bool, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	us := micros(now)
	s.observe(us)
	args := make([]string, 0, 2+bloomProbes*len(ids))
	args = append(args, strconv.FormatInt(us, 10), strconv.Itoa(bloomProbes))
	for _, id := range ids {
		args = probes(args, id, s.bloomBits)
	}
	res, err := s.run(ctx, []call{{sc: linkedScript, keys: s.linkKeys(key), args: args}})
	if err != nil {
		return nil, fmt.Errorf("redis: linked: %w", err)
	}
	flags, err := res[0].ToString()
	if err != nil || len(flags) != len(ids) {
		return nil, fmt.Errorf("redis: linked: %w", unavailable(errBadReply))
	}
	for i := range flags {
		out[i] = flags[i] == '1'
	}
	return out, nil
}
