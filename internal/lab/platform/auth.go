package platform

import (
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MintToken signs the lab's HS256 account token: claims sub (the account id
// as a string), iat and created (unix seconds). Anyone with the secret may
// mint one for any existing account; simulated users get theirs this way.
func MintToken(secret, sub string, created, iat time.Time) (string, error) {
	if secret == "" {
		return "", errors.New("platform: mint token: empty secret")
	}
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub":     sub,
		"iat":     iat.Unix(),
		"created": created.Unix(),
	})
	s, err := t.SignedString([]byte(secret))
	if err != nil {
		return "", fmt.Errorf("platform: mint token for %s: %w", sub, err)
	}
	return s, nil
}

// tokenCache remembers tokens already verified, so the hot path pays for
// HMAC and JSON once per token, not once per request. It is bounded: a
// full shard is emptied (tokens are cheap to verify again).
type tokenCache struct {
	seed   maphash.Seed
	shards [16]tokenShard
}

type tokenShard struct {
	mu sync.RWMutex
	m  map[string]int32
}

const tokenShardCap = 8192

func newTokenCache() *tokenCache {
	c := &tokenCache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = make(map[string]int32)
	}
	return c
}

func (c *tokenCache) shard(tok string) *tokenShard {
	return &c.shards[maphash.String(c.seed, tok)&15]
}

func (c *tokenCache) get(tok string) (int32, bool) {
	s := c.shard(tok)
	s.mu.RLock()
	id, ok := s.m[tok]
	s.mu.RUnlock()
	return id, ok
}

func (c *tokenCache) put(tok string, id int32) {
	s := c.shard(tok)
	s.mu.Lock()
	if len(s.m) >= tokenShardCap {
		clear(s.m)
	}
	s.m[strings.Clone(tok)] = id
	s.mu.Unlock()
}

// account returns the account id an Authorization header proves, or 0.
func (p *Platform) account(header string) int {
	const prefix = "Bearer "
	if len(header) <= len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return 0
	}
	tok := strings.TrimSpace(header[len(prefix):])
	if id, ok := p.tokens.get(tok); ok {
		return int(id)
	}
	var claims jwt.MapClaims
	_, err := jwt.ParseWithClaims(tok, &claims, func(*jwt.Token) (any, error) {
		return p.secret, nil
	}, jwt.WithValidMethods([]string{"HS256"}))
	if err != nil {
		return 0
	}
	sub, ok := claims["sub"].(string)
	if !ok {
		return 0
	}
	// Only the canonical spelling names an account: Atoi alone reads "077"
	// and "+77" as 77, one account under three names.
	id, err := strconv.Atoi(sub)
	if err != nil || id < 1 || id > p.accounts() || strconv.Itoa(id) != sub {
		return 0
	}
	// Tokens that expire are checked every time instead of cached.
	_, hasExp := claims["exp"]
	_, hasNbf := claims["nbf"]
	if !hasExp && !hasNbf {
		p.tokens.put(tok, int32(id))
	}
	return id
}
