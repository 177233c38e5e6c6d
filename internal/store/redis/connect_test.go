package redis_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/store"
	"github.com/warden-gw/warden/internal/store/redis"
	"github.com/warden-gw/warden/internal/store/redis/redistest"
)

// A store connected before Redis is there fails every call as unavailable
// (the guard then applies the failure mode) and starts deciding by itself
// once Redis comes up on the address.
func TestConnectBeforeRedisIsUp(t *testing.T) {
	addr := freeAddr(t)
	cfg := redis.Config{Addrs: []string{addr}, KeyPrefix: "connect:", DialTimeout: 200 * time.Millisecond}
	cfg.SetDefaults()
	ctx := context.Background()
	start := time.Now()
	s, err := redis.Connect(ctx, cfg, redis.Options{})
	if err != nil {
		t.Fatalf("Connect with nothing listening: %v, want a store that connects later", err)
	}
	defer s.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Connect took %v with nothing listening", d)
	}
	limit := &store.AdmitRequest{Limits: []store.LimitRequest{{Key: "l", Interval: time.Hour, Burst: 1, Cost: 1}}}
	if _, err := s.Admit(ctx, time.Now(), limit); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Admit before Redis is up: %v, want ErrUnavailable", err)
	}
	if _, err := s.Spend(ctx, time.Now(), []store.SpendRequest{{Key: "b", Window: time.Hour, Limit: 1, Subjects: []uint64{1}}}); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Spend before Redis is up: %v, want ErrUnavailable", err)
	}

	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	redistest.StartWith(t, redistest.Options{Port: p})
	// The background connect retries with a growing wait (at most 5 s).
	deadline := time.Now().Add(15 * time.Second)
	var res store.AdmitResult
	for {
		res, err = s.Admit(ctx, time.Now(), limit)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing 15 s after Redis came up: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !res.Limits[0].Allowed {
		t.Fatalf("first request on a fresh limit refused: %+v", res)
	}
	// It decides on Redis now: the burst of 1 is spent.
	if res, err = s.Admit(ctx, time.Now(), limit); err != nil || res.Limits[0].Allowed {
		t.Fatalf("second request: %+v %v, want refused", res, err)
	}
	// And from leases, through AdmitLocal too (the guard's fast path).
	la, ok := s.(interface {
		AdmitLocal(time.Time, *store.AdmitRequest) (store.AdmitResult, bool)
	})
	if !ok {
		t.Fatal("the store Connect returned has no AdmitLocal")
	}
	big := &store.AdmitRequest{Limits: []store.LimitRequest{{Key: "big", Interval: time.Millisecond, Burst: 100000, Cost: 1}}}
	now := time.Now()
	for range 3 {
		if res, err := s.Admit(ctx, now, big); err != nil || !res.Limits[0].Allowed {
			t.Fatalf("far from its limit: %+v %v, want admitted", res, err)
		}
	}
	if res, ok := la.AdmitLocal(now, big); !ok || !res.Limits[0].Allowed {
		t.Fatalf("AdmitLocal after a lease: %+v %v, want admitted here", res, ok)
	}
}

// Errors that retrying cannot mend still fail Connect at once.
func TestConnectRefusesWhatRetryCannotMend(t *testing.T) {
	srv := redistest.StartWith(t, redistest.Options{Password: authPassword})
	cfg := authConfig(srv.Addr())
	cfg.PasswordFile = writePassword(t, authPassword+"-wrong")
	s, err := redis.Connect(context.Background(), cfg, redis.Options{})
	if err == nil {
		s.Close()
		t.Fatal("Connect with a wrong password succeeded")
	}
}

// Closing a store that never connected stops its background connect.
func TestConnectCloseWhilePending(t *testing.T) {
	cfg := redis.Config{Addrs: []string{freeAddr(t)}, DialTimeout: 100 * time.Millisecond}
	cfg.SetDefaults()
	s, err := redis.Connect(context.Background(), cfg, redis.Options{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close of a pending store did not return")
	}
}
