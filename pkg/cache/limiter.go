package cache

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tenantworks/saas/pkg/domain"
)

// Limiter counts attempts per key in fixed windows held in Redis, so that
// every API process shares one count.
type Limiter struct {
	rdb    redis.UniversalClient
	keys   Keys
	limit  int
	window time.Duration
}

// NewLimiter returns a Limiter allowing limit attempts per key per window,
// its counters named by keys; defaults 10 a minute.
func NewLimiter(rdb redis.UniversalClient, keys Keys, limit int, window time.Duration) *Limiter {
	if limit <= 0 {
		limit = 10
	}
	if window <= 0 {
		window = time.Minute
	}
	return &Limiter{rdb: rdb, keys: keys, limit: limit, window: window}
}

// Allow counts one attempt on key, stored as <prefix>:{<realm>}:<rest> with
// the window as its TTL (callers pass "<realm>:login:<addr>", so a tenant's
// counters sit under its "<prefix>:{<schema>}:", in its hash slot; the one
// key of a call is all its transaction touches). Past the limit it returns how long
// until the window ends (at least a second). A counter that Redis evicts
// starts again from zero: under memory pressure a client may get a few more
// attempts, never fewer. Errors: EUNAVAILABLE when Redis does not answer;
// the caller decides whether to let the attempt through.
func (l *Limiter) Allow(ctx context.Context, key string) (retryAfter time.Duration, err error) {
	key = l.keys.limiter(key)
	pipe := l.rdb.TxPipeline()
	n := pipe.Incr(ctx, key)
	pipe.ExpireNX(ctx, key, l.window)
	ttl := pipe.TTL(ctx, key)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, fmt.Errorf("cache: limiter %s: %w: %w", key, domain.Errorf(domain.EUNAVAILABLE, "redis unavailable"), err)
	}
	if n.Val() <= int64(l.limit) {
		return 0, nil
	}
	return max(ttl.Val().Round(time.Second), time.Second), nil
}
