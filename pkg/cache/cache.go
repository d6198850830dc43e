// Package cache is the Redis side of the system: tenant-scoped read-through
// caching for the API and the rate limiter's counters.
package cache

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/tenantworks/saas/pkg/domain"
)

// Open returns a Redis client for url (redis://host:port/db). It does not
// contact the server.
func Open(url string) (*redis.Client, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("cache: parse url: %w", err)
	}
	return redis.NewClient(opt), nil
}

// Pinger adapts a Redis client to a readiness check.
type Pinger struct{ Client *redis.Client }

// Ping returns an EUNAVAILABLE error when Redis does not answer.
func (p Pinger) Ping(ctx context.Context) error {
	if err := p.Client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("cache: ping: %w: %w", domain.Errorf(domain.EUNAVAILABLE, "cache unavailable"), err)
	}
	return nil
}
