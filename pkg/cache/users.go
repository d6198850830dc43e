package cache

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tenantworks/saas/pkg/observability"
	"github.com/tenantworks/saas/pkg/postgres"
)

// UserSource is where a user's auth flags come from on a miss.
type UserSource interface {
	GetUserAuth(ctx context.Context, schemaName, id string) (postgres.UserAuth, error)
}

// Users caches the flags checked on every authenticated request at
// <prefix>:<schema>:user:<id>. Readers fill a missing key with SET NX; whoever
// changes a user writes the new flags with a plain SET after the database
// commit. So a slow reader can never overwrite a deactivation: its fill
// either lands first (and is overwritten) or finds the key taken.
type Users struct {
	rdb  *redis.Client
	keys Keys
	src  UserSource
	ttl  time.Duration
	log  *slog.Logger
}

// NewUsers returns a cache in front of src, its keys named by keys; ttl 0
// means 10 minutes.
func NewUsers(rdb *redis.Client, keys Keys, src UserSource, ttl time.Duration, log *slog.Logger) *Users {
	if ttl <= 0 {
		ttl = 10 * time.Minute
	}
	return &Users{rdb: rdb, keys: keys, src: src, ttl: ttl, log: log}
}

// GetUserAuth returns the user's flags, from Redis when it can.
func (u *Users) GetUserAuth(ctx context.Context, schemaName, id string) (postgres.UserAuth, error) {
	s, err := u.rdb.Get(ctx, u.keys.user(schemaName, id)).Result()
	if err == nil {
		var ua postgres.UserAuth
		if json.Unmarshal([]byte(s), &ua) == nil {
			observability.CacheRequests.WithLabelValues("user", "hit").Inc()
			return ua, nil
		}
	}
	redisUp := err == nil || errors.Is(err, redis.Nil)
	if !redisUp {
		u.failed(ctx, err)
	} else {
		observability.CacheRequests.WithLabelValues("user", "miss").Inc()
	}
	ua, err := u.src.GetUserAuth(ctx, schemaName, id)
	if err != nil {
		return ua, err
	}
	if redisUp {
		b, _ := json.Marshal(ua)
		if err := u.rdb.SetNX(ctx, u.keys.user(schemaName, id), b, u.ttl).Err(); err != nil {
			u.failed(ctx, err)
		}
	}
	return ua, nil
}

// Store records a user's new flags after they were committed.
func (u *Users) Store(ctx context.Context, schemaName, id string, ua postgres.UserAuth) error {
	b, _ := json.Marshal(ua)
	return u.rdb.Set(ctx, u.keys.user(schemaName, id), b, u.ttl).Err()
}

func (u *Users) failed(ctx context.Context, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	observability.CacheRequests.WithLabelValues("user", "error").Inc()
	u.log.WarnContext(ctx, "cache unavailable, reading from the database", slog.String("cache", "user"), slog.Any("error", err))
}
