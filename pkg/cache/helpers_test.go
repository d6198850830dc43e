package cache_test

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tenantworks/saas/pkg/cache"
	"github.com/tenantworks/saas/pkg/domain"
	"github.com/tenantworks/saas/pkg/postgres"
	"github.com/tenantworks/saas/pkg/testenv"
)

// MustRedis returns a client of the test Redis, closed when the test ends:
// the single server, or the Redis Cluster when SAAS_TEST_REDIS_CLUSTER=1
// (testenv.RedisURL), so that every test here runs against both.
func MustRedis(tb testing.TB) redis.UniversalClient {
	tb.Helper()
	return mustOpen(tb, testenv.RedisURL(tb))
}

// MustRedisCluster returns a client of the test Redis Cluster, closed when
// the test ends.
func MustRedisCluster(tb testing.TB) *redis.ClusterClient {
	tb.Helper()
	rdb, ok := mustOpen(tb, testenv.MustRedisClusterURL(tb)).(*redis.ClusterClient)
	if !ok {
		tb.Fatalf("%s does not name a Redis Cluster (redis-cluster://host:port,...)", testenv.RedisClusterURLEnv)
	}
	return rdb
}

func mustOpen(tb testing.TB, url string) redis.UniversalClient {
	tb.Helper()
	rdb, err := cache.Open(url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// MustKeys returns key names under a prefix of the test's own, so that
// tests can SCAN what they wrote; every key under it is deleted when the
// test ends.
func MustKeys(tb testing.TB, rdb redis.UniversalClient) cache.Keys {
	tb.Helper()
	keys, err := cache.NewKeys("t-" + testenv.RandomName(10))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		left, _ := scanKeys(ctx, rdb, keys.Prefix()+":*")
		for _, k := range left {
			_ = rdb.Del(ctx, k).Err()
		}
	})
	return keys
}

// scanKeys returns the keys matching pattern, on every master of a
// cluster.
func scanKeys(ctx context.Context, rdb redis.UniversalClient, pattern string) ([]string, error) {
	var (
		mu   sync.Mutex
		keys []string
	)
	scan := func(ctx context.Context, node redis.UniversalClient) error {
		iter := node.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			keys = append(keys, iter.Val())
			mu.Unlock()
		}
		return iter.Err()
	}
	if c, ok := rdb.(*redis.ClusterClient); ok {
		err := c.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error { return scan(ctx, node) })
		return keys, err
	}
	return keys, scan(ctx, rdb)
}

// mustScan returns the keys matching pattern.
func mustScan(tb testing.TB, rdb redis.UniversalClient, pattern string) []string {
	tb.Helper()
	keys, err := scanKeys(context.Background(), rdb, pattern)
	if err != nil {
		tb.Fatalf("scan %s: %v", pattern, err)
	}
	return keys
}

// table stands in for a tenant's tables, the source the caches read on a
// miss: every product has the same name and version, every user the same
// flags. A test may pause the next read after it has read, to hold a slow
// reader wherever it wants in a race with a writer. (Redis is never faked.)
type table struct {
	mu      sync.Mutex
	name    string
	version int64
	active  bool
	reads   atomic.Int64
	pause   atomic.Pointer[gate]
}

var (
	_ cache.ProductSource = (*table)(nil)
	_ cache.UserSource    = (*table)(nil)
)

// gate holds one paused read: it sends on read once it has read, then
// waits for release.
type gate struct{ read, release chan struct{} }

// pauseNext makes the next read wait at the returned gate.
func (t *table) pauseNext() *gate {
	g := &gate{read: make(chan struct{}), release: make(chan struct{})}
	t.pause.Store(g)
	return g
}

// write commits a new version of every product and new user flags.
func (t *table) write(version int64, active bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.version, t.active = version, active
}

func (t *table) read() (name string, version int64, active bool) {
	t.reads.Add(1)
	t.mu.Lock()
	name, version, active = t.name, t.version, t.active
	t.mu.Unlock()
	if g := t.pause.Swap(nil); g != nil {
		g.read <- struct{}{}
		<-g.release
	}
	return name, version, active
}

func (t *table) GetProduct(_ context.Context, _, id string) (domain.Product, error) {
	name, version, _ := t.read()
	return domain.Product{ID: id, Name: name, Version: version}, nil
}

func (t *table) ListProducts(context.Context, string, postgres.ListParams) ([]domain.Product, string, error) {
	name, version, _ := t.read()
	return []domain.Product{{ID: listedID, Name: name, Version: version}}, "", nil
}

func (t *table) GetUserAuth(context.Context, string, string) (postgres.UserAuth, error) {
	_, _, active := t.read()
	return postgres.UserAuth{Active: active}, nil
}

// listedID is the one product every list page of a table holds.
const listedID = "0195b7f2-0000-7000-8000-0000000000aa"

// listAll is the page tests read.
var listAll = postgres.ListParams{Limit: 10}

var discard = slog.New(slog.DiscardHandler)
