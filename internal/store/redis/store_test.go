package redis_test

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"

	"github.com/warden-gw/warden/internal/store"
	"github.com/warden-gw/warden/internal/store/redis"
	"github.com/warden-gw/warden/internal/store/redis/redistest"
	"github.com/warden-gw/warden/internal/store/storetest"
)

// open connects a Store to addrs under a key prefix no other store in the
// test uses, so each one starts empty.
func open(t testing.TB, addrs []string) *redis.Store {
	t.Helper()
	return openWith(t, redis.Config{Addrs: addrs})
}

// openWith connects a Store as cfg says, defaulted, under a fresh key
// prefix unless cfg names one; it is closed when the test ends.
func openWith(t testing.TB, cfg redis.Config) *redis.Store {
	t.Helper()
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = fmt.Sprintf("t%d:", prefixes.Add(1))
	}
	cfg.SetDefaults()
	s, err := redis.New(context.Background(), cfg, redis.Options{})
	if err != nil {
		t.Fatalf("redis.New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var prefixes atomic.Int64

func TestConformanceStandalone(t *testing.T) {
	srv := redistest.Start(t)
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, []string{srv.Addr()}) })
}

func TestConformanceCluster(t *testing.T) {
	c := redistest.StartCluster(t)
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, c.Addrs()) })
}

// freeAddr is a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
