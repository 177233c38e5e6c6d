package redis

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/warden-gw/warden/internal/store"
)

// noExpiry is the until score of a ban without one: 2^53-1 µs, exact in a
// double and later than any now.
const noExpiry = int64(1)<<53 - 1

func banUntil(b store.Ban) int64 {
	if b.Until.IsZero() {
		return noExpiry
	}
	return micros(b.Until)
}

// PutBan stores b, replacing any ban on the same facet value.
func (s *Store) PutBan(ctx context.Context, b store.Ban) error {
	raw, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("redis: put ban on facet %s: %w", b.Facet, err)
	}
	args := []string{banField(b.Key()), strconv.FormatInt(banUntil(b), 10), string(raw), s.bansN}
	if _, err := s.run(ctx, []call{{sc: putBanScript, keys: []string{s.bansE, s.bansD}, args: args}}); err != nil {
		return fmt.Errorf("redis: put ban on facet %s: %w", b.Facet, err)
	}
	s.mirror.notice(args[0]) // not current until it holds the ban (the notice may come later)
	return nil
}

// RemoveBan deletes the ban on k and reports whether an unexpired one existed.
// Expiry is judged by the latest now this Store's callers passed.
func (s *Store) RemoveBan(ctx context.Context, k store.BanKey) (bool, error) {
	args := []string{banField(k), strconv.FormatInt(s.lastNow.Load(), 10), s.bansN}
	// The ban's history stays (a later offence still escalates), but its
	// hold ends with it: the detector may ban the value again at once.
	res, err := s.run(ctx, []call{
		{sc: removeBanScript, keys: []string{s.bansE, s.bansD}, args: args},
		{sc: liftOffenceScript, keys: []string{s.offenceKey(k)}},
	})
	if err != nil {
		return false, fmt.Errorf("redis: remove ban on facet %s: %w", k.Facet, err)
	}
	s.mirror.notice(args[0])
	n, err := res[0].AsInt64()
	if err != nil {
		return false, fmt.Errorf("redis: remove ban on facet %s: %w", k.Facet, unavailable(errBadReply))
	}
	return n == 1, nil
}

// ListBans returns the bans unexpired at now, sorted by facet, then value,
// and deletes (some of) those expired.
func (s *Store) ListBans(ctx context.Context, now time.Time) ([]store.Ban, error) {
	us := micros(now)
	s.observe(us)
	res, err := s.run(ctx, []call{{sc: listBansScript, keys: []string{s.bansE, s.bansD}, args: []string{strconv.FormatInt(us, 10)}}})
	if err != nil {
		return nil, fmt.Errorf("redis: list bans: %w", err)
	}
	raws, err := res[0].AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("redis: list bans: %w", unavailable(errBadReply))
	}
	out := make([]store.Ban, 0, len(raws))
	for _, raw := range raws {
		var b store.Ban
		if err := json.Unmarshal([]byte(raw), &b); err != nil {
			return nil, fmt.Errorf("redis: list bans: decode: %w", err)
		}
		if banUntil(b) > us {
			out = append(out, b)
		}
	}
	slices.SortFunc(out, func(a, b store.Ban) int {
		return cmp.Or(cmp.Compare(a.Facet, b.Facet), cmp.Compare(a.Value, b.Value))
	})
	return out, nil
}

// BanOf returns the ban held on k at now, nil when none is. It only reads
// (one HGET; ListBans also deletes bans it finds expired): for warden
// explain, which must change nothing.
func (s *Store) BanOf(ctx context.Context, k store.BanKey, now time.Time) (*store.Ban, error) {
	raw, err := s.client.Do(ctx, s.client.B().Hget().Key(s.bansD).Field(banField(k)).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("redis: ban on facet %s: %w", k.Facet, unavailable(err))
	}
	var b store.Ban
	if err := json.Unmarshal([]byte(raw), &b); err != nil {
		return nil, fmt.Errorf("redis: ban on facet %s: decode: %w", k.Facet, err)
	}
	if banUntil(b) <= micros(now) {
		return nil, nil
	}
	return &b, nil
}
