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

// linkKeys are a link memory's meta hash, its two generations' hashes and
// its fan-out answers hash, sharing the hash tag {k:key}.
func (s *Store) linkKeys(key string) []string {
	base := s.prefix + "{k:" + key + "}:"
	return []string{base + "m", base + "0", base + "1", base + "a"}
}

// Link remembers ids with provenance p from answer for key until now+ttl.
// See doc.go.
func (s *Store) Link(ctx context.Context, now time.Time, key string, ids []uint64, p store.Provenance, answer uint32, ttl time.Duration) error {
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
	args := make([]string, 0, 6+len(ids))
	args = append(args, strconv.FormatInt(us, 10), strconv.FormatInt(t, 10), strconv.FormatInt(us+t, 10),
		strconv.Itoa(s.linkCap), strconv.Itoa(int(p)), strconv.FormatUint(uint64(answer), 10))
	for _, id := range ids {
		args = append(args, strconv.FormatUint(id, 10))
	}
	if _, err := s.run(ctx, []call{{sc: linkScript, keys: s.linkKeys(key)[:3], args: args}}); err != nil {
		return fmt.Errorf("redis: link: %w", err)
	}
	return nil
}

// Linked reports per id its best provenance within its ttl at now, and
// with fan counts the opens per answer (store.Fanout) in the same script.
func (s *Store) Linked(ctx context.Context, now time.Time, key string, ids []uint64, fan *store.Fanout, dst []store.Provenance) ([]store.Provenance, error) {
	if fan != nil {
		if err := fan.Validate(len(ids)); err != nil {
			return nil, fmt.Errorf("redis: linked: %w", err)
		}
		fan.Reset(len(ids))
	}
	out := append(dst[:0], make([]store.Provenance, len(ids))...)
	if len(ids) == 0 {
		return out, nil
	}
	us := micros(now)
	s.observe(us)
	args := make([]string, 0, 7+2*len(ids))
	limit, window, hold, provs := 0, int64(0), int64(0), 0
	if fan != nil {
		limit, provs = fan.Limit, int(fan.Provenances)
		window, hold = min((int64(fan.Window)+999)/1000, maxSpan), min((int64(fan.Hold)+999)/1000, maxSpan)
	}
	args = append(args, strconv.FormatInt(us, 10), strconv.Itoa(limit), strconv.FormatInt(window, 10),
		strconv.FormatInt(hold, 10), strconv.Itoa(provs), strconv.Itoa(store.MaxFanoutAnswers), strconv.Itoa(len(ids)))
	for _, id := range ids {
		args = append(args, strconv.FormatUint(id, 10))
	}
	if fan != nil && fan.Subjects != nil {
		for _, id := range fan.Subjects {
			args = append(args, strconv.FormatUint(id, 10))
		}
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
		d := flags[i] - '0'
		capped := d >= 4 && d < 8
		if capped {
			d -= 4
		}
		p := store.Provenance(d)
		if !p.Valid() || capped && fan == nil {
			return nil, fmt.Errorf("redis: linked: %w", unavailable(errBadReply))
		}
		out[i] = p
		if capped {
			fan.Capped[i] = true
		}
	}
	return out, nil
}
