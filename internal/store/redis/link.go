package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/warden-gw/warden/internal/store"
)

var errProvenance = errors.New("provenance must be list, search or social")

// linkKeys are a link memory's meta hash and its two generations' hashes,
// sharing the hash tag {k:key}.
func (s *Store) linkKeys(key string) []string {
	base := s.prefix + "{k:" + key + "}:"
	return []string{base + "m", base + "0", base + "1"}
}

// Link remembers ids with provenance p for key until now+ttl. See doc.go.
func (s *Store) Link(ctx context.Context, now time.Time, key string, ids []uint64, p store.Provenance, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("redis: link: %w", errTTL)
	}
	if p == store.Unreferenced || !p.Valid() {
		return fmt.Errorf("redis: link: %w", errProvenance)
	}
	if len(ids) == 0 {
		return nil
	}
	us := micros(now)
	s.observe(us)
	t := min((int64(ttl)+999)/1000, maxSpan)
	args := make([]string, 0, 5+len(ids))
	args = append(args, strconv.FormatInt(us, 10), strconv.FormatInt(t, 10), strconv.FormatInt(us+t, 10),
		strconv.Itoa(s.linkCap), strconv.Itoa(int(p)))
	for _, id := range ids {
		args = append(args, strconv.FormatUint(id, 10))
	}
	if _, err := s.run(ctx, []call{{sc: linkScript, keys: s.linkKeys(key), args: args}}); err != nil {
		return fmt.Errorf("redis: link: %w", err)
	}
	return nil
}

// Linked reports per id its best provenance within its ttl at now.
func (s *Store) Linked(ctx context.Context, now time.Time, key string, ids []uint64) ([]store.Provenance, error) {
	out := make([]store.Provenance, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	us := micros(now)
	s.observe(us)
	args := make([]string, 0, 1+len(ids))
	args = append(args, strconv.FormatInt(us, 10))
	for _, id := range ids {
		args = append(args, strconv.FormatUint(id, 10))
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
		p := store.Provenance(flags[i] - '0')
		if !p.Valid() {
			return nil, fmt.Errorf("redis: linked: %w", unavailable(errBadReply))
		}
		out[i] = p
	}
	return out, nil
}
