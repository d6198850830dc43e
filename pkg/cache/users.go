package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
// <prefix>:{<schema>}:user:<id>, guarded by a generation at
// <prefix>:{<schema>}:user:<id>:gen (see newGen). A reader notes the
// generation, reads the database, and stores what it read only if the
// generation still holds the value it noted; whoever changes a user calls
// Store after the database commit, which gives the generation a fresh value
// and writes the new flags. So a slow reader can never overwrite a
// deactivation, even when Redis evicted or expired the flags or the
// generation in between: its store finds another generation, or none.
type Users struct {
	rdb  redis.UniversalClient
	keys Keys
	src  UserSource
	ttl  time.Duration
	log  *slog.Logger
}

// NewUsers returns a cache in front of src, its keys named by keys; ttl 0
// means 10 minutes.
func NewUsers(rdb redis.UniversalClient, keys Keys, src UserSource, ttl time.Duration, log *slog.Logger) *Users {
	if ttl <= 0 {
		ttl = 10 * time.Minute
	}
	return &Users{rdb: rdb, keys: keys, src: src, ttl: ttl, log: log}
}

// GetUserAuth returns the user's flags, from Redis when it can. Errors:
// the source's; a Redis failure is logged and counted, never returned.
func (u *Users) GetUserAuth(ctx context.Context, schemaName, id string) (postgres.UserAuth, error) {
	key, genKey := u.keys.user(schemaName, id), u.keys.userGen(schemaName, id)
	// A hit needs the value alone: one GET, cheaper for Redis than the
	// script, which only a miss needs (to note the generation).
	s, err := u.get(ctx, schemaName, key)
	if err == nil {
		var ua postgres.UserAuth
		if json.Unmarshal([]byte(s), &ua) == nil {
			observability.CacheRequests.WithLabelValues("user", "hit").Inc()
			return ua, nil
		}
	} else if !errors.Is(err, redis.Nil) {
		u.failed(ctx, err)
		return u.src.GetUserAuth(ctx, schemaName, id)
	}
	vals, err := valueAndGen.Run(ctx, u.rdb, []string{key, genKey}, newGen(), genTTL(u.ttl).Milliseconds()).Slice()
	if err == nil && len(vals) != 2 {
		err = fmt.Errorf("cache: unexpected reply %v", vals)
	}
	if err != nil {
		u.failed(ctx, err)
		return u.src.GetUserAuth(ctx, schemaName, id)
	}
	if s, ok := vals[0].(string); ok {
		var ua postgres.UserAuth
		if json.Unmarshal([]byte(s), &ua) == nil {
			observability.CacheRequests.WithLabelValues("user", "hit").Inc()
			return ua, nil
		}
	}
	observability.CacheRequests.WithLabelValues("user", "miss").Inc()
	gen, _ := vals[1].(string)
	ua, err := u.src.GetUserAuth(ctx, schemaName, id)
	if err != nil {
		return ua, err
	}
	b, _ := json.Marshal(ua)
	err = setIfGen.Run(ctx, u.rdb, []string{key, genKey}, gen, b, u.ttl.Milliseconds(), genTTL(u.ttl).Milliseconds()).Err()
	if err != nil {
		u.failed(ctx, err)
	}
	return ua, nil
}

// get reads the user's flags at key: with a GET, or, when ctx asks to
// read a product ahead (WithProductReadAhead), with one MGET of both keys.
// A missing key is redis.Nil, as from GET.
func (u *Users) get(ctx context.Context, schemaName, key string) (string, error) {
	ra := pendingReadAhead(ctx, schemaName)
	if ra == nil {
		return u.rdb.Get(ctx, key).Result()
	}
	vals, err := u.rdb.MGet(ctx, key, u.keys.Product(ra.schema, ra.id)).Result()
	if err == nil && len(vals) != 2 {
		err = fmt.Errorf("cache: unexpected reply %v", vals)
	}
	if err != nil {
		return "", err
	}
	ra.read = true
	if p, ok := vals[1].(string); ok {
		ra.val, ra.found = p, true
	}
	s, ok := vals[0].(string)
	if !ok {
		return "", redis.Nil
	}
	return s, nil
}

// Store records a user's new flags after they were committed, and gives
// their generation a fresh value so that no read that started before can
// store older flags. Errors: Redis's.
func (u *Users) Store(ctx context.Context, schemaName, id string, ua postgres.UserAuth) error {
	b, _ := json.Marshal(ua)
	_, err := u.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, u.keys.userGen(schemaName, id), newGen(), genTTL(u.ttl))
		p.Set(ctx, u.keys.user(schemaName, id), b, u.ttl)
		return nil
	})
	if err != nil {
		return fmt.Errorf("cache: store flags of %s/%s: %w", schemaName, id, err)
	}
	return nil
}

func (u *Users) failed(ctx context.Context, err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	observability.CacheRequests.WithLabelValues("user", "error").Inc()
	u.log.WarnContext(ctx, "cache unavailable, reading from the database", slog.String("cache", "user"), slog.Any("error", err))
}

// Drop forgets a deleted user's flags, and gives their generation a fresh
// value so that no read that started before the deletion can store the
// flags it read: the next request with the user's token reads the database
// and finds nobody. Errors: Redis's.
func (u *Users) Drop(ctx context.Context, schemaName, id string) error {
	_, err := u.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, u.keys.userGen(schemaName, id), newGen(), genTTL(u.ttl))
		p.Del(ctx, u.keys.user(schemaName, id))
		return nil
	})
	if err != nil {
		return fmt.Errorf("cache: drop flags of %s/%s: %w", schemaName, id, err)
	}
	return nil
}
